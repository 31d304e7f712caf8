"""The vote as a compiled CPU kernel (numba): the same result as the torch vote, ~10x faster.

Torch has to gather every contribution into one large array before it can take a median;
here each voxel gathers its (up to pt * ph * pw) contributions into a small buffer and
selects the median in place, so memory traffic is the video, not 147 copies of it.
The median is the lower middle value (as ``torch.median``), so both paths agree exactly.

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

@cached_njit(parallel=True)
def _vote(values, base, pt, ph, pw, value_height, value_width, use_median, out):
    batch, grid_t, grid_h, grid_w = base.shape
    channels = values.shape[0]
    frames, height, width = out.shape[2], out.shape[3], out.shape[4]
    for row in prange(batch * frames * height):
        b = row // (frames * height)
        t = (row // height) % frames
        y = row % height
        buffer = np.empty(pt * ph * pw, values.dtype)
        sources = np.empty(pt * ph * pw, np.int64)
        for x in range(width):
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
                        sources[count] = base[b, gt, gy, gx] + (dt * value_height + dy) * value_width + dx
                        count += 1
            for c in range(channels):
                if use_median:
                    for i in range(count):
                        buffer[i] = values[c, sources[i]]
                    out[b, c, t, y, x] = _lower_median(buffer, count)
                else:
                    total = 0.0
                    for i in range(count):
                        total += values[c, sources[i]]
                    out[b, c, t, y, x] = total / count


def run_vote(values: np.ndarray, value_shape, base: np.ndarray, patch_size, reduce: str,
             output_shape) -> np.ndarray:
    """values (C, Tv, Hv, Wv) float32, base (B, T', H', W') int64 voxel index of each chosen
    patch's first voxel; returns (B, C, T, H, W) float32."""
    channels = values.shape[0]
    out = np.empty((base.shape[0], channels, *output_shape), dtype=values.dtype)
    _vote(np.ascontiguousarray(values.reshape(channels, -1)), np.ascontiguousarray(base),
          *patch_size, value_shape[1], value_shape[2], reduce == "median", out)
    return out
