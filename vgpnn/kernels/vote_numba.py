"""The vote as a compiled CPU kernel (numba): the same result as the torch vote, ~10x faster.

Torch has to gather every contribution into one large array before it can take a median;
here each voxel gathers its (up to pt * ph * pw) contributions into a small buffer and
selects the median in place, so memory traffic is the video, not 147 copies of it.
The median is the lower middle value (as ``torch.median``), so both paths agree exactly.

Most contributions repeat: where the chosen patches are a shifted copy of each other (a
coherent field, half the voxels of a finished level), every covering patch names the same
source voxel. So the contributions are first counted by source voxel; up to 32 distinct ones,
the median comes from a short sort of those values weighted by their counts (one read when
there is only one), which halved the finest level's vote on the 256x144x15 example. Beyond
32, the contributions are selected among directly.

Counting by source voxel is done by runs: a patch's offset (its chosen first voxel minus its
own position, as flat indices of the value video) names the source voxel of every voxel it
covers (that voxel's own index plus the offset), so patches with one offset contribute one
source, and neighbours along a row of the field that continue one shifted copy (consecutive
first voxels) share their offset. Each field row's run lengths are found once per vote; a voxel
then takes its up to pw patches per covering row a run at a time, one step per row where one
copy covers it (about half the voxels of a finished level) instead of one per patch.

Imported by :mod:`vgpnn.kernels` only once numba has imported; nothing is compiled until the
first vote.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .numba_cache import cached_njit


@cached_njit(inline="always")
def _lower_median(buffer, count):
    # Hoare quickselect of the ((count - 1) // 2)-th smallest value, in place.
    k = (count - 1) // 2
    lo, hi = 0, count - 1
    while lo < hi:
        pivot = buffer[(lo + hi) >> 1]
        i, j = lo, hi
        while i <= j:
            while buffer[i] < pivot:
                i += 1
            while buffer[j] > pivot:
                j -= 1
            if i <= j:
                buffer[i], buffer[j] = buffer[j], buffer[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return buffer[k]
    return buffer[k]

@cached_njit(inline="always")
def _weighted_lower_medians(values, distinct, copies, kinds, count, sorted_values, sorted_copies, out, b, t, y, x):
    """out[b, :, t, y, x]: per channel, the lower median of ``count`` contributions that are
    ``kinds`` distinct source voxels (rows of the channels-last ``values``), each ``copies``
    times: the same value as selecting among all of them, from a short sort per channel. A
    source's channels sit side by side, so each source is read once for all of them."""
    channels = values.shape[1]
    for j in range(kinds):
        for c in range(channels):
            value = values[distinct[j], c]
            i = j
            while i > 0 and sorted_values[c, i - 1] > value:
                sorted_values[c, i] = sorted_values[c, i - 1]
                sorted_copies[c, i] = sorted_copies[c, i - 1]
                i -= 1
            sorted_values[c, i] = value
            sorted_copies[c, i] = copies[j]
    wanted = (count - 1) // 2
    for c in range(channels):
        seen = 0
        chosen = sorted_values[c, kinds - 1]
        for j in range(kinds):
            seen += sorted_copies[c, j]
            if seen > wanted:
                chosen = sorted_values[c, j]
                break
        out[b, c, t, y, x] = chosen


# Distinct sources tracked per voxel before falling back to selecting among all contributions.
_DISTINCT = 32
_LONGEST_RUN = 255  # run lengths are kept as bytes; a patch is far narrower


