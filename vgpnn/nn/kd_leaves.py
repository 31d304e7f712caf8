"""Nearest neighbours of low-dimensional points on any torch device: a balanced k-d tree whose
leaves are searched as dense blocks.

For a handful of dimensions (keyframe propagation looks pixels up by 6 appearance features)
an exhaustive search wastes nearly all its work, and faiss runs on the CPU only: at 1280x720
its lookup took 6 s of a frame's 6.35 s on a 16-core host beside an idle GPU. This search is
tensor code, so it runs where the features are; on a CPU its compiled twin
(kernels/kd_numba.py) walks the same tree the same way. Step by step:

1. Build. The points are split in two at the median of the dimension in which they spread
   most, and each half again, ``depth`` times: 2^depth leaves of equal size (the point count
   is padded by repeating points, which are never returned). Equal leaves make one dense
   (leaves, size, dims) block, so a search is gathers and arithmetic with no ragged lists.
   Each split is a sort within each group: deterministic, no training. Every STAGE_LEVELS
   levels (and at the leaves) each node's bounding box is kept.
2. Probes: a beam search down the tree. From the root, each kept node's descendants
   STAGE_LEVELS levels down are scored by the query's distance to their boxes (0 inside), and
   the ``beam`` nearest are kept; at the leaves, the ``probes`` nearest. A box's distance is a
   lower bound of its points' distances, so the leaves that can hold the nearest point come
   first.
3. Scan. The query is compared with every point of its probed leaves and keeps the nearest.

Approximate like any inverted-file search (the leaf holding the nearest point may rank below
``probes`` others by box distance), exact when every leaf is probed (tested against brute
force). On 854x480 appearance features the found point was on average 7e-7 (squared
distance) from the true nearest, against 4e-6 for the faiss inverted file it replaced.
"""

from __future__ import annotations

import math

import torch

from .. import kernels

# Points per leaf. Smaller leaves make the scan cheaper and the probes less likely to hold the
# nearest point: on 640x360 appearance features (6 dimensions) with 8 probes, 64 points left
# 3e-6 of squared distance to the true nearest on average, 128 points 2e-6, 256 points 7e-7,
# at about the same time; 128 is the middle.
LEAF_SIZE = 128
PROBES = 8
BEAM = 8  # nodes kept at each stage of the descent
STAGE_LEVELS = 4  # levels descended between choices: each stage scores 2^4 children per node
# Queries are scanned in chunks whose gathered candidates take about this many bytes.
CHUNK_BYTES = {"cpu": 1 << 25, "cuda": 1 << 29}


