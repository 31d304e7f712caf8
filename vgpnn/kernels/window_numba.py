"""The guided window search of apps/guided_search.py as a compiled CPU kernel (numba).

torch gathers every candidate's key features into a whole new image, then takes differences,
sums and a box filter, each a pass over memory; at 854x480 that was 0.7 s of a frame's 2.6 s
on 2 cores. Here each candidate is two passes over the frame, row by row: the per-pixel cost
read straight from the key, then its box mean compared with the best so far. The sums run in
float32 in the torch code's order of terms, so costs agree with it to rounding; where two
candidates cost the same the first is kept, as there. Imported by :mod:`vgpnn.kernels` only
once numba has imported.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .numba_cache import cached_njit


@cached_njit(parallel=True)
def _cost(target, key_rows, channels, prediction, flat, tied_here, has_tied, weight, out):
    """out (H, W) = per-pixel cost of pairing each target pixel with key entry flat[y * W + x];
    key_rows (N, K): one key pixel's features, position and tie side by side, so each pairing
    reads one cache line rather than one per channel."""
    height, width = out.shape
    for y in prange(height):
        for x in range(width):
            index = flat[y * width + x]
            total = np.float32(0.0)
            for c in range(channels):
                difference = target[c, y, x] - key_rows[index, c]
                total += difference * difference
            dx = key_rows[index, channels] - prediction[0, y, x]
            dy = key_rows[index, channels + 1] - prediction[1, y, x]
            offset = dx * dx + dy * dy
            if has_tied:
                offset *= max(key_rows[index, channels + 2], tied_here[y, x])
            out[y, x] = total + weight * offset


@cached_njit(parallel=True)
def _keep_better(cost, patch, x_position, y_position, best, matches):
    """Box-mean ``cost`` over patch x patch (the part inside the frame), and where it beats
    ``best`` take it and the position (x_position, y_position (H, W))."""
    height, width = cost.shape
    pad = patch // 2
    for y in prange(height):
        top, bottom = max(0, y - pad), min(height, y + pad + 1)
        for x in range(width):
            left, right = max(0, x - pad), min(width, x + pad + 1)
            total = np.float32(0.0)
            for row in range(top, bottom):
                for column in range(left, right):
                    total += cost[row, column]
            mean = total / np.float32((bottom - top) * (right - left))
            if mean < best[y, x]:
                best[y, x] = mean
                matches[0, y, x] = x_position[y, x]
                matches[1, y, x] = y_position[y, x]


def window_search(target: np.ndarray, flat_key: np.ndarray, channels: int, prediction: np.ndarray,
                  fields, tied_here: np.ndarray | None, weight: float,
                  patch: int) -> tuple[np.ndarray, np.ndarray]:
    """target (C, H, W), flat_key (K, N) float32 (features, then x, y, then the tie), prediction
    (2, H, W); ``fields``: an iterable of, for each candidate in order, (flat key index (H * W,) int64,
    position (2, H, W) float32). Returns (best (H, W), matches (2, H, W))."""
    height, width = target.shape[1:]
    best = np.full((height, width), np.inf, dtype=np.float32)
    matches = np.ascontiguousarray(prediction, dtype=np.float32).copy()
    cost = np.empty((height, width), dtype=np.float32)
    has_tied = tied_here is not None
    tie = np.ascontiguousarray(tied_here, dtype=np.float32) if has_tied else np.zeros((1, 1), dtype=np.float32)
    target = np.ascontiguousarray(target, dtype=np.float32)
    key_rows = np.ascontiguousarray(flat_key.T, dtype=np.float32)
    prediction = np.ascontiguousarray(prediction, dtype=np.float32)
    for flat, position in fields:
        _cost(target, key_rows, channels, prediction, np.ascontiguousarray(flat), tie, has_tied, np.float32(weight),
              cost)
        position = np.ascontiguousarray(position, dtype=np.float32)
        _keep_better(cost, patch, position[0], position[1], best, matches)
    return best, matches
