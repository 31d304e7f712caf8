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

from itertools import chain
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from .. import kernels
from ..nn.kd_leaves import KdLeaves


def window_search(target: torch.Tensor, key: torch.Tensor, prediction: torch.Tensor, radius: int, patch: int,
                  position_weight: float, candidates: Sequence[torch.Tensor] = (),
                  tied: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Best key position per target pixel near ``prediction``, or among ``candidates``.

    target: (C, H, W) features of the frame; key: (C, Hk, Wk) features of the keyframe (same
    weights applied); prediction: (2, H, W) float key coordinates (x, y) per target pixel, in key
    pixels; ``radius``: the window's reach in whole pixels; ``candidates``: further (2, H, W)
    int64 key positions to try per pixel (:class:`AppearanceIndex`).
    ``tied``: None (the positional cost counts everywhere), or (Hk, Wk) in [0, 1], how much the
    edit at each key pixel is tied to its place (:func:`position_tied`): the positional cost of
    pairing target pixel p with key pixel q is scaled by the larger of tied(q) (a place-bound edit
    is not copied elsewhere) and tied at p's prediction (p keeps what the flow brought it there).
    Returns (matches (2, H, W) float key (x, y), inside the key: the prediction moved by the best
    whole-pixel offset, or the best candidate; distance (H, W): the box-summed feature distance,
    positional cost included, per patch pixel).
    """
    if target.dim() != 3 or key.dim() != 3 or target.shape[0] != key.shape[0]:
        raise ValueError(f"expected target (C, H, W) and key (C, Hk, Wk) features with one C, got "
                         f"{tuple(target.shape)} and {tuple(key.shape)}")
    if prediction.shape != (2, *target.shape[1:]):
        raise ValueError(f"prediction must be (2, {target.shape[1]}, {target.shape[2]}), got {tuple(prediction.shape)}")
    channels, key_height, key_width = key.shape
    if tied is not None and tied.shape != (key_height, key_width):
        raise ValueError(f"tied must be ({key_height}, {key_width}), got {tuple(tied.shape)}")
    ys, xs = torch.meshgrid(torch.arange(key_height, device=key.device, dtype=key.dtype),
                            torch.arange(key_width, device=key.device, dtype=key.dtype), indexing="ij")
    # The key pixel's own coordinates ride along as two more channels (and its tie as one more),
    # so each candidate costs one gather.
    extra = [torch.stack([xs, ys])] + ([] if tied is None else [tied[None].to(key.dtype)])
    key = torch.cat([key, *extra])
    # The key is padded by the radius (edges repeated) so no candidate needs clamping.
    padded = F.pad(key[None], (radius,) * 4, mode="replicate")[0]
    padded_width = key_width + 2 * radius
    flat_key = padded.reshape(key.shape[0], -1)
    base = prediction.round().long()
    base = torch.stack([base[0].clamp(0, key_width - 1), base[1].clamp(0, key_height - 1)])
    origin = ((base[1] + radius) * padded_width + base[0] + radius).reshape(-1)  # (H * W,)
    # The weight of the positional cost per target pixel (and, with ``tied``, per candidate).
    weight = position_weight**2
    tied_here = None if tied is None else tied[base[1], base[0]]  # (H, W) the tie where the flow says p came from
    # Every window offset (dx, dy) made once: a tensor built per offset from Python numbers is
    # a host-to-device copy that waits for the GPU each time.
    reach = torch.arange(-radius, radius + 1, dtype=prediction.dtype, device=prediction.device)
    steps = torch.stack(torch.meshgrid(reach, reach, indexing="xy")).reshape(2, -1, 1, 1)  # (2, offsets, 1, 1)
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    # Each candidate field: (flat index into the padded key per target pixel, its position).
    # The prediction moved by whole pixels keeps its sub-pixel part: where the offset is 0 the
    # match is exactly where the flow says, not rounded to a whole pixel.
    # Made one at a time as they are scored (each is a frame's worth of memory).
    fields = chain(((origin + (dy * padded_width + dx), prediction + steps[:, number])
                    for number, (dy, dx) in enumerate(offsets)),
                   ((((candidate[1] + radius) * padded_width + candidate[0] + radius).reshape(-1),
                     candidate.to(prediction.dtype)) for candidate in candidates))
    found = kernels.window_search(target, flat_key, prediction, fields, tied_here, weight, patch)
    if found is not None:
        best, matches = found
    else:
        best, matches = _window_search_torch(target, flat_key, prediction, fields, tied_here, weight, patch)
    matches = torch.stack([matches[0].clamp(0, key_width - 1), matches[1].clamp(0, key_height - 1)])
    return matches, best


def _window_search_torch(target: torch.Tensor, flat_key: torch.Tensor, prediction: torch.Tensor,
                         fields: Iterable[tuple[torch.Tensor, torch.Tensor]], tied_here: torch.Tensor | None,
                         weight: float, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The window search's scoring (see :func:`window_search`) in torch: for each candidate
    field, the per-pixel cost, box-averaged over the patch, kept where it beats the best so far.
    flat_key (K, N): the padded key's features, then its x and y (then its tie); returns (best
    (H, W), matches (2, H, W))."""
    channels = target.shape[0]
    best = torch.full(target.shape[1:], float("inf"), dtype=target.dtype, device=target.device)
    matches = prediction.clone()
    for flat_index, position in fields:
        gathered = flat_key.index_select(1, flat_index).view(flat_key.shape[0], *target.shape[1:])
        difference = (target - gathered[:channels]).square_().sum(0)
        offset = (gathered[channels:channels + 2] - prediction).square_().sum(0)
        if tied_here is None:
            difference += weight * offset
        else:
            difference += weight * torch.maximum(gathered[channels + 2], tied_here) * offset
        summed = F.avg_pool2d(difference[None, None], patch, stride=1, padding=patch // 2,
                              count_include_pad=False)[0, 0]
        better = summed < best  # the first of equals is kept
        best = torch.where(better, summed, best)
        matches = torch.where(better[None], position, matches)
    return best, matches


# How far (in weighted feature units, colour on the 0..1 scale) a pixel's features may move
# between frames before its look-alikes are looked up again: about a grey level.
REUSE_DISTANCE = 1 / 255


class AppearanceIndex:
    """The keyframe's pixels by appearance: for each pixel of a frame, the key pixels whose
    features (colour, gradients: what a local edit depends on) are nearest to its own.

    A balanced k-d tree over the key's pixels (nn/kd_leaves.py), searched where the features
    are: as tensors on a GPU, by its compiled twin on a CPU. Both find the exact nearest for
    nearly every pixel, at a cost per pixel that does not grow with the key's size. Searching
    the whole key exhaustively would cost 37k distances per pixel at 144p and 400k at 480p;
    faiss, which this replaced, runs on the CPU only (at 1280x720 its lookup was 6 s of a
    frame's 6.35 s beside an idle GPU) and was 2-3x slower than the compiled search on a CPU.
    """

    def __init__(self, features: torch.Tensor):
        """``features`` (C, Hk, Wk) of the keyframe, already weighted."""
        self.channels, self.height, self.width = features.shape
        self.tree = KdLeaves(features.reshape(self.channels, -1).T.float())
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (features looked up, found), flat

    def nearest(self, features: torch.Tensor, count: int) -> torch.Tensor:
        """(count, H, W) int64 flat key pixel indices, nearest first, for ``features`` (C, H, W).

        Successive calls are the frames of a pass, in order: a pixel whose features moved less
        than ``REUSE_DISTANCE`` since it was last looked up (at that place, in an earlier call of
        the same size and count) keeps what was found then; only the others are looked up. In a
        video most of a frame is what the frame before showed there (46-69% of pixels within a
        grey level at 240p on the shared clips, bar the panning and the foliage), so most of the
        search is skipped, and what is kept is off by no more than that distance (the triangle
        inequality), below the noise of the frames themselves.
        """
        if features.dim() != 3 or features.shape[0] != self.channels:
            raise ValueError(f"expected features ({self.channels}, H, W), got {tuple(features.shape)}")
        queries = features.reshape(self.channels, -1).T.float()  # (H * W, C)
        last = self._last
        if last is None or last[1].shape != (queries.shape[0], count):
            found = self.tree.nearest(queries, count)  # (H * W, count)
            looked_up = queries.clone()
        else:
            looked_up, found = last[0].clone(), last[1].clone()
            again = ((queries - looked_up).square().sum(1) >= REUSE_DISTANCE**2).nonzero()[:, 0]
            if len(again):
                found[again] = self.tree.nearest(queries[again], count)
                looked_up[again] = queries[again]
        self._last = (looked_up, found)
        return found.T.reshape(count, *features.shape[1:]).to(features.device)

    def candidates(self, features: torch.Tensor, count: int, stride: int = 1) -> list[torch.Tensor]:
        """``count`` fields (2, H, W) int64 of key positions (x, y), nearest in appearance first.

        With ``stride`` s > 1 only every s-th pixel of every s-th row is looked up, and each
        pixel takes its grid pixel's candidates moved by its own offset from it, the way
        PatchMatch propagates a neighbour's match: where the frame shows a piece of the key, the
        neighbour's look-alike moved along is the pixel's own. The window search then judges
        them like any other candidate; the lookup, about half a frame's time at 480p on a CPU,
        costs 1/s^2. Where the edit changes from pixel to pixel the moved
        look-alike is often not the pixel's own, so it costs quality there.
        """
        height, width = features.shape[1:]
        if stride <= 1:
            return [torch.stack([flat % self.width, flat // self.width]) for flat in self.nearest(features, count)]
        coarse = self.nearest(features[:, ::stride, ::stride].contiguous(), count)  # (count, h, w)
        ys = torch.arange(height, device=coarse.device)
        xs = torch.arange(width, device=coarse.device)
        grid = coarse[:, ys // stride][:, :, xs // stride]  # (count, H, W): each pixel's grid pixel's
        dx = (xs % stride).view(1, 1, width)
        dy = (ys % stride).view(1, height, 1)
        x = (grid % self.width + dx).clamp(max=self.width - 1)
        y = (grid // self.width + dy).clamp(max=self.height - 1)
        return [torch.stack([a, b]) for a, b in zip(x, y)]


def position_tied(features: torch.Tensor, edited: torch.Tensor, index: AppearanceIndex,
                  lookalikes: int = 8, difference: float = 0.3) -> torch.Tensor:
    """(Hk, Wk) in [0, 1]: how much the edit at each keyframe pixel is tied to its place rather
    than to its appearance.

    The keyframe pair says it: where pixels that look alike in the original (``features``
    (C, Hk, Wk)) were edited alike in ``edited`` (3, Hk, Wk), the edit is a function of
    appearance (a restyle, a recolouring), and a frame pixel may take it from any look-alike:
    the flow, which drifts, need not decide. Where most look-alikes got another edit (a logo
    painted on a plain wall: the wall elsewhere looks the same and stayed plain) only the place
    says what belongs there. Per key pixel: the median over its ``lookalikes`` nearest others of
    the mean absolute edited-colour difference, over ``difference``, clamped to 1. A difference
    of 0.3 (a third of the range, averaged over the channels) counts as another edit: at 0.1 the
    look-alikes of a posterised and inked keyframe disagreed at half its pixels (where a colour
    sits on a posterisation step or a gradient on the ink threshold), the flow took over there,
    and the result lost 2-3 dB to its drift (benchmarks/bench_propagate.py, bunny_audio).
    """
    nearest = index.nearest(features, lookalikes + 1)  # (n + 1, Hk, Wk), the pixel itself among them
    flat_edit = edited.reshape(3, -1)
    own = torch.arange(nearest[0].numel(), device=nearest.device).view_as(nearest[0])
    others = torch.stack([torch.where(n == own, nearest[-1], n) for n in nearest[:-1]])  # (n, Hk, Wk)
    gathered = flat_edit[:, others.reshape(-1)].view(3, *others.shape)  # (3, n, Hk, Wk)
    change = (gathered - edited[:, None]).abs().mean(0)  # (n, Hk, Wk)
    tied = (change.median(dim=0).values / difference).clamp(max=1)
    return tied


def open_ties(tied: torch.Tensor, width: int = 3) -> torch.Tensor:
    """``tied`` (Hk, Wk) with every tied structure narrower than ``width`` pixels removed (a
    morphological opening: the minimum, then the maximum, over ``width`` x ``width``).

    Why: a tie says only the place tells what the edit is, so the place must be known to within
    the structure's width. Chained DIS flow is good to about a pixel per step at best, so a rim
    one or two pixels wide (where a threshold-like edit switches: an ink line drawn where the
    gradient passes a level) cannot be placed by the flow; holding it there carries the flow's
    drift into the output and makes it shimmer (stylisation benchmark: 0.8 dB and flicker 1.19 ->
    1.50 of the truth's on bunny_audio), while an area painted on purpose (a logo, a patch of
    colour) survives the opening whole.
    """
    pad = width // 2
    eroded = -F.max_pool2d(-tied[None, None], width, stride=1, padding=pad)
    return F.max_pool2d(eroded, width, stride=1, padding=pad)[0, 0]
