"""PatchMatch: approximate nearest neighbours by propagating good matches between neighbours.

1. Start from the previous field (another EM iteration of the same level) or a random one.
2. Each round, for jump steps 8, 4, 2, 1: from each of the 6 space-time neighbours at that
   distance, propose the neighbour's match shifted back by the same step, with and without a
   random jitter of up to the step (12 proposals, scored together); then propose one random
   key. Keep whichever is closest.
3. Every position updates from the same proposals in parallel, so a step is a handful of
   large tensor operations that run the same on CPU and CUDA (few launches on a GPU).
Patches are compared through short descriptors (see :mod:`.descriptors`), computed straight
from the videos, so each proposal costs a gather of ``dims`` numbers per position and no
unfolded patch is ever held. Positions are processed ``chunk`` at a time to bound memory.
"""

from __future__ import annotations

import torch

from ..patches import grid_coordinates
from .base import NearestNeighbourBackend, SearchRequest, key_generator
from .descriptors import describe, principal_axes


class PatchMatch(NearestNeighbourBackend):
    name = "patchmatch"
    exact = False

    def __init__(self, rounds: int = 4, rounds_from_previous: int = 2, dims: int = 24,
                 steps: tuple[int, ...] = (8, 4, 2, 1), chunk: int = 2**18):
        self.rounds = rounds  # rounds from a random start
        self.rounds_from_previous = rounds_from_previous  # rounds when improving a previous field
        self.dims = dims  # descriptor length
        self.steps = steps  # jump-flooding distances, largest first
        self.chunk = chunk  # positions handled at once (bounds memory; not scaled by the batch,
        # because chunk boundaries and random draws per chunk must not depend on the batch)
        self._prepared = None  # (key video, axes, key descriptors) of the last search

    def _key_descriptors(self, request: SearchRequest, dtype: torch.dtype):
        """Principal axes and key descriptors, reused while the same key video comes back
        (the EM iterations of one level all match against the same values)."""
        if self._prepared is None or self._prepared[0] is not request.keys:
            axes = principal_axes(request.keys, request.patch_size, self.dims, key_generator())
            keys = describe(request.keys[None], axes, dtype)[0].flatten(1).T.contiguous()  # (Nk, d)
            self._prepared = (request.keys, axes, keys)
        return self._prepared[1], self._prepared[2]

    def search(self, request: SearchRequest) -> torch.Tensor:
        device = request.queries.device
        # Half precision halves the memory traffic of the gathers on a GPU; sums stay float32.
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        axes, keys = self._key_descriptors(request, dtype)
        queries = describe(request.queries, axes, dtype).flatten(2).transpose(1, 2).contiguous()  # (B, Nq, d)
        # One generator per query video, on the device that uses the draws (a CPU generator
        # would copy every draw to the GPU), so each video's result depends on its seed only.
        generators = [torch.Generator(device).manual_seed(seed) for seed in request.sample_seeds()]
        valid = None if request.valid_keys is None else request.valid_keys.reshape(-1).to(device)
        state = _State(queries, keys, valid, request.query_grid, request.key_grid, generators, self.chunk)
        state.start(request.initial_field)
        rounds = self.rounds if request.initial_field is None else self.rounds_from_previous
        for _ in range(rounds):
            for step in self.steps:
                moves = [(axis, sign * step, jitter) for axis in range(3)
                         if step < state.query_grid[axis] or step == 1
                         for sign in (1, -1) for jitter in (0, step)]
                if moves:
                    state.try_neighbours(moves)
            state.try_random()
        return state.field.reshape(state.field.shape[0], *request.query_grid)


