"""PatchMatch: approximate nearest neighbours by propagating good matches between neighbours.

1. Start from the previous field (another EM iteration of the same level) or a random one.
2. Each round, for jump steps 8, 4, 2, 1 (2, 1 when refining an earlier EM iteration's field
   of the same level, see ``refine_steps``): from each of the 6 space-time neighbours at that
   distance, propose the neighbour's match shifted back by the same step, with and without a
   random jitter of up to the step (12 proposals, scored together); then propose one random
   key. Keep whichever is closest.
3. Every position updates from the same proposals in parallel, so a step is a handful of
   large tensor operations that run the same on CPU and CUDA (few launches on a GPU).
How proposals are scored lives in :mod:`.patch_scores`: on CUDA with Triton and on a CPU
with numba, whole patches compared straight from the videos in compiled kernels that also run
the rounds (:func:`vgpnn.kernels.patchmatch_fused`; on a CPU the whole search, random start
included, is one kernel's); elsewhere short descriptors, computed straight from the videos, so
each proposal costs a gather of ``dims`` numbers per position.
No unfolded patch is ever held. Positions are processed ``chunk`` at a time to bound memory.
"""

from __future__ import annotations

import torch

from .. import kernels
from ..patches import grid_coordinates
from . import patchmatch_rounds_from_previous
from .base import NearestNeighbourBackend, SearchRequest, key_generator
from .patch_scores import DescriptorScores, PatchScores

DISTANCES = ("auto", "patches", "descriptors")


class PatchMatch(NearestNeighbourBackend):
    name = "patchmatch"
    exact = False

    def __init__(self, rounds: int = 4, rounds_from_previous: int | None = None, dims: int = 24,
                 steps: tuple[int, ...] = (8, 4, 2, 1), refine_steps: tuple[int, ...] = (2, 1),
                 chunk: int = 2**18, distances: str = "auto"):
        if distances not in DISTANCES:
            raise ValueError(f"distances must be one of {DISTANCES}, got {distances!r}")
        self.rounds = rounds  # rounds from a random start
        # Rounds when improving a previous field; None: 1 with the CPU kernel or on a large level
        # (SearchRequest.quick), 2 elsewhere. On the CPU each proposal is a serial distance, and
        # on the 256x144x15 example's finest level a second round lowered the mean patch distance
        # by 0.3 to 1 % for 1.7 to 1.9x the time; on a GPU the large levels are most of a 1080p
        # job's time (the propagate kernel was 87 % of a 1920x1080x30 variation on an H200).
        self.rounds_from_previous = rounds_from_previous
        self.dims = dims  # descriptor length
        self.steps = steps  # jump-flooding distances, largest first
        # Jumps when refining (SearchRequest.refining): the field already holds each region's
        # layout, and long jumps then mostly move matches between near-equal places of the
        # queries' blurred vote. On the 256x144x15 example and hand_cup at 144p, (2, 1) instead of
        # (8, 4, 2, 1) gave lower coherence and completeness error with 20 % less time per
        # variation on the CPU.
        self.refine_steps = refine_steps
        self.chunk = chunk  # positions handled at once (bounds memory; not scaled by the batch,
        # because chunk boundaries and random draws per chunk must not depend on the batch)
        # 'auto': whole patches where the fused kernel runs, descriptors elsewhere ('patches'
        # without the kernel is the torch oracle: exact but it gathers M patches per position).
        self.distances = distances
        self._prepared = None  # (key video, axes, key descriptors) of the last search

    def _scores(self, request: SearchRequest, valid: torch.Tensor | None):
        kernel = kernels.patchmatch_fused(request.queries, request.keys) == kernels.TRITON
        if self.distances == "patches" or (self.distances == "auto" and kernel):
            return PatchScores(request.queries, request.keys, request.patch_size, valid, use_kernel=kernel)
        # The key descriptors are reused while the same key video comes back (the EM
        # iterations of one level all match against the same values).
        if self._prepared is None or self._prepared[0] is not request.keys:
            described = DescriptorScores.key_descriptors(request.keys, request.patch_size, self.dims,
                                                         key_generator())
            self._prepared = (request.keys, *described)
        return DescriptorScores(request.queries, self._prepared[1], self._prepared[2], valid)

    def search(self, request: SearchRequest) -> torch.Tensor:
        valid = None if request.valid_keys is None else request.valid_keys.reshape(-1)
        on_cpu_kernel = self.distances == "auto" and kernels.patchmatch_fused(request.queries, request.keys) == kernels.NUMBA
        again = (self.rounds_from_previous if self.rounds_from_previous is not None
                 else patchmatch_rounds_from_previous(on_cpu_kernel, request.quick))
        rounds = self.rounds if request.initial_field is None else again
        steps = self.refine_steps if request.refining and request.initial_field is not None else self.steps
        if on_cpu_kernel:
            start = request.initial_field
            if start is not None and tuple(start.shape) != (request.queries.shape[0], *request.query_grid):
                start = None  # a field of another shape cannot be a start: begin at random, as below
                rounds = self.rounds
            field = kernels.patchmatch_search(request.queries, request.keys, request.patch_size,
                                              request.sample_seeds(),
                                              None if start is None else start.reshape(start.shape[0], -1),
                                              valid, rounds, steps)
            return field.reshape(field.shape[0], *request.query_grid)
        device = request.queries.device
        # One generator per query video, on the device that uses the draws (a CPU generator
        # would copy every draw to the GPU), so each video's result depends on its seed only.
        generators = [torch.Generator(device).manual_seed(seed) for seed in request.sample_seeds()]
        valid = None if valid is None else valid.to(device)
        scores = self._scores(request, valid)
        state = _State(scores, valid, request.queries.shape[0], request.query_grid, request.key_grid,
                       generators, self.chunk)
        state.start(request.initial_field)
        if isinstance(scores, PatchScores) and scores.use_kernel:
            field = kernels.patchmatch_propagate(scores.queries, scores.keys, request.patch_size,
                                                 state.field, state.best, valid, rounds, steps, generators)
            return field.reshape(field.shape[0], *request.query_grid)
        for _ in range(rounds):
            for step in steps:
                moves = [(axis, sign * step, jitter) for axis in range(3)
                         if step < state.query_grid[axis] or step == 1
                         for sign in (1, -1) for jitter in (0, step)]
                if moves:
                    state.try_neighbours(moves)
            state.try_random()
        return state.field.reshape(state.field.shape[0], *request.query_grid)