@cached_njit(parallel=True)
def _row_runs(base, runs):
    """runs[b, t, y, x]: how many patches up to and including x along the field row continue
    one shifted copy (their first voxels consecutive), at most _LONGEST_RUN."""
    batch, grid_t, grid_h, grid_w = base.shape
    for row in prange(batch * grid_t * grid_h):
        b = row // (grid_t * grid_h)
        t = (row // grid_h) % grid_t
        y = row % grid_h
        run = 0
        for x in range(grid_w):
            run = min(run + 1, _LONGEST_RUN) if x > 0 and base[b, t, y, x] == base[b, t, y, x - 1] + 1 else 1
            runs[b, t, y, x] = run


@cached_njit(parallel=True)
def _median_vote(values, base, runs, pt, ph, pw, value_height, value_width, out):
    """values: channels-last, (voxels, C)."""
    batch, grid_t, grid_h, grid_w = base.shape
    channels = values.shape[1]
    frames, height, width = out.shape[2], out.shape[3], out.shape[4]
    most = pt * ph * pw
    for row in prange(batch * frames * height):
        b = row // (frames * height)
        t = (row // height) % frames
        y = row % height
        buffer = np.empty(most, values.dtype)
        run_sources = np.empty(most, np.int64)  # every run's source voxel and length, in order
        run_lengths = np.empty(most, np.int64)
        distinct = np.empty(_DISTINCT, np.int64)
        copies = np.empty(_DISTINCT, np.int64)
        sorted_values = np.empty((channels, _DISTINCT), values.dtype)
        sorted_copies = np.empty((channels, _DISTINCT), np.int64)
        first_t, last_t = max(t - pt + 1, 0), min(t, grid_t - 1)
        first_y, last_y = max(y - ph + 1, 0), min(y, grid_h - 1)
        for x in range(width):
            here = (t * value_height + y) * value_width + x  # this voxel's own index
            first_x = max(x - pw + 1, 0)
            count = 0
            spans = 0
            kinds = 0  # distinct sources so far; _DISTINCT + 1: too many to track
            last = 0
            for gt in range(first_t, last_t + 1):
                for gy in range(first_y, last_y + 1):
                    gx = min(x, grid_w - 1)
                    while gx >= first_x:
                        length = min(np.int64(runs[b, gt, gy, gx]), gx - first_x + 1)
                        source = base[b, gt, gy, gx] - (gt * value_height + gy) * value_width - gx + here
                        run_sources[spans] = source
                        run_lengths[spans] = length
                        spans += 1
                        count += length
                        gx -= length
                        if kinds > _DISTINCT:
                            continue
                        if kinds > 0 and distinct[last] == source:
                            copies[last] += length
                            continue
                        found = -1
                        for j in range(kinds):
                            if distinct[j] == source:
                                found = j
                                break
                        if found >= 0:
                            copies[found] += length
                            last = found
                        elif kinds < _DISTINCT:
                            distinct[kinds] = source
                            copies[kinds] = length
                            last = kinds
                            kinds += 1
                        else:
                            kinds = _DISTINCT + 1
            # A source voxel named by more than half the contributions holds the middle rank in
            # every channel's order (its copies are a block longer than half), so it is the median.
            majority = -1
            if kinds <= _DISTINCT:
                for j in range(kinds):
                    if 2 * copies[j] > count:
                        majority = j
            if majority >= 0:
                for c in range(channels):
                    out[b, c, t, y, x] = values[distinct[majority], c]
            elif kinds <= _DISTINCT:
                _weighted_lower_medians(values, distinct, copies, kinds, count, sorted_values, sorted_copies,
                                        out, b, t, y, x)
            else:
                for c in range(channels):
                    filled = 0
                    for span in range(spans):
                        value = values[run_sources[span], c]
                        for _ in range(run_lengths[span]):
                            buffer[filled] = value
                            filled += 1
                    out[b, c, t, y, x] = _lower_median(buffer, count)


@cached_njit(parallel=True)
def _mean_vote(values, base, pt, ph, pw, value_height, value_width, out):
    """Contributions added in float64 in a fixed order (frame, row, column offset), the order
    the Triton mean kernel uses too, so both round alike."""
    batch, grid_t, grid_h, grid_w = base.shape
    channels = values.shape[0]
    frames, height, width = out.shape[2], out.shape[3], out.shape[4]
    for row in prange(batch * frames * height):
        b = row // (frames * height)
        t = (row // height) % frames
        y = row % height
        for x in range(width):
            for c in range(channels):
                total = 0.0
                count = 0
                for dt in range(pt):
                    gt = t - dt
                    if gt < 0 or gt >= grid_t:
                        continue
                    for dy in range(ph):
                        gy = y - dy
                        if gy < 0 or gy >= grid_h:
                            continue
                        for dx in range(pw):
                            gx = x - dx
                            if gx < 0 or gx >= grid_w:
                                continue
                            total += values[c, base[b, gt, gy, gx] + (dt * value_height + dy) * value_width + dx]
                            count += 1
                out[b, c, t, y, x] = total / count


def run_vote(values: np.ndarray, value_shape, base: np.ndarray, patch_size, reduce: str,
             output_shape) -> np.ndarray:
    """values (C, Tv, Hv, Wv) float32, base (B, T', H', W') int64 voxel index of each chosen
    patch's first voxel; returns (B, C, T, H, W) float32."""
    channels = values.shape[0]
    out = np.empty((base.shape[0], channels, *output_shape), dtype=values.dtype)
    flat_values = np.ascontiguousarray(values.reshape(channels, -1))
    base = np.ascontiguousarray(base)
    if reduce == "median":
        runs = np.empty(base.shape, np.uint8)
        _row_runs(base, runs)
        _median_vote(np.ascontiguousarray(flat_values.T), base, runs, *patch_size, value_shape[1], value_shape[2], out)
    else:
        _mean_vote(flat_values, base, *patch_size, value_shape[1], value_shape[2], out)
    return out
