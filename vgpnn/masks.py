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


def _neighbour_sum(values: torch.Tensor) -> torch.Tensor:
    """(..., H, W): the sum of each pixel's four neighbours in its frame (zero beyond the frame)."""
    padded = F.pad(values, (1, 1, 1, 1))
    return padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2] + padded[..., 1:-1, 2:]


def blend_border(video: torch.Tensor, free: torch.Tensor, tolerance: float = 1e-4,
                 max_rounds: int | None = None) -> torch.Tensor:
    """``video`` (..., C, T, H, W) with its ``free`` (T, H, W) voxels corrected so that the fill
    meets the fixed voxels around it pixel by pixel while keeping its own gradients: Poisson
    blending (Pérez et al., "Poisson image editing", 2003), frame by frame.

    The fill ``g`` becomes ``g + c``: the closest, in gradients, to ``g`` whose pixels beside
    the border meet their fixed neighbours (the pairs across the border are asked for no step;
    the solution leaves them about the steps around them). ``c`` is then a membrane (discrete
    harmonic inside the fill): what it adds decays with the distance from the border, the
    faster the finer the mismatch along it, so the fill's texture and motion stay.

    The crossing pairs are asked for no step rather than a step estimated from the pixels next
    to them: the fill's own step just inside its edge is no estimate (its edge pixels are the
    ones that do not fit), and the step just outside, continued across, left airballoons at a
    border step of 1.34 against 1.16 asked for none. A smooth ramp through the hole then bends
    by about one step at the border, which does not show.

    Why pixel by pixel: the fill is made of patches from elsewhere in the clip (keys near the
    hole touch it), and no patch continues the exact texture around the hole, so its pixels
    beside the border differ from their fixed neighbours by more than neighbouring pixels
    usually do. Matching only local means along the border (over a few pixels, its brightness
    and colour) left that pixel-level step, which is the seam one sees: on the shared clips at
    144 px the border step stayed at 1.3 to 2.7 times the steps around the hole; blended
    pixel by pixel it is 0.74 to 1.16, with the fill's detail unchanged.

    Frames are solved independently (a moving hole's border changes from frame to frame, and a
    step in time is motion, not a seam). The linear system is solved by conjugate gradients,
    every frame and channel at once, to ``tolerance`` of its right-hand side's norm or
    ``max_rounds`` (default: four times the free box's height plus width) rounds.
    """
    box = free_box(free, (1, 3, 3))  # one fixed pixel of margin around the free ones, where the frame has it
    if box is None:
        return video
    region = (..., *box)
    part = video[region]
    inside = free[box].to(part.dtype)  # (t, h, w)
    fill = part.reshape(-1, *part.shape[-3:])  # (N, t, h, w): every channel of every video
    fixed = 1 - inside
    degree = _neighbour_sum(torch.ones_like(inside))  # neighbours in the frame
    # The right-hand side at a free pixel: its fixed neighbours' values minus its own, summed.
    target = (_neighbour_sum(fill * fixed) - _neighbour_sum(fixed) * fill) * inside

    def laplacian(correction: torch.Tensor) -> torch.Tensor:  # correction is zero on fixed voxels
        return (degree * correction - _neighbour_sum(correction)) * inside

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # per frame of each channel
        return (a * b).sum((-2, -1), keepdim=True)

    rounds = max_rounds if max_rounds is not None else 4 * (inside.shape[-2] + inside.shape[-1])
    correction = torch.zeros_like(fill)
    residual = target.clone()
    direction = residual.clone()
    residual_norm = dot(residual, residual)
    limit = (tolerance ** 2) * residual_norm
    tiny = torch.finfo(fill.dtype).tiny
    for _ in range(rounds):
        if bool((residual_norm <= limit).all()):
            break
        pushed = laplacian(direction)
        # A frame that is done (or has no free pixel, or no fixed pixel to pull it) stays put.
        active = residual_norm > limit
        step = torch.where(active, residual_norm / dot(direction, pushed).clamp_min(tiny), 0)
        correction = correction + step * direction
        residual = residual - step * pushed
        new_norm = dot(residual, residual)
        direction = residual + torch.where(active, new_norm / residual_norm.clamp_min(tiny), 0) * direction
        residual_norm = new_norm
    out = video.clone()
    out[region] = (fill + correction).reshape(part.shape)
    return out

