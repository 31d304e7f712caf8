"""Patch search near a predicted match: the nearest-neighbour field of keyframe propagation.

When a dense positional guide already says where on the keyframe each pixel of a frame came
from (its coordinates carried along the optical flow), the nearest key patch lies close to that
prediction, and searching the whole keyframe (faiss, PatchMatch) wastes almost all its work: on
the 2-core development machine the shared loop's searches took 13 s (faiss) to 58 s
(PatchMatch) per 320x240 frame. This search looks in a window of +-``radius`` pixels around the
prediction, exhaustively, plus a few candidates of the same colour from anywhere on the key,
and costs the same per pixel at every resolution. Step by step:

1. ``base`` = the predicted key position of each target pixel, rounded.
2. Each candidate is a whole field: base + d for each offset d of the window, then each field
   of ``candidates``. For a field c, every target pixel p is paired with key pixel c(p); the
   per-pixel squared difference of their feature vectors (guides times their weights, and the
   key position against the prediction times ``position_weight``) is summed over the
   ``patch`` x ``patch`` box around p (a box filter). For a window offset this is the distance
   between the target patch at p and the key patch at base(p) + d *deformed along the flow*:
   the box pairs p + o with base(p + o) + d, which is base(p) + o + d where the flow is a
   translation over the patch (then it is the ordinary patch distance) and follows the flow
   where it is not. For the colour candidates, whose neighbours point anywhere, it is the
   box-summed per-pixel cost: a candidate wins only where a whole neighbourhood agrees.
3. Each target pixel keeps the candidate of least distance (the first of equals).

All of it is gathers and pooling on tensors: the same code on a CPU and a GPU.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def window_search(target: torch.Tensor, key: torch.Tensor, prediction: torch.Tensor, radius: int, patch: int,
                  position_weight: float, candidates: Sequence[torch.Tensor] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """Best key position per target pixel near ``prediction``, or among ``candidates``.

    target: (C, H, W) features of the frame; key: (C, Hk, Wk) features of the keyframe (same
    weights applied); prediction: (2, H, W) float key coordinates (x, y) per target pixel, in key
    pixels; ``radius``: the window's reach in whole pixels; ``candidates``: further (2, H, W)
    int64 key positions to try per pixel (:func:`appearance_candidates`). Returns (matches
    (2, H, W) float key (x, y), inside the key: the prediction moved by the best whole-pixel
    offset, or the best candidate; distance (H, W): the box-summed feature distance, positional
    cost included, per patch pixel).
    """
    if target.dim() != 3 or key.dim() != 3 or target.shape[0] != key.shape[0]:
        raise ValueError(f"expected target (C, H, W) and key (C, Hk, Wk) features with one C, got "
                         f"{tuple(target.shape)} and {tuple(key.shape)}")
    if prediction.shape != (2, *target.shape[1:]):
        raise ValueError(f"prediction must be (2, {target.shape[1]}, {target.shape[2]}), got {tuple(prediction.shape)}")
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
    base = prediction.round().long()
    base = torch.stack([base[0].clamp(0, key_width - 1), base[1].clamp(0, key_height - 1)])
    origin = ((base[1] + radius) * padded_width + base[0] + radius).reshape(-1)  # (H * W,)
    best = torch.full(target.shape[1:], float("inf"), dtype=target.dtype, device=target.device)
    matches = prediction.clone()
    pad = patch // 2

    def consider(flat_index: torch.Tensor, position: torch.Tensor) -> None:
        nonlocal best, matches
        gathered = flat_key.index_select(1, flat_index).view_as(target)
        difference = (target - gathered).square_().sum(0)
        summed = F.avg_pool2d(difference[None, None], patch, stride=1, padding=pad, count_include_pad=False)[0, 0]
        better = summed < best  # the first of equals is kept
        best = torch.where(better, summed, best)
        matches = torch.where(better[None], position, matches)

    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            # The prediction moved by whole pixels keeps its sub-pixel part: where the offset is
            # 0 the match is exactly where the flow says, not rounded to a whole pixel.
            step = torch.tensor([dx, dy], dtype=prediction.dtype, device=prediction.device).view(2, 1, 1)
            consider(origin + (dy * padded_width + dx), prediction + step)
    for candidate in candidates:
        flat = ((candidate[1] + radius) * padded_width + candidate[0] + radius).reshape(-1)
        consider(flat, candidate.to(prediction.dtype))
    matches = torch.stack([matches[0].clamp(0, key_width - 1), matches[1].clamp(0, key_height - 1)])
    return matches, best


def appearance_candidates(key_colour: torch.Tensor, target_colour: torch.Tensor, bins: int = 16,
                          count: int = 4) -> list[torch.Tensor]:
    """``count`` fields (2, H, W) int64 of key positions (x, y) whose colour falls in the same
    bin (``bins`` per channel) as each target pixel's: where a frame shows something the flow
    cannot bring from the keyframe (it came into view, or the flow lost it), these let the
    search take the keyframe's patches that look like it from anywhere on the key.

    key_colour (3, Hk, Wk) and target_colour (3, H, W) in [0, 1]. Each bin keeps ``count`` key
    pixels spread over its members in raster order; an empty bin takes a neighbouring bin's.
    """
    device = key_colour.device
    key_width = key_colour.shape[2]
    key_bins = _colour_bins(key_colour, bins).reshape(-1)
    order = torch.argsort(key_bins, stable=True)
    sizes = torch.bincount(key_bins, minlength=bins**3)
    starts = torch.cumsum(sizes, 0) - sizes
    spread = (torch.arange(count, device=device, dtype=torch.float64) + 0.5) / count
    picks = starts[:, None] + (sizes[:, None] * spread).long()  # (bins^3, count)
    table = order[picks.clamp(max=order.numel() - 1)]  # (bins^3, count) flat key pixel
    table = _fill_empty_bins(table.reshape(bins, bins, bins, count), (sizes > 0).reshape(bins, bins, bins))
    chosen = table.reshape(bins**3, count)[_colour_bins(target_colour, bins).reshape(-1)]  # (H*W, count)
    height, width = target_colour.shape[1:]
    return [torch.stack([pick % key_width, pick // key_width]).reshape(2, height, width) for pick in chosen.T]


def _colour_bins(colour: torch.Tensor, bins: int) -> torch.Tensor:
    q = (colour * bins).long().clamp(0, bins - 1)
    return (q[0] * bins + q[1]) * bins + q[2]


def _fill_empty_bins(table: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """Each empty bin of the (b, b, b, count) ``table`` takes the entries of a filled bin one step
    away along some axis, repeatedly, until every bin is filled (nearest first)."""
    table, filled = table.clone(), filled.clone()
    while not bool(filled.all()):
        for axis in range(3):
            for shift in (1, -1):
                moved_filled = torch.roll(filled, shift, axis)
                moved_table = torch.roll(table, shift, axis)
                # roll wraps around; a bin at the edge must not take the far edge's entries
                edge = [slice(None)] * 3
                edge[axis] = 0 if shift == 1 else -1
                moved_filled[tuple(edge)] = False
                take = ~filled & moved_filled
                table[take] = moved_table[take]
                filled = filled | take
    return table
