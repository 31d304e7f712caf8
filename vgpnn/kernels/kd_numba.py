"""The k-d tree search of nn/kd_leaves.py as a compiled CPU kernel (numba).

The torch search materialises every query's candidate boxes and points (gathers of a few
hundred rows per query); here each query walks the same beam down the same tree and scans the
same leaves with nothing but a few registers and two short sorted buffers, one query per
thread. The result is the torch search's, up to the order of candidates at equal distances.
Imported by :mod:`vgpnn.kernels` only once numba has imported.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .numba_cache import cached_njit


@cached_njit(inline="always")
def _insert(distances, items, filled, capacity, distance, item):
    """Put (distance, item) into the ascending buffers of ``filled`` entries (at most
    ``capacity``; the last falls off), after any equal distance; returns the new fill."""
    if filled == capacity and distance >= distances[filled - 1]:
        return filled
    position = filled if filled < capacity else capacity - 1
    while position > 0 and distances[position - 1] > distance:
        distances[position] = distances[position - 1]
        items[position] = items[position - 1]
        position -= 1
    distances[position] = distance
    items[position] = item
    return filled + 1 if filled < capacity else filled


@cached_njit(parallel=True)
def _nearest(queries, stage_levels, stage_rows, box_low, box_high, leaves, padding, leaf_points, count, probes,
             beam, out):
    channels = queries.shape[1]
    size = leaves.shape[1]
    stages = stage_levels.shape[0]
    width = max(beam, probes, 1)
    for q in prange(queries.shape[0]):
        nodes = np.zeros(width, dtype=np.int64)
        found_nodes = np.zeros(width, dtype=np.int64)
        node_distances = np.empty(width, dtype=np.float32)
        held = 1
        level = 0
        for stage in range(stages):
            step = stage_levels[stage] - level
            keep = probes if stage == stages - 1 else beam
            keep = min(keep, held << step)
            filled = 0
            for a in range(held):
                for j in range(1 << step):
                    child = (nodes[a] << step) + j
                    row = stage_rows[stage] + child
                    gap = np.float32(0.0)
                    for c in range(channels):
                        # At most one of the two is positive: the query's distance to the box.
                        outside = max(box_low[row, c] - queries[q, c], np.float32(0.0)) + \
                            max(queries[q, c] - box_high[row, c], np.float32(0.0))
                        gap += outside * outside
                    filled = _insert(node_distances, found_nodes, filled, keep, gap, child)
            for a in range(filled):
                nodes[a] = found_nodes[a]
            held = filled
            level = stage_levels[stage]
        best = np.empty(count, dtype=np.float32)
        chosen = np.zeros(count, dtype=np.int64)
        distances = np.empty(size, dtype=np.float32)
        filled = 0
        for a in range(held):
            leaf = nodes[a]
            # Channel by channel over the leaf's points, stored (C, S) per leaf: the inner loop
            # runs over contiguous memory and vectorises.
            distances[:] = 0
            for c in range(channels):
                value = queries[q, c]
                for k in range(size):
                    difference = leaf_points[leaf, c, k] - value
                    distances[k] += difference * difference
            for k in range(size):
                if not padding[leaf, k]:
                    filled = _insert(best, chosen, filled, count, distances[k], leaves[leaf, k])
        for k in range(count):
            out[q, k] = chosen[k] if k < filled else chosen[0]


def nearest(queries: np.ndarray, stage_levels: np.ndarray, stage_rows: np.ndarray, box_low: np.ndarray,
            box_high: np.ndarray, leaves: np.ndarray, padding: np.ndarray, leaf_points: np.ndarray, count: int,
            probes: int, beam: int) -> np.ndarray:
    """(Q, count) int64 point indices for queries (Q, C) float32; the tree's arrays as
    :meth:`vgpnn.nn.kd_leaves.KdLeaves.kernel_arrays` gives them."""
    out = np.empty((queries.shape[0], count), dtype=np.int64)
    _nearest(np.ascontiguousarray(queries, dtype=np.float32), stage_levels, stage_rows, box_low, box_high, leaves,
             padding, leaf_points, count, probes, beam, out)
    return out
