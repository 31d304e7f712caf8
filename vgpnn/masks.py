"""Masks of voxels at each pyramid level: source voxels that may not be copied (an inpainting
hole) and target voxels that are free (not fixed). Which key patches are clean, the level the
synthesis starts at, the part of the video a search has to look at, and a first guess for the
free voxels.

A voxel is in a mask at a level when the mask, resized to that level, covers any of it (more
than 1%), so a thin object does not vanish at coarse levels and keys never show it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .patches import PatchSize
from .resize import resize_video

_COVERAGE = 0.01  # resized mask above this: the voxel counts as masked
# Synthesis from sources with masked voxels (inpainting) starts at the coarsest level that keeps at least this share of the finest level's
# clean key patches. At coarser levels the mask and its margin leave little but the frame's edges
# to fill from, and the fill keeps their look through every finer level: on tree_foliage.mp4 a
# box over the leaves that started where 14% of keys were clean (the dark trunk and the pale sky
# at the sides) came out darker than the leaves around it; starting where 72% are (91% at the
# finest level) kept its brightness.
MIN_CLEAN_SHARE = 0.75


def level_mask(mask: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """``mask`` (T, H, W) bool resized to ``shape``; exact when the shape is the same."""
    if tuple(mask.shape) == tuple(shape):
        return mask
    return resize_video(mask[None].float(), shape)[0] > _COVERAGE


def clean_keys(mask: torch.Tensor, patch_size: PatchSize) -> torch.Tensor:
    """(T', H', W') bool: key patch positions that touch no mask voxel."""
    touched = F.max_pool3d(mask[None, None].float(), patch_size, stride=1)[0, 0]
    return touched == 0


def clean_share(masks: list[torch.Tensor], patch_size: PatchSize) -> float:
    """The share of key patch positions, over several sources' masks at one level, that touch no masked voxel."""
    return float(torch.cat([clean_keys(mask, patch_size).reshape(-1) for mask in masks]).float().mean())


def start_level(shares: list[float]) -> int:
    """The level (index into ``shares``, finest first, each level's share of clean key patches)
    the synthesis starts at: the coarsest such that it and every finer level keep at least
    MIN_CLEAN_SHARE of the finest level's share. -1 when the finest level has no clean key at all."""
    if shares[0] == 0:
        return -1
    level = 0
    while level + 1 < len(shares) and shares[level + 1] >= MIN_CLEAN_SHARE * shares[0]:
        level += 1
    return level


def free_box(mask: torch.Tensor, patch_size: PatchSize) -> tuple[slice, slice, slice] | None:
    """The (T, H, W) slices of the smallest box holding every patch that touches ``mask``: the
    only part of a video whose patches can change a mask voxel, so searches and votes can skip
    the rest. None when the mask is empty."""
    if not bool(mask.any()):
        return None
    box = []
    for axis, patch in enumerate(patch_size):
        others = tuple(a for a in range(3) if a != axis)
        inside = mask.any(dim=others).nonzero()[:, 0]
        # At least one patch long: it reaches p - 1 past the mask on a side unless the video ends.
        box.append(slice(max(0, int(inside[0]) - (patch - 1)), min(mask.shape[axis], int(inside[-1]) + patch)))
    return tuple(box)


def fill_free(video: torch.Tensor, mask: torch.Tensor, max_rounds: int = 512) -> torch.Tensor:
    """``video`` (..., C, T, H, W) with mask voxels replaced by a smooth fill grown inward from
    the mask's border (repeated 3x3x3 averages of the known voxels around it): a neutral start
    that shows nothing of what the mask hid."""
    known = (~mask).to(video.dtype)
    if known.sum() == 0:
        raise ValueError("the mask covers the wmask video")
    shape = video.shape
    flat = video.reshape(-1, *shape[-4:]) * known  # (B, C, T, H, W)
    filled = known[None, None].expand(flat.shape[0], 1, *known.shape).clone()
    values = flat.clone()
    kernel = tuple(3 if size >= 3 else 1 for size in mask.shape)  # an image or 2 frames: no time step
    padding = tuple(k // 2 for k in kernel)
    for _ in range(max_rounds):
        if bool(filled.min() > 0):
            break
        total = F.avg_pool3d(values * filled, kernel, stride=1, padding=padding, count_include_pad=False)
        weight = F.avg_pool3d(filled, kernel, stride=1, padding=padding, count_include_pad=False)
        grow = (weight > 0) & (filled == 0)
        values = torch.where(grow, total / weight.clamp_min(1e-12), values)
        filled = torch.where(grow, torch.ones_like(filled), filled)
    return torch.where(mask, values, flat).reshape(shape)


def match_border(video: torch.Tensor, free: torch.Tensor, width: int = 4, rounds: int = 200) -> torch.Tensor:
    """``video`` (..., C, T, H, W) with its ``free`` (T, H, W) voxels shifted so that, along the
    free region's border, their local mean (over ``width`` pixels inside) meets the local mean of
    the fixed voxels just outside; the shift is a smooth (harmonic) membrane inside the region.

    A fill made of patches from elsewhere in the clip keeps their brightness, and at coarse levels
    every key near the hole touches it (a patch spans a large part of the frame there), so the
    fill's colour comes from far away and its own patches carry it to the finest level: a sky
    fill came out 0.07 lighter than the sky around it. Only the low frequencies are moved; the
    fill's texture and motion stay.
    """
    box = free_box(free, (1, 2 * width + 1, 2 * width + 1))
    if box is None:
        return video
    region = (..., *box)
    inside = free[box]
    part = video[region]  # (..., C, t, h, w)
    window = (1, 2 * width + 1, 2 * width + 1)
    padding = (0, width, width)

    def local_mean(values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        flat = values.reshape(-1, *values.shape[-4:])  # (B, C, t, h, w)
        weight = F.avg_pool3d(where[None, None].to(values.dtype), window, 1, padding)
        total = F.avg_pool3d(flat * where.to(values.dtype), window, 1, padding)
        return (total / weight.clamp_min(1e-12)).reshape(values.shape), weight[0, 0] > 0

    shrunk = -F.max_pool3d(-inside[None, None].float(), (1, 3, 3), 1, (0, 1, 1))[0, 0] > 0
    edge = inside & ~shrunk  # free voxels with a fixed neighbour in their frame
    outside_mean, has_outside = local_mean(part, ~inside)
    inside_mean, _ = local_mean(part, inside)
    known = edge & has_outside
    if not bool(known.any()):
        return video
    # The jump of the local means at the border, grown inward and relaxed into a membrane.
    shift = torch.where(known, outside_mean - inside_mean, torch.zeros_like(part))
    shift = fill_free(shift, ~known)
    kernel = torch.zeros((1, 1, 3, 3, 3), dtype=part.dtype, device=part.device)
    kernel[0, 0, 1, 0, 1] = kernel[0, 0, 1, 2, 1] = kernel[0, 0, 1, 1, 0] = kernel[0, 0, 1, 1, 2] = 0.25
    relax = inside & ~known
    flat = shift.reshape(-1, 1, *shift.shape[-3:])
    for _ in range(rounds):
        averaged = F.conv3d(F.pad(flat, (1, 1, 1, 1, 1, 1), mode="replicate"), kernel)
        flat = torch.where(relax, averaged, flat)
    shift = flat.reshape(shift.shape)
    out = video.clone()
    out[region] = torch.where(inside, part + shift, part)
    return out
