"""Holes for inpainting: where the mask is at each pyramid level, which key patches are clean,
where the synthesis starts, the part of the video a search has to look at, and a first guess
for the hole at the coarsest level.

A voxel is in the hole at a level when the mask, resized to that level, covers any of it
(more than 1%), so a thin object does not vanish at coarse levels and keys never show it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .patches import PatchSize
from .resize import resize_video

_COVERAGE = 0.01  # resized mask above this: the voxel counts as hole
# Inpainting starts at the coarsest level that keeps at least this share of the finest level's
# clean key patches. At coarser levels the hole and its margin leave little but the frame's edges
# to fill from, and the fill keeps their look through every finer level: on tree_foliage.mp4 a
# box over the leaves that started where 14% of keys were clean (the dark trunk and the pale sky
# at the sides) came out darker than the leaves around it; starting where 72% are (91% at the
# finest level) kept its brightness.
MIN_CLEAN_SHARE = 0.75


def level_hole(hole: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """``hole`` (T, H, W) bool resized to ``shape``; exact when the shape is the same."""
    if tuple(hole.shape) == tuple(shape):
        return hole
    return resize_video(hole[None].float(), shape)[0] > _COVERAGE


def clean_keys(hole: torch.Tensor, patch_size: PatchSize) -> torch.Tensor:
    """(T', H', W') bool: key patch positions that touch no hole voxel."""
    touched = F.max_pool3d(hole[None, None].float(), patch_size, stride=1)[0, 0]
    return touched == 0


def start_level(holes: list[torch.Tensor], patch_size: PatchSize) -> int:
    """Index into ``holes`` (finest first) of the level inpainting starts at: the coarsest such
    that it and every finer level keep at least MIN_CLEAN_SHARE of the finest level's share of
    clean key patches. -1 when the finest level has no clean key at all."""
    shares = [float(clean_keys(hole, patch_size).float().mean()) for hole in holes]
    if shares[0] == 0:
        return -1
    level = 0
    while level + 1 < len(shares) and shares[level + 1] >= MIN_CLEAN_SHARE * shares[0]:
        level += 1
    return level


def hole_box(hole: torch.Tensor, patch_size: PatchSize) -> tuple[slice, slice, slice] | None:
    """The (T, H, W) slices of the smallest box holding every patch that touches ``hole``: the
    only part of a video whose patches can change a hole voxel, so searches and votes can skip
    the rest. None when the hole is empty."""
    if not bool(hole.any()):
        return None
    box = []
    for axis, patch in enumerate(patch_size):
        others = tuple(a for a in range(3) if a != axis)
        inside = hole.any(dim=others).nonzero()[:, 0]
        # At least one patch long: it reaches p - 1 past the hole on a side unless the video ends.
        box.append(slice(max(0, int(inside[0]) - (patch - 1)), min(hole.shape[axis], int(inside[-1]) + patch)))
    return tuple(box)


def fill_hole(video: torch.Tensor, hole: torch.Tensor, max_rounds: int = 512) -> torch.Tensor:
    """``video`` (..., C, T, H, W) with hole voxels replaced by a smooth fill grown inward from
    the hole's border (repeated 3x3x3 averages of the known voxels around it): a neutral start
    that shows nothing of what the hole hid."""
    known = (~hole).to(video.dtype)
    if known.sum() == 0:
        raise ValueError("the hole covers the whole video")
    shape = video.shape
    flat = video.reshape(-1, *shape[-4:]) * known  # (B, C, T, H, W)
    filled = known[None, None].expand(flat.shape[0], 1, *known.shape).clone()
    values = flat.clone()
    kernel = tuple(3 if size >= 3 else 1 for size in hole.shape)  # an image or 2 frames: no time step
    padding = tuple(k // 2 for k in kernel)
    for _ in range(max_rounds):
        if bool(filled.min() > 0):
            break
        total = F.avg_pool3d(values * filled, kernel, stride=1, padding=padding, count_include_pad=False)
        weight = F.avg_pool3d(filled, kernel, stride=1, padding=padding, count_include_pad=False)
        grow = (weight > 0) & (filled == 0)
        values = torch.where(grow, total / weight.clamp_min(1e-12), values)
        filled = torch.where(grow, torch.ones_like(filled), filled)
    return torch.where(hole, values, flat).reshape(shape)
