"""The matched distances of best_vote.py as a compiled CPU kernel (numba).

Torch gathers the chosen patches one in-patch offset at a time, 147 passes over scattered
memory; here each patch is compared row by row, so a patch costs one pass over 21 short runs of
contiguous voxels. The sums run in float64 and are rounded once, so the result is the torch
path's up to float32 rounding. Imported by :mod:`vgpnn.kernels` only once numba has imported.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .numba_cache import cached_njit


@cached_njit(parallel=True)
def _distances(queries, values, base, pt, ph, pw, query_height, query_width, value_height, value_width, out):
    batch, grid_t, grid_h, grid_w = base.shape
    channels = values.shape[0]
    for row in prange(batch * grid_t * grid_h):
        b = row // (grid_t * grid_h)
        t = (row // grid_h) % grid_t
        y = row % grid_h
        for x in range(grid_w):
            start = base[b, t, y, x]
            total = 0.0
            for c in range(channels):
                for dt in range(pt):
                    for dy in range(ph):
                        query_row = ((t + dt) * query_height + y + dy) * query_width + x
                        value_row = start + (dt * value_height + dy) * value_width
                        for dx in range(pw):
                            difference = queries[b, c, query_row + dx] - values[c, value_row + dx]
                            total += difference * difference
            out[b, t, y, x] = total


def matched_distances(queries: np.ndarray, values: np.ndarray, base: np.ndarray, patch_size) -> np.ndarray:
    """queries (B, C, T, H, W) and values (C, Tv, Hv, Wv) float32, base (B, T', H', W') int64 voxel
    index of each chosen patch's first voxel; returns (B, T', H', W') float32."""
    batch, channels, _, query_height, query_width = queries.shape
    _, _, value_height, value_width = values.shape
    out = np.empty(base.shape, dtype=np.float32)
    _distances(np.ascontiguousarray(queries.reshape(batch, channels, -1)),
               np.ascontiguousarray(values.reshape(channels, -1)), np.ascontiguousarray(base), *patch_size,
               query_height, query_width, value_height, value_width, out)
    return out
