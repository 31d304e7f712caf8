"""Holes for inpainting: where the mask is at each pyramid level, which key patches are clean,
and a first guess for the hole at the coarsest level.

A voxel is in the hole at a level when the mask, resized to that level, covers any of it
(more than 1%), so a thin object does not vanish at coarse levels and keys never show it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .patches import PatchSize
from .resize import resize_video

_COVERAGE = 0.01  # resized mask above this: the voxel counts as hole


def level_hole(hole: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """``hole`` (T, H, W) bool resized to ``shape``; exact when the shape is the same."""
    if tuple(hole.shape) == tuple(shape):
        return hole
    return resize_video(hole[None].float(), shape)[0] > _COVERAGE


def clean_keys(hole: torch.Tensor, patch_size: PatchSize) -> torch.Tensor:
    """(T', H', W') bool: key patch positions that touch no hole voxel."""
    touched = F.max_pool3d(hole[None, None].float(), patch_size, stride=1)[0, 0]
    return touched == 0


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
