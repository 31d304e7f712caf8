"""Quality figures that need no network weights (FID-style video metrics need downloaded networks).

coherence     mean squared error per element from output patches to their nearest source patch
completeness  mean squared error per element from source patches to their nearest output patch
diversity     per-voxel grayscale std across samples, averaged, over the source's grayscale std
nnf_div       zlib-compressed bytes per element of the output-to-source nearest-neighbour offsets
kept_share    the share of a weight on the source's voxels (e.g. a subject's saliency) that the
              output shows: under the nearest source patch of some output patch
border_step   a filled region's gray-level step across its edge over the steps just outside it (1: no seam)
fill_detail   a filled region's gray-level gradient over that of the pixels around it (1: as detailed)

Coherence and completeness use exact nearest neighbours for a random sample of the patches
(an unbiased estimate of the mean; the whole set would cost hours on a CPU).
"""

from __future__ import annotations

import zlib

import torch

from .flow import LUMA
from .masks import clean_keys
from .nn import ExactSearch, SearchRequest, choose_backend, make_backend
from .patches import PatchSize, field_offsets, grid_shape, largest_offset_share, unfold

_KEY_CHUNK_ELEMENTS = 2**26  # floats of unfolded key patches held at once (256 MB)


def _sampled_nearest_error(queries: torch.Tensor, keys: torch.Tensor, patch_size: PatchSize,
                           sample: int, generator: torch.Generator, query_positions: torch.Tensor | None = None,
                           key_positions: torch.Tensor | None = None) -> float:
    """Mean squared error per element from sampled patches of ``queries`` to their exact
    nearest patch of ``keys``; both (C, T, H, W). ``query_positions`` / ``key_positions``:
    patch-grid bool masks of the patches to sample from / to search among (default: all)."""
    grid = grid_shape(queries.shape, patch_size)
    per_frame = grid[1] * grid[2]
    candidates = (torch.arange(grid[0] * per_frame) if query_positions is None
                  else query_positions.reshape(-1).nonzero()[:, 0])
    picked = candidates[torch.randperm(len(candidates), generator=generator)[:sample]]
    rows = torch.cat([unfold(queries, patch_size, slice(int(t), int(t) + 1))[picked[picked // per_frame == t] % per_frame]
                      for t in (picked // per_frame).unique()])
    # Keys are unfolded a few frames at a time: all of a clip's patches at once take
    # (patch elements) x (clip voxels) floats, gigabytes at the working size.
    key_grid = grid_shape(keys.shape, patch_size)
    frames_per_chunk = max(1, _KEY_CHUNK_ELEMENTS // max(1, key_grid[1] * key_grid[2] * rows.shape[1]))
    search = ExactSearch()
    best = torch.full((rows.shape[0],), float("inf"), device=rows.device)
    for first in range(0, key_grid[0], frames_per_chunk):
        frames = slice(first, min(key_grid[0], first + frames_per_chunk))
        key_rows = unfold(keys, patch_size, frames)
        if key_positions is not None:
            key_rows = key_rows[key_positions[frames].reshape(-1)]
        if key_rows.shape[0] == 0:
            continue
        key_norms = key_rows.square().sum(1)
        for start in range(0, rows.shape[0], 256):
            chunk = rows[start:start + 256]
            nearest = search.nearest_rows(chunk, key_rows, key_norms)
            errors = (chunk - key_rows[nearest]).square().sum(1)
            best[start:start + 256] = torch.minimum(best[start:start + 256], errors)
    total = best.sum().item()
    return total / rows.numel()


def coherence(output: torch.Tensor, source: torch.Tensor, patch_size: PatchSize = (3, 7, 7),
              sample: int = 2000, seed: int = 0) -> float:
    """Lower is better: every part of ``output`` looks like some part of ``source``."""
    patch_size = tuple(min(p, s) for p, s in zip(patch_size, source.shape[1:]))
    return _sampled_nearest_error(output, source, patch_size, sample, torch.Generator().manual_seed(seed))


def region_coherence(output: torch.Tensor, source: torch.Tensor, region: torch.Tensor,
                     patch_size: PatchSize = (3, 7, 7), sample: int = 2000, seed: int = 0) -> float:
    """Coherence of the output patches that touch ``region`` (T, H, W) bool, e.g. an inpainted
    hole, against the source patches that do not touch it (what the fill may be made of)."""
    patch_size = tuple(min(p, s) for p, s in zip(patch_size, source.shape[1:]))
    touching = ~clean_keys(region, patch_size)
    return _sampled_nearest_error(output, source, patch_size, sample, torch.Generator().manual_seed(seed),
                                  query_positions=touching, key_positions=~touching)


def completeness(output: torch.Tensor, source: torch.Tensor, patch_size: PatchSize = (3, 7, 7),
                 sample: int = 2000, seed: int = 0) -> float:
    """Lower is better: ``output`` keeps the content of all of ``source``."""
    patch_size = tuple(min(p, s) for p, s in zip(patch_size, source.shape[1:]))
    return _sampled_nearest_error(source, output, patch_size, sample, torch.Generator().manual_seed(seed))


def _gray(video: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(LUMA, dtype=video.dtype, device=video.device)
    return torch.einsum("c...,c->...", video, weights)


def diversity(outputs: torch.Tensor, source: torch.Tensor) -> float:
    """Higher is more diverse; ``outputs`` (N, C, T, H, W) with N >= 2, same shape as ``source``."""
    if outputs.shape[0] < 2:
        raise ValueError("diversity needs at least two outputs")
    spread = _gray(outputs.transpose(0, 1)).std(dim=0, unbiased=False).mean()
    return float(spread / _gray(source).std(unbiased=False))


def nearest_offsets(output: torch.Tensor, source: torch.Tensor, patch_size: PatchSize = (3, 7, 7)) -> torch.Tensor:
    """(3, T', H', W') int64: for each patch position of ``output``, the (dt, dy, dx) from it to
    its nearest patch of ``source`` (the nearest-neighbour field as offsets)."""
    patch_size = tuple(min(p, s) for p, s in zip(patch_size, source.shape[1:]))
    request = SearchRequest(output[None], source, patch_size)
    field = make_backend(choose_backend("auto", request)).search(request)[0]
    return field_offsets(field, grid_shape(source.shape, patch_size))


def nnf_div(output: torch.Tensor, source: torch.Tensor, patch_size: PatchSize = (3, 7, 7),
            offsets: torch.Tensor | None = None) -> float:
    """Higher means the output re-composes the source rather than copying or shifting it.
    ``offsets``: :func:`nearest_offsets` already computed for this pair."""
    if offsets is None:
        offsets = nearest_offsets(output, source, patch_size)
    data = offsets.to(torch.uint8).cpu().numpy().tobytes()
    return len(zlib.compress(data, 9)) / len(data)


def dominant_offset_share(output: torch.Tensor, source: torch.Tensor, patch_size: PatchSize = (3, 7, 7),
                          offsets: torch.Tensor | None = None) -> float:
    """The largest share of ``output``'s patches whose nearest ``source`` patch sits at one
    (dt, dy, dx) offset from it: near 1 for a shifted copy of the source, small for an output
    re-composed from many places. ``offsets``: :func:`nearest_offsets` already computed."""
    if offsets is None:
        offsets = nearest_offsets(output, source, patch_size)
    return largest_offset_share(offsets)


def kept_share(output: torch.Tensor, source: torch.Tensor, weight: torch.Tensor, patch_size: PatchSize = (3, 7, 7),
               offsets: torch.Tensor | None = None) -> float:
    """Higher keeps more: the share of ``weight`` (T, H, W) >= 0 over ``source``'s voxels that lies
    under the nearest source patch of at least one patch of ``output`` (any shape), i.e. what of
    it the output shows somewhere. A crop keeps the weight inside the crop; a subject cut in
    half by the frame's edge keeps about half of its weight. ``offsets``: :func:`nearest_offsets`."""
    if weight.shape != source.shape[1:]:
        raise ValueError(f"expected a weight of the source's shape {tuple(source.shape[1:])}, got {tuple(weight.shape)}")
    patch_size = tuple(min(p, s) for p, s in zip(patch_size, source.shape[1:]))
    if offsets is None:
        offsets = nearest_offsets(output, source, patch_size)
    here = torch.stack(torch.meshgrid(*(torch.arange(n, device=offsets.device) for n in offsets.shape[1:]),
                                      indexing="ij"))
    corners = (offsets + here).reshape(3, -1)  # (3, N): each output patch's source patch corner
    hit = torch.zeros(grid_shape(source.shape, patch_size), device=weight.device)  # the source's patch grid
    hit[corners[0], corners[1], corners[2]] = 1
    # A voxel is shown when some hit patch covers it: spread each hit over its patch's footprint.
    covered = torch.nn.functional.conv_transpose3d(hit[None, None], hit.new_ones(1, 1, *patch_size))[0, 0] > 0
    total = float(weight.sum())
    return float(weight[covered].sum()) / total if total > 0 else 1.0


def ring_outside(region: torch.Tensor, width: int) -> torch.Tensor:
    """(T, H, W) bool: pixels within ``width`` (chessboard distance, same frame) of ``region``
    (T, H, W) bool, outside it."""
    window = (1, 2 * width + 1, 2 * width + 1)
    grown = torch.nn.functional.max_pool3d(region[None, None].float(), window, stride=1,
                                           padding=(0, width, width))[0, 0] > 0
    return grown & ~region


def _neighbour_steps(gray: torch.Tensor) -> list[tuple[torch.Tensor, tuple[slice, ...], tuple[slice, ...]]]:
    """(|step|, first pixel's index, second pixel's index) for horizontal and vertical neighbours
    of ``gray`` (T, H, W)."""
    rows = (slice(None), slice(1, None), slice(None)), (slice(None), slice(None, -1), slice(None))
    columns = (slice(None), slice(None), slice(1, None)), (slice(None), slice(None), slice(None, -1))
    return [((gray[a] - gray[b]).abs(), a, b) for a, b in (rows, columns)]


def border_step(video: torch.Tensor, region: torch.Tensor, ring: int = 3) -> float:
    """How much a filled ``region`` (T, H, W) bool of ``video`` (C, T, H, W) stands out at its edge:
    the mean gray-level step between neighbouring pixels one inside and one outside the region,
    over the mean step between neighbouring pixels both in the ``ring`` pixels just outside it.
    About 1 when the fill continues its surroundings; a fill brighter or darker than its border
    scores well above 1 even where each side is smooth, since then only the border has an edge.
    """
    gray = _gray(video)
    outside = ring_outside(region, ring)
    across, around = [], []
    for step, a, b in _neighbour_steps(gray):
        across.append(step[region[a] != region[b]])
        around.append(step[outside[a] & outside[b]])
    across, around = torch.cat(across), torch.cat(around)
    if across.numel() == 0 or around.numel() == 0:
        raise ValueError("the region needs a border and pixels around it")
    return float(across.mean() / around.mean().clamp_min(1e-6))


def fill_detail(video: torch.Tensor, region: torch.Tensor, ring: int = 8) -> float:
    """Detail of a filled ``region`` (T, H, W) bool of ``video`` (C, T, H, W) against its
    surroundings: the mean gray-level gradient magnitude between neighbours both inside the
    region over that between neighbours both in the ``ring`` pixels around it. About 1 for a
    fill as detailed as what surrounds it; a blurred or flat fill scores well below 1."""
    gray = _gray(video)
    outside = ring_outside(region, ring)
    inside_steps, around_steps = [], []
    for step, a, b in _neighbour_steps(gray):
        inside_steps.append(step[region[a] & region[b]])
        around_steps.append(step[outside[a] & outside[b]])
    inside, around = torch.cat(inside_steps), torch.cat(around_steps)
    if inside.numel() == 0 or around.numel() == 0:
        raise ValueError("the region needs neighbouring pixels inside it and around it")
    return float(inside.mean() / around.mean().clamp_min(1e-6))