class _State:
    """The field being improved and its distances, with the proposals PatchMatch makes."""

    def __init__(self, scores, valid, batch, query_grid, key_grid, generators, chunk):
        self.scores, self.valid, self.batch = scores, valid, batch
        self.query_grid, self.key_grid = query_grid, key_grid
        self.generators, self.chunk = generators, chunk
        self.device = generators[0].device
        self.count = query_grid[0] * query_grid[1] * query_grid[2]
        self.field = torch.empty(0)
        self.best = torch.empty(0)

    def start(self, initial_field: torch.Tensor | None) -> None:
        batch = self.batch
        if initial_field is not None and tuple(initial_field.shape) == (batch, *self.query_grid):
            self.field = initial_field.reshape(batch, -1).to(self.device).clone()
        elif self.valid is None:
            self.field = self._random_keys(self.count)
        else:
            allowed = self.valid.nonzero()[:, 0]
            self.field = allowed[_randint(0, allowed.numel(), self.count, self.generators, self.device)]
        # Scoring the starting field against infinity gives its distances (inf where forbidden).
        self.best = torch.full(self.field.shape, float("inf"), device=self.device)
        for start, stop in self._chunks():
            self.scores.improve(self.field[None, :, start:stop].clone(), start, self.field, self.best)

    def try_neighbours(self, moves: list[tuple[int, int, int]]) -> None:
        """Score the proposals of every (axis, step, jitter) move at once; keep the best."""
        for start, stop in self._chunks():
            self.scores.improve(self._propagated(start, stop, moves), start, self.field, self.best)

    def try_random(self) -> None:
        for start, stop in self._chunks():
            self.scores.improve(self._random_keys(stop - start)[None], start, self.field, self.best)

    def _chunks(self):
        return [(s, min(self.count, s + self.chunk)) for s in range(0, self.count, self.chunk)]

    def _random_keys(self, count: int) -> torch.Tensor:
        total = self.key_grid[0] * self.key_grid[1] * self.key_grid[2]
        return _randint(0, total, count, self.generators, self.device)

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
