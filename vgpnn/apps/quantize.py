"""Seeded k-means, and the ranked bins the analogy's guide channels are made of.

A guide channel says, for every voxel, which of k ordered bins it falls in (slow .. fast
motion, dark .. bright tone), as a number in [0, 1]. Each video is binned on its own, so two
videos with different ranges of motion or brightness still line up bin for bin.
"""

from __future__ import annotations

import torch


def kmeans(points: torch.Tensor, k: int, seed: int = 0, iterations: int = 30,
           sample: int = 20_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster ``points`` (N, D) into at most ``k`` groups: (centres (k', D), labels (N,)).

    Centres are fitted on a seeded random sample of at most ``sample`` points (k-means++
    start, then Lloyd iterations) and every point gets its nearest centre. Fewer than ``k``
    centres come back when the points have fewer than ``k`` distinct values.
    """
    if points.dim() != 2 or points.shape[0] < 1:
        raise ValueError(f"expected points (N, D) with N >= 1, got {tuple(points.shape)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    generator = torch.Generator().manual_seed(seed)
    data = points.float()
    if data.shape[0] > sample:
        data = data[torch.randperm(data.shape[0], generator=generator)[:sample].to(points.device)]
    centres = _plus_plus_start(data, k, generator)
    for _ in range(iterations):
        labels = torch.cdist(data, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, labels, data)
        counts = torch.bincount(labels, minlength=centres.shape[0]).to(data)[:, None]
        moved = torch.where(counts > 0, sums / counts.clamp_min(1), centres)  # an empty group keeps its centre
        if torch.equal(moved, centres):
            break
        centres = moved
    labels = torch.cat([torch.cdist(chunk, centres).argmin(1) for chunk in points.float().split(65_536)])
    return centres, labels


def ranked_bins(points: torch.Tensor, k: int, seed: int = 0, exponent: float = 1.0) -> torch.Tensor:
    """(N,) values in [0, 1]: each point's k-means bin, bins ranked by their centre's first
    coordinate (lowest 0, highest 1), as (rank / highest rank) ** ``exponent``. One bin: zeros."""
    centres, labels = kmeans(points, k, seed)
    rank = torch.empty(centres.shape[0], dtype=torch.long, device=centres.device)
    rank[centres[:, 0].argsort()] = torch.arange(centres.shape[0], device=centres.device)
    highest = max(1, centres.shape[0] - 1)
    return (rank[labels].to(points.dtype if points.is_floating_point() else torch.float32) / highest) ** exponent


def equalized_ranks(values: torch.Tensor) -> torch.Tensor:
    """``values`` (any shape) replaced by their rank in [0, 1] (0 the lowest, 1 the highest),
    equal values sharing the mean of their ranks. Two videos ranked this way line up quantile
    by quantile: the 30% most textured voxels of one pair with the 30% most textured of the
    other, whatever either's range."""
    flat = values.reshape(-1)
    if flat.numel() < 2:
        return torch.zeros_like(values, dtype=torch.float32)
    order = flat.argsort()
    _, group, counts = torch.unique_consecutive(flat[order], return_inverse=True, return_counts=True)
    last = counts.cumsum(0).to(torch.float32) - 1  # each group's highest position
    mean_position = last - (counts.to(torch.float32) - 1) / 2
    ranks = torch.empty(flat.shape, dtype=torch.float32, device=flat.device)
    ranks[order] = mean_position[group] / (flat.numel() - 1)
    return ranks.reshape(values.shape)


def _plus_plus_start(data: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++: each next centre drawn with probability proportional to its squared distance
    from the centres so far; stops early when every point already sits on a centre."""
    first = torch.randint(data.shape[0], (1,), generator=generator).item()
    centres = data[first:first + 1]
    nearest = (data - centres).square().sum(1)
    while centres.shape[0] < k:
        total = nearest.sum()
        if total <= 0:
            break
        pick = torch.multinomial((nearest / total).cpu(), 1, generator=generator).item()
        centres = torch.cat([centres, data[pick:pick + 1]])
        nearest = torch.minimum(nearest, (data - data[pick]).square().sum(1))
    return centres
