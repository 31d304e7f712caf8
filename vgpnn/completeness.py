"""Exact nearest-neighbour search with GPNN's completeness weighting.

Plain nearest neighbours let many queries pile onto the few source patches that fit best, so
an output can be made of one corner of the source. GPNN (Granot et al. 2022) divides each
query-key distance by how close that key comes to *any* query:

    score(q, k) = d(q, k) / (alpha + min over q' of d(q', k))

A key that some query matches almost exactly gets a small divisor, so every other query finds
it expensive; a key no query is near (content not used yet) gets a large one, so it becomes
cheap. The output then draws on the whole source. It needs every query-key distance, so it is
only for levels small enough for exhaustive search.

Distances here are mean squared differences per patch element, so ``alpha`` does not depend on
the patch size or the number of channels.
"""

from __future__ import annotations

import torch

from .patches import PatchSize, grid_shape, unfold

# GPNN's alpha, on our per-element scale: about the distance between a patch and its
# slightly shifted copy in ordinary footage, so that keys used only that well still count as used.
DEFAULT_ALPHA = 5e-3


def completeness_search(queries: torch.Tensor, keys: torch.Tensor, patch_size: PatchSize,
                        alpha: float = DEFAULT_ALPHA, max_scores: int = 2**24) -> torch.Tensor:
    """For each query video in ``queries`` (B, C, Tq, Hq, Wq), the field (B, Tq', Hq', Wq') of
    flat key-grid indices into ``keys`` (C, Tk, Hk, Wk) that minimise the weighted score above.
    ``max_scores`` bounds how many distances exist at once."""
    if queries.dim() != 5 or keys.dim() != 4 or queries.shape[1] != keys.shape[0]:
        raise ValueError(f"expected queries (B, C, T, H, W) and keys (C, T, H, W) with the same C, got "
                         f"{tuple(queries.shape)} and {tuple(keys.shape)}")
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    key_rows = unfold(keys, patch_size)  # (Nk, D)
    key_norms = key_rows.square().sum(1)
    dims = key_rows.shape[1]
    rows_per_chunk = max(1, max_scores // key_rows.shape[0])
    grid = grid_shape(queries.shape, patch_size)
    fields = []
    for video in queries:
        query_rows = unfold(video, patch_size)  # (Nq, D)
        chunks = query_rows.split(rows_per_chunk)

        def distances(chunk: torch.Tensor) -> torch.Tensor:  # (n, Nk) mean squared differences
            products = torch.addmm(key_norms[None, :], chunk, key_rows.T, alpha=-2.0)
            return (products + chunk.square().sum(1, keepdim=True)).clamp_min_(0) / dims

        # Pass 1: how closely each key is approached by its nearest query.
        closest = torch.stack([distances(chunk).amin(0) for chunk in chunks]).amin(0)  # (Nk,)
        divisor = closest + alpha
        # Pass 2: each query's best key under the weighted score.
        fields.append(torch.cat([(distances(chunk) / divisor).argmin(1) for chunk in chunks]))
    return torch.stack(fields).reshape(queries.shape[0], *grid)