class KdLeaves:
    """A balanced k-d tree over ``points`` (N, C) float, for :meth:`nearest` queries."""

    def __init__(self, points: torch.Tensor, leaf_size: int = LEAF_SIZE):
        if points.dim() != 2 or points.shape[0] < 1:
            raise ValueError(f"expected points (N, C) with N >= 1, got {tuple(points.shape)}")
        if leaf_size < 1:
            raise ValueError(f"leaf size must be at least 1, got {leaf_size}")
        self.points = points.float()
        count, self.channels = self.points.shape
        self.count = count
        self.depth = max(0, math.ceil(math.log2(count / leaf_size)))
        leaves = 1 << self.depth
        size = math.ceil(count / leaves)
        device = self.points.device
        # Padded to leaves * size by repeating points (slot i holds point i % count): every
        # group splits into equal halves.
        order = torch.arange(leaves * size, device=device)
        # level -> (low, high) (2^level, C): the bounding box of each node's points, at the
        # levels where the search stops to choose (every STAGE_LEVELS levels and the leaves).
        self.boxes: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for level in range(self.depth):
            block = order.view(1 << level, -1)  # (groups, n): each group's points
            values = self.points[block % count]  # (groups, n, C)
            dims = (values.amax(1) - values.amin(1)).argmax(1)  # (groups,)
            along = values.gather(2, dims.view(-1, 1, 1).expand(-1, block.shape[1], 1))[..., 0]
            order = block.gather(1, along.argsort(dim=1, stable=True)).reshape(-1)
            if (level + 1) % STAGE_LEVELS == 0 or level + 1 == self.depth:
                members = self.points[order.view(2 << level, -1) % count]
                self.boxes[level + 1] = (members.amin(1), members.amax(1))
        slots = order.view(leaves, size)
        self.leaves = slots % count  # (L, S) point indices
        self.padding = slots >= count  # (L, S) the repeats, which the scan skips
        self.leaf_points = self.points[self.leaves]  # (L, S, C)
        self.use_kernel = True  # tests turn it off to run the torch search on a CPU
        self._kernel_arrays: tuple | None = None

    def probes_for(self, queries: torch.Tensor, probes: int, beam: int) -> torch.Tensor:
        """(Q, P) leaf indices to scan for ``queries`` (Q, C), P = min(probes, leaves): a beam
        search down the tree by box distance (module notes, step 2)."""
        nodes = torch.zeros((queries.shape[0], 1), dtype=torch.long, device=queries.device)
        level = 0
        while level < self.depth:
            step = min(STAGE_LEVELS, self.depth - level)
            children = (nodes[:, :, None] * (1 << step) + torch.arange(1 << step, device=nodes.device)).flatten(1)
            level += step
            low, high = self.boxes[level]
            gap = (low[children] - queries[:, None]).clamp_min_(0).square_()
            gap += (queries[:, None] - high[children]).clamp_min_(0).square_()
            keep = min(probes if level == self.depth else beam, children.shape[1])
            nodes = children.gather(1, gap.sum(2).topk(keep, dim=1, largest=False, sorted=True).indices)
        return nodes

    def kernel_arrays(self) -> tuple:
        """The tree as the compiled search (kernels/kd_numba.py) takes it: the stage levels,
        each stage's first row in the stacked boxes, the boxes' low and high corners, the leaves,
        their padding and their points (L, C, S), as contiguous numpy arrays (made once)."""
        if self._kernel_arrays is None:
            levels = sorted(self.boxes)
            sizes = [1 << level for level in levels]
            rows = [sum(sizes[:i]) for i in range(len(sizes))]
            stack = lambda corner: (torch.cat([self.boxes[level][corner] for level in levels]) if levels
                                    else self.points.new_zeros((0, self.channels)))
            self._kernel_arrays = (
                torch.tensor(levels, dtype=torch.long).numpy(), torch.tensor(rows, dtype=torch.long).numpy(),
                stack(0).contiguous().numpy(), stack(1).contiguous().numpy(), self.leaves.contiguous().numpy(),
                self.padding.contiguous().numpy(), self.leaf_points.transpose(1, 2).contiguous().numpy())
        return self._kernel_arrays

    def nearest(self, queries: torch.Tensor, count: int, probes: int = PROBES, beam: int = BEAM) -> torch.Tensor:
        """(Q, count) int64 indices into the points, nearest first (the first of equals by
        scan order), for ``queries`` (Q, C). Where the probed leaves hold fewer than ``count``
        points the row is padded with its nearest."""
        if queries.dim() != 2 or queries.shape[1] != self.channels:
            raise ValueError(f"expected queries (Q, {self.channels}), got {tuple(queries.shape)}")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        queries = queries.float().to(self.points.device)
        size = self.leaves.shape[1]
        probes = min(probes, self.leaves.shape[0])
        beam = max(1, beam)
        if self.use_kernel:
            found = kernels.kd_nearest(self, queries, count, probes, beam)
            if found is not None:
                return found
        per_query = probes * size * (self.channels + 2) * 4  # the gathered candidates' bytes
        budget = CHUNK_BYTES.get(queries.device.type, CHUNK_BYTES["cpu"])
        chunk = max(1, budget // per_query)
        found = []
        for start in range(0, queries.shape[0], chunk):
            part = queries[start:start + chunk]
            leaves = self.probes_for(part, probes, beam)  # (q, P)
            candidates = self.leaf_points[leaves].flatten(1, 2)  # (q, P * S, C)
            distance = (candidates - part[:, None]).square_().sum(2)  # (q, P * S)
            distance.masked_fill_(self.padding[leaves].flatten(1), float("inf"))
            take = min(count, distance.shape[1])
            values, best = distance.topk(take, dim=1, largest=False, sorted=True)
            index = self.leaves[leaves].flatten(1).gather(1, best)
            # Fewer real points than ``count`` in the probed leaves: the nearest fills the row.
            index = torch.where(torch.isfinite(values), index, index[:, :1])
            if take < count:
                index = torch.cat([index, index[:, :1].expand(-1, count - take)], dim=1)
            found.append(index)
        return torch.cat(found)
