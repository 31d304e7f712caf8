"""PatchMatch: approximate nearest neighbours by propagating good matches between neighbours.

1. Start from the previous field (another EM iteration of the same level) or a random one.
2. Each round, for jump steps 8, 4, 2, 1 and each of the 6 space-time neighbours at that
   distance, try the neighbour's match shifted back by the same step, with and without a
   random jitter of up to the step; then try one random key. Keep whichever is closer.
3. All positions update in parallel, so a round is a handful of large tensor operations
   that run the same on CPU and CUDA.
Patches are compared through short descriptors (see :mod:`.descriptors`), so each candidate
costs a gather of ``dims`` numbers per position, not of whole patches.
"""

from __future__ import annotations

import torch

from .base import NearestNeighbourBackend, SearchRequest, key_generator
from .descriptors import describe, principal_axes


class PatchMatch(NearestNeighbourBackend):
    name = "patchmatch"
    exact = False

    def __init__(self, rounds: int = 4, rounds_from_previous: int = 2, dims: int = 24,
                 steps: tuple[int, ...] = (8, 4, 2, 1)):
        self.rounds = rounds  # rounds from a random start
        self.rounds_from_previous = rounds_from_previous  # rounds when improving a previous field
        self.dims = dims  # descriptor length
        self.steps = steps  # jump-flooding distances, largest first

    def search(self, request: SearchRequest) -> torch.Tensor:
        device = request.queries.device
        axes = principal_axes(request.keys, request.patch_size, self.dims, key_generator())
        # One generator per query video, on the device that uses the draws (a CPU generator
        # would copy every draw to the GPU), so each video's result depends on its seed only.
        generator = [torch.Generator(device).manual_seed(seed) for seed in request.sample_seeds()]
        key_descriptors = describe(request.keys[None], axes)[0].flatten(1)  # (d, Nk)
        query_descriptors = describe(request.queries, axes).flatten(2)  # (B, d, Nq)
        key_grid, query_grid = request.key_grid, request.query_grid
        valid = None if request.valid_keys is None else request.valid_keys.reshape(-1).to(device)
        field = self._start(request, generator, valid)  # (B, Nq) flat key indices
        best = _distance(query_descriptors, key_descriptors, field)
        if valid is not None:  # a previous field may hold keys that are not allowed here
            best = best.masked_fill(~valid[field], float("inf"))
        rounds = self.rounds if request.initial_field is None else self.rounds_from_previous
        query_coords = _coordinates(query_grid, device)  # (3, Nq)
        for _ in range(rounds):
            for step in self.steps:
                for axis in range(3):
                    if step >= query_grid[axis] and step > 1:
                        continue
                    for sign in (1, -1):
                        for jitter in (0, step):
                            candidate = _propagated(field, query_coords, query_grid, key_grid,
                                                    axis, sign * step, jitter, generator)
                            field, best = _keep_better(query_descriptors, key_descriptors,
                                                       field, best, candidate, valid)
            candidate = _random_field(field.shape, key_grid, generator, device)
            field, best = _keep_better(query_descriptors, key_descriptors, field, best,
                                       candidate, valid)
        return field.reshape(field.shape[0], *query_grid)

    def _start(self, request: SearchRequest, generator: torch.Generator,
               valid: torch.Tensor | None) -> torch.Tensor:
        batch = request.queries.shape[0]
        grid = request.query_grid
        if request.initial_field is not None and tuple(request.initial_field.shape) == (batch, *grid):
            return request.initial_field.reshape(batch, -1).to(request.queries.device)
        positions = grid[0] * grid[1] * grid[2]
        if valid is None:
            return _random_field((batch, positions), request.key_grid, generator, request.queries.device)
        allowed = valid.nonzero()[:, 0]
        return allowed[_randint(0, allowed.numel(), positions, generator, allowed.device)]


def _coordinates(grid: tuple[int, int, int], device) -> torch.Tensor:
    t, y, x = torch.meshgrid(*(torch.arange(n, device=device) for n in grid), indexing="ij")
    return torch.stack([t.reshape(-1), y.reshape(-1), x.reshape(-1)])


def _randint(low: int, high: int, count: int, generators, device) -> torch.Tensor:
    """(len(generators), count) integers in [low, high), row b drawn from generator b."""
    return torch.stack([torch.randint(low, high, (count,), generator=g, device=device) for g in generators])


def _random_field(shape, key_grid, generators, device) -> torch.Tensor:
    return _randint(0, key_grid[0] * key_grid[1] * key_grid[2], shape[1], generators, device)


def _distance(queries: torch.Tensor, keys: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    # queries (B, d, Nq), keys (d, Nk), field (B, Nq) -> (B, Nq)
    chosen = keys[:, field]  # (d, B, Nq)
    return (queries.transpose(0, 1) - chosen).square().sum(0)


def _keep_better(queries, keys, field, best, candidate, valid):
    distance = _distance(queries, keys, candidate)
    if valid is not None:
        distance = distance.masked_fill(~valid[candidate], float("inf"))
    better = distance < best
    return torch.where(better, candidate, field), torch.where(better, distance, best)


def _propagated(field, query_coords, query_grid, key_grid, axis, step, jitter, generator):
    """Candidate from the neighbour ``step`` away along ``axis``: its match, shifted back."""
    batch, _ = field.shape
    size = query_grid[axis]
    neighbour_coord = (query_coords[axis] + step).clamp(0, size - 1)
    shift = neighbour_coord - query_coords[axis]  # 0 where the neighbour fell off the grid
    strides = (query_grid[1] * query_grid[2], query_grid[2], 1)
    neighbour = torch.arange(field.shape[1], device=field.device) + shift * strides[axis]
    matched = field[:, neighbour]  # (B, Nq) the neighbour's key index
    key_strides = (key_grid[1] * key_grid[2], key_grid[2], 1)
    coords = [torch.div(matched, key_strides[0], rounding_mode="floor"),
              torch.div(matched % key_strides[0], key_strides[1], rounding_mode="floor"),
              matched % key_grid[2]]
    coords[axis] = coords[axis] - shift
    if jitter:
        for a in range(3):
            coords[a] = coords[a] + _randint(-jitter, jitter + 1, matched.shape[1], generator, field.device)
    coords = [c.clamp(0, key_grid[a] - 1) for a, c in enumerate(coords)]
    return (coords[0] * key_grid[1] + coords[1]) * key_grid[2] + coords[2]