class _State:
    """The field being improved and its distances, with the proposals PatchMatch makes."""

    def __init__(self, queries, keys, valid, query_grid, key_grid, generators, chunk):
        self.queries, self.keys, self.valid = queries, keys, valid
        self.query_grid, self.key_grid = query_grid, key_grid
        self.generators, self.chunk = generators, chunk
        self.device = queries.device
        self.count = queries.shape[1]
        self.field = torch.empty(0)
        self.best = torch.empty(0)

    def start(self, initial_field: torch.Tensor | None) -> None:
        batch = self.queries.shape[0]
        if initial_field is not None and tuple(initial_field.shape) == (batch, *self.query_grid):
            self.field = initial_field.reshape(batch, -1).to(self.device).clone()
        elif self.valid is None:
            self.field = self._random_keys(self.count)
        else:
            allowed = self.valid.nonzero()[:, 0]
            self.field = allowed[_randint(0, allowed.numel(), self.count, self.generators, self.device)]
        self.best = torch.cat([self._distance(self.field[:, s:e], s, e) for s, e in self._chunks()], 1)

    def try_neighbours(self, moves: list[tuple[int, int, int]]) -> None:
        """Score the proposals of every (axis, step, jitter) move at once; keep the best."""
        for start, stop in self._chunks():
            proposals = self._propagated(start, stop, moves)  # (M, B, n)
            distances = self._distance(proposals, start, stop)  # (M, B, n)
            best_move = distances.argmin(0, keepdim=True)
            candidate = proposals.gather(0, best_move)[0]
            distance = distances.gather(0, best_move)[0]
            self._keep_better(candidate, start, stop, distance)

    def try_random(self) -> None:
        for start, stop in self._chunks():
            self._keep_better(self._random_keys(stop - start), start, stop)

    def _chunks(self):
        return [(s, min(self.count, s + self.chunk)) for s in range(0, self.count, self.chunk)]

    def _random_keys(self, count: int) -> torch.Tensor:
        total = self.key_grid[0] * self.key_grid[1] * self.key_grid[2]
        return _randint(0, total, count, self.generators, self.device)

    def _distance(self, candidate: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        chosen = self.keys[candidate]  # (..., B, n, d)
        distance = (self.queries[:, start:stop] - chosen).float().square().sum(-1)  # (..., B, n)
        if self.valid is not None:
            distance = distance.masked_fill(~self.valid[candidate], float("inf"))
        return distance

    def _keep_better(self, candidate: torch.Tensor, start: int, stop: int,
                     distance: torch.Tensor | None = None) -> None:
        if distance is None:
            distance = self._distance(candidate, start, stop)
        better = distance < self.best[:, start:stop]
        self.field[:, start:stop] = torch.where(better, candidate, self.field[:, start:stop])
        self.best[:, start:stop] = torch.where(better, distance, self.best[:, start:stop])

    def _propagated(self, start: int, stop: int, moves: list[tuple[int, int, int]]) -> torch.Tensor:
        """For positions [start, stop) and each move (axis, step, jitter): the match of the
        neighbour ``step`` away along ``axis``, shifted back by the same amount, plus a random
        jitter of up to ``jitter`` per axis, clamped into the key grid. All moves are computed
        together (a few large operations instead of a few per move). Returns (M, B, n)."""
        device = self.device
        delta = torch.zeros(len(moves), 3, 1, dtype=torch.int64)
        for m, (axis, step, _) in enumerate(moves):
            delta[m, axis, 0] = step
        delta = delta.to(device)
        jitter = torch.tensor([j for _, _, j in moves], device=device).view(-1, 1, 1, 1)  # (M, 1, 1, 1)
        positions = torch.arange(start, stop, device=device)
        here = torch.stack(grid_coordinates(positions, self.query_grid))  # (3, n)
        limits = torch.tensor(self.query_grid, device=device).view(1, 3, 1) - 1
        there = torch.minimum(torch.clamp_min(here + delta, 0), limits)  # (M, 3, n)
        shift = there - here  # 0 where the neighbour would fall off the grid
        strides = torch.tensor((self.query_grid[1] * self.query_grid[2], self.query_grid[2], 1),
                               device=device).view(1, 3, 1)
        neighbour = (there * strides).sum(1)  # (M, n)
        matched = self.field[:, neighbour].transpose(0, 1)  # (M, B, n) the neighbours' matches
        coords = torch.stack(grid_coordinates(matched, self.key_grid), 2)  # (M, B, 3, n)
        coords = coords - shift[:, None]
        if bool((jitter > 0).any()):
            noise = torch.stack([torch.rand((len(moves), 3, stop - start), generator=g, device=device)
                                 for g in self.generators], 1)  # (M, B, 3, n) in [0, 1)
            coords = coords + (noise * (2 * jitter + 1)).long() - jitter
        key_limits = torch.tensor(self.key_grid, device=device).view(1, 1, 3, 1) - 1
        coords = torch.minimum(torch.clamp_min(coords, 0), key_limits)
        return (coords[:, :, 0] * self.key_grid[1] + coords[:, :, 1]) * self.key_grid[2] + coords[:, :, 2]


def _randint(low: int, high: int, count: int, generators, device) -> torch.Tensor:
    """(len(generators), count) integers in [low, high), row b drawn from generator b."""
    return torch.stack([torch.randint(low, high, (count,), generator=g, device=device) for g in generators])
