"""Approximate nearest neighbours with faiss (CPU): an inverted-file index over patch descriptors.

Keys are clustered into ``lists`` cells by k-means; each query is compared only with the keys
of its ``probes`` nearest cells. Descriptors are the patches' leading principal components
(:mod:`.descriptors`), so neither keys nor queries are ever unfolded into whole patches.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import faiss_available  # noqa: F401  (where it always was)
from .base import NearestNeighbourBackend, SearchRequest, key_generator
from .descriptors import describe, principal_axes


class FaissSearch(NearestNeighbourBackend):
    name = "faiss"
    exact = False

    def __init__(self, dims: int = 24, probes: int = 1, keys_per_list: int = 256):
        self.dims = dims  # descriptor length
        self.probes = probes  # cells searched per query
        self.keys_per_list = keys_per_list  # sets the number of cells: keys / this
        self._prepared = None  # (keys, valid_keys, axes, index, key_ids) of the last search

    def _prepare(self, request: SearchRequest, generator: torch.Generator):
        """Index the keys, reusing the last index when the same key video comes back (the EM
        iterations of one level all match against the same values)."""
        cached = self._prepared
        if cached is not None and cached[0] is request.keys and cached[1] is request.valid_keys:
            return cached[2:]
        keys = request.keys.float().cpu()
        axes = principal_axes(keys, request.patch_size, self.dims, generator)
        key_descriptors = describe(keys[None], axes)[0].flatten(1).T  # (Nk, d)
        key_ids = torch.arange(key_descriptors.shape[0])
        if request.valid_keys is not None:
            key_ids = request.valid_keys.reshape(-1).cpu().nonzero()[:, 0]
            key_descriptors = key_descriptors[key_ids]
        key_array = np.ascontiguousarray(key_descriptors.numpy(), dtype=np.float32)
        index = self._index(key_array, generator)
        self._prepared = (request.keys, request.valid_keys, axes, index, key_ids)
        return axes, index, key_ids

    def search(self, request: SearchRequest) -> torch.Tensor:
        import faiss

        faiss.omp_set_num_threads(torch.get_num_threads())
        axes, index, key_ids = self._prepare(request, key_generator())
        batch = request.queries.shape[0]
        fields = []
        for b in range(batch):
            query = describe(request.queries[b:b + 1].float().cpu(), axes)[0].flatten(1).T  # (Nq, d)
            _, found = index.search(np.ascontiguousarray(query.numpy()), 1)
            found = torch.from_numpy(found[:, 0]).clamp_min(0)  # -1 only if a probe found nothing
            fields.append(key_ids[found])
        return torch.stack(fields).reshape(batch, *request.query_grid).to(request.queries.device)

    def _index(self, keys: np.ndarray, generator: torch.Generator):
        import faiss

        count, dims = keys.shape
        lists = int(min(max(1, count // self.keys_per_list), 4 * math.sqrt(count)))
        if lists <= 1:
            index = faiss.IndexFlatL2(dims)
            index.add(keys)
            return index
        quantizer = faiss.IndexFlatL2(dims)
        index = faiss.IndexIVFFlat(quantizer, dims, lists)
        index.cp.seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        training = min(count, 64 * lists)
        sample = torch.randperm(count, generator=generator)[:training].numpy()
        index.train(keys[sample])
        index.add(keys)
        index.nprobe = min(self.probes, lists)
        return index
