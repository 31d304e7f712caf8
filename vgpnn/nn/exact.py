"""Exhaustive nearest-neighbour search as chunked matrix products.

Squared distance |q - k|^2 = |q|^2 - 2 q.k + |k|^2, so the ranking needs only q.k and |k|^2.
The products run in fast precision (tf32 on CUDA); the few best candidates per query are then
re-scored exactly from the patches themselves, so rounding cannot change the winner except
between candidates whose distances differ by less than rounding. Memory stays bounded: the
score matrix is built ``max_scores`` entries at a time, never queries x keys at once.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ..patches import unfold
from .base import NearestNeighbourBackend, SearchRequest


class ExactSearch(NearestNeighbourBackend):
    name = "exact"
    exact = True

    def __init__(self, max_scores: int | None = None, recheck: int = 4):
        self.max_scores = max_scores  # entries of one chunk of the score matrix (None: by device)
        self.recheck = recheck  # candidates per query re-scored exactly
        self._prepared = None  # (key video, valid keys, key rows, key norms) of the last search

    def search(self, request: SearchRequest) -> torch.Tensor:
        # 128 MB of scores on a CPU (cache-friendly); 1 GB on a GPU (fewer, larger products).
        max_scores = self.max_scores or (2**28 if request.queries.is_cuda else 2**25)
        with _fast_float32_matmul(request.queries.is_cuda):
            return self._search(request, max_scores)

    def _search(self, request: SearchRequest, max_scores: int) -> torch.Tensor:
        cached = self._prepared
        if cached is None or cached[0] is not request.keys or cached[1] is not request.valid_keys:
            keys = unfold(request.keys, request.patch_size)  # (Nk, D)
            key_norms = keys.square().sum(1)
            if request.valid_keys is not None:
                key_norms = key_norms.masked_fill(~request.valid_keys.reshape(-1), float("inf"))
            self._prepared = cached = (request.keys, request.valid_keys, keys, key_norms)
        keys, key_norms = cached[2], cached[3]
        batch = request.queries.shape[0]
        grid = request.query_grid
        if batch > 1 and batch * grid[0] * grid[1] * grid[2] * keys.shape[0] <= max_scores:
            # Small levels: every video's rows in one product. Launches, not arithmetic, are
            # what such a level costs on a GPU, and each row's answer is the same either way.
            rows = torch.cat([unfold(query, request.patch_size) for query in request.queries])
            return self.nearest_rows(rows, keys, key_norms).reshape(batch, *grid)
        fields = [self._search_video(request.queries[b], keys, key_norms, request, max_scores)
                  for b in range(batch)]
        return torch.stack(fields).reshape(batch, *grid)

    def _search_video(self, query: torch.Tensor, keys: torch.Tensor, key_norms: torch.Tensor,
                      request: SearchRequest, max_scores: int) -> torch.Tensor:
        grid = request.query_grid
        key_count = keys.shape[0]
        frames_per_chunk = max(1, max_scores // max(1, grid[1] * grid[2] * key_count))
        rows_per_chunk = max(1, max_scores // key_count)
        answers = []
        for start in range(0, grid[0], frames_per_chunk):
            rows = unfold(query, request.patch_size, slice(start, min(grid[0], start + frames_per_chunk)))
            for row_start in range(0, rows.shape[0], rows_per_chunk):
                chunk = rows[row_start:row_start + rows_per_chunk]
                answers.append(self.nearest_rows(chunk, keys, key_norms))
        return torch.cat(answers)

    def nearest_rows(self, rows: torch.Tensor, keys: torch.Tensor, key_norms: torch.Tensor) -> torch.Tensor:
        """Index of the nearest row of ``keys`` (N, D) for each row of ``rows`` (n, D), given
        ``key_norms`` = |key|^2 (inf for keys that are not allowed)."""
        scores = torch.addmm(key_norms[None, :], rows, keys.T, alpha=-2.0)  # (n, Nk), |q|^2 dropped
        count = min(self.recheck, keys.shape[0])
        candidates = scores.topk(count, dim=1, largest=False).indices  # (n, count)
        if count == 1:
            return candidates[:, 0]
        exact = (rows[:, None, :] - keys[candidates]).square().sum(-1)  # (n, count)
        exact = exact.masked_fill(~torch.isfinite(key_norms[candidates]), float("inf"))
        return candidates.gather(1, exact.argmin(1, keepdim=True))[:, 0]


@contextmanager
def _fast_float32_matmul(enabled: bool):
    """tf32 products on CUDA for the ranking; the exact re-check keeps the winners right."""
    if not enabled:
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
