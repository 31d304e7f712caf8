"""Patch search near a predicted match: the nearest-neighbour field of keyframe propagation.

When a dense positional guide already says where on the keyframe each pixel of a frame came
from (its coordinates carried along the optical flow), the nearest key patch lies close to that
prediction, and searching the whole keyframe (faiss, PatchMatch) wastes almost all its work. This
search looks only in a window of +-``radius`` pixels around the prediction, exhaustively, and
costs the same at every resolution per pixel. Step by step:

1. ``base`` = the predicted key position of each target pixel, rounded.
2. For each offset d of the window, every target pixel p is paired with key pixel base(p) + d;
   the per-pixel squared difference of their feature vectors (guides times their weights) is
   summed over the ph x pw box around p (a box filter), plus the positional cost |base(p) + d -
   prediction(p)|^2 times ``position_weight``^2 per pixel. This is the distance between the
   target patch at p and the key patch at base(p) + d *deformed along the flow*: the box sum
   pairs p + o with base(p + o) + d, which is base(p) + o + d where the flow is a translation
   over the patch (then it is the ordinary patch distance) and follows the flow where it is not.
3. Each target pixel keeps the offset of least distance (the first of equals, window order).
4. A coarser pass at half resolution first (window +-``radius`` there, +-2 ``radius`` pixels here)
   shifts the prediction where the flow went further wrong than the fine window can reach.

All of it is gathers and pooling on tensors: the same code on a CPU and a GPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def window_search(target: torch.Tensor, key: torch.Tensor, prediction: torch.Tensor, radius: int,
                  coarse_radius: int, patch: int, position_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Best key position per target pixel near ``prediction``.

    target: (C, H, W) features of the frame; key: (C, Hk, Wk) features of the keyframe (same
    weights applied); prediction: (2, H, W) float key coordinates (x, y) per target pixel, in key
    pixels. ``radius``: the window at full resolution; ``coarse_radius``: at half resolution
    first (0: no coarse pass). Returns (matches (2, H, W) float key (x, y): the prediction moved
    by the best whole-pixel offset, inside the key; distance (H, W): the
    box-summed feature distance, positional cost included, per patch pixel).
    """
    if target.dim() != 3 or key.dim() != 3 or target.shape[0] != key.shape[0]:
        raise ValueError(f"expected target (C, H, W) and key (C, Hk, Wk) features with one C, got "
                         f"{tuple(target.shape)} and {tuple(key.shape)}")
    if prediction.shape != (2, *target.shape[1:]):
        raise ValueError(f"prediction must be (2, {target.shape[1]}, {target.shape[2]}), got {tuple(prediction.shape)}")
    height, width = target.shape[1:]
    if coarse_radius > 0 and min(height, width, *key.shape[1:]) >= 4 * patch:
        # Step 4: the coarse pass moves the prediction by whole (doubled) offsets.
        small_target = F.avg_pool2d(target[None], 2, ceil_mode=True)[0]
        small_key = F.avg_pool2d(key[None], 2, ceil_mode=True)[0]
        small_prediction = F.avg_pool2d(prediction[None], 2, ceil_mode=True)[0] / 2
        small_patch = max(3, (patch // 2) | 1)
        coarse, _ = _search(small_target, small_key, small_prediction, coarse_radius, small_patch, position_weight * 2)
        shift = (coarse - small_prediction).round() * 2
        shift = F.interpolate(shift[None], size=(height, width), mode="nearest")[0]
        prediction = prediction + shift
    return _search(target, key, prediction, radius, patch, position_weight)


def _clamped_base(prediction: torch.Tensor, key_size) -> torch.Tensor:
    """(2, H, W) int64: the prediction rounded and clamped into the key (x, y)."""
    height, width = key_size
    base = prediction.round().long()
    return torch.stack([base[0].clamp(0, width - 1), base[1].clamp(0, height - 1)])


def _search(target, key, prediction, radius, patch, position_weight):
    """Steps 1-3 for one resolution."""
    channels, key_height, key_width = key.shape
    ys, xs = torch.meshgrid(torch.arange(key_height, device=key.device, dtype=key.dtype),
                            torch.arange(key_width, device=key.device, dtype=key.dtype), indexing="ij")
    # The positional cost rides along as two more feature channels: the key pixel's own
    # coordinates against the prediction, so each offset costs one gather, not extra passes.
    key = torch.cat([key, torch.stack([xs, ys]) * position_weight])
    target = torch.cat([target, prediction * position_weight])
    # The key is padded by the radius (edges repeated) so no candidate needs clamping.
    padded = F.pad(key[None], (radius,) * 4, mode="replicate")[0]
    padded_width = key_width + 2 * radius
    flat_key = padded.reshape(channels + 2, -1)
    base = _clamped_base(prediction, (key_height, key_width))
    origin = ((base[1] + radius) * padded_width + base[0] + radius).reshape(-1)  # (H * W,)
    best = torch.full(target.shape[1:], float("inf"), dtype=target.dtype, device=target.device)
    chosen = torch.zeros(target.shape[1:], dtype=torch.int64, device=target.device)
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    pad = patch // 2
    for number, (dy, dx) in enumerate(offsets):
        gathered = flat_key.index_select(1, origin + (dy * padded_width + dx)).view_as(target)
        difference = (target - gathered).square_().sum(0)
        summed = F.avg_pool2d(difference[None, None], patch, stride=1, padding=pad, count_include_pad=False)[0, 0]
        better = summed < best
        best = torch.where(better, summed, best)
        chosen.masked_fill_(better, number)
    steps = torch.tensor(offsets, device=target.device)[chosen]  # (H, W, 2) as (dy, dx)
    # The prediction moved by the chosen offset keeps its sub-pixel part: where the offset is 0
    # the match is exactly where the flow says, not rounded to a whole pixel.
    moved = prediction + steps.permute(2, 0, 1).flip(0).to(prediction.dtype)
    matches = torch.stack([moved[0].clamp(0, key_width - 1), moved[1].clamp(0, key_height - 1)])
    return matches, best
