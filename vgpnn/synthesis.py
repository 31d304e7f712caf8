"""The coarse-to-fine Q/K/V patch nearest-neighbour loop that every application runs.

It runs a :class:`vgpnn.plan.SynthesisPlan` (sources, target, guides, fixed voxels, seeds) and
knows no application. Step by step:

1. Pyramids: each source is resized to every level's shape (finest first, each level straight
   from the full-size video); the target's level shapes shrink by the same factors. The level
   schedule (schedule.py) gives each level's patch size, iterations and backend.
2. Start level: the coarsest, unless sources have unusable voxels (an inpainting hole): then
   the coarsest level that keeps most of the finest level's clean keys (masks.start_level),
   since coarser levels leave little but the frame's edges to copy from.
3. Start: the plan's coarsest guess (by default the first source resized to the target's
   coarsest shape); free voxels, where some are fixed, start from a smooth fill grown from the
   fixed ones around them, or from the guess itself when the target asks for it
   (``Target.free_start``); plus seeded Gaussian noise (only on free voxels).
4. At each level, from coarse to fine:
   queries Q = the previous level's output upscaled to this level's target shape,
   keys K    = the previous source level upscaled to this level's source shape (as blurry as Q),
   values V  = the sharp source at this level.
   Guide channels, times their level's weights, are appended to Q (the target's guides) and K
   (the sources' guides). Each Q patch takes the V patch at the position of its nearest K patch
   (GPNN's completeness weighting, when the plan asks for it, where exhaustive search runs);
   overlapping chosen patches are folded by a per-voxel median. Further iterations match the
   output against V. With several sources, their levels are laid end to end in time and key
   patches that would straddle two sources are never chosen.
   After the first few levels of a variation (noise, nothing fixed, no guides), a sample whose
   field has settled on one offset (a shifted copy of the source) starts again from fresh noise
   (recompose.py).
5. Fixed voxels keep their values at every level; only the box of patches that touch free
   voxels is searched, and each free voxel takes its value from the one covering patch closest
   to the median of them all, not the median itself (see ``_fill_free_once``).
6. Time that wraps (a seamless loop): every search, vote and resize of the target treats the
   last frame as followed by the first (wrap.py); sources never wrap.
7. A carried layout: each finer level starts from the coarser level's arrangement of source
   patches carried up piece by piece (``carry_field``) rather than from its output resized and
   matched blurry against blurry, so a layout, once decided, is not re-rounded level by level.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from .best_vote import best_patch_vote, matched_distances
from .completeness import completeness_search
from .errors import COARSEST_SIZE, ConfigError
from .masks import clean_keys, clean_share, fill_free, free_box, level_mask, start_level
from .nn import SearchRequest, choose_backend, make_backend
from .patches import carry_field, grid_shape, rescale_field, vote
from .plan import SynthesisPlan
from .pyramid import Shape3, build_pyramid
from .recompose import CHECK_AFTER, copy_share, retry_seed, retry_sigma, start_error
from .resize import resize_video
from .schedule import LevelSchedule, check_shapes, geometry_for, level_schedule
from .wrap import unroll_for_search, vote_wrapped, wrapped_grid

ProgressCallback = Callable[[int, int], None]  # (levels done, levels in all)
COMPLETENESS_BACKEND = "exact+completeness"  # the name level records give completeness-weighted searches


@dataclass
class LevelRecord:
    """What happened at one pyramid level, for reports and benchmarks."""

    source_shape: Shape3
    target_shape: Shape3
    patch_size: tuple[int, int, int]
    iterations: int
    backends: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class SynthesisResult:
    videos: torch.Tensor  # (B, C, T, H, W) in [0, 1], on the sources' device
    levels: list[LevelRecord]  # coarsest first


def draw_noise(shape: tuple[int, ...], seeds: list[int], sigma: float) -> torch.Tensor:
    """Gaussian noise, one CPU generator per sample, so sample i depends only on its own seed
    and a seed gives the same noise on every device and in any batch."""
    noise = [torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for seed in seeds]
    return torch.stack(noise) * sigma


def synthesize(plan: SynthesisPlan, progress: ProgressCallback | None = None) -> SynthesisResult:
    """Run ``plan``: ``len(plan.seeds)`` videos (B, C, T, H, W) of the target's shape."""
    config, target = plan.config, plan.target
    device = plan.sources[0].video.device
    patch_size = check_shapes(plan.source_shape, target.shape, config)
    geometry = geometry_for(plan.source_shape, config)
    levels = _Levels(plan, geometry, patch_size)
    schedule = level_schedule(plan.source_shape, target.shape, config, device.type,
                              start_level=levels.start, wraps_time=target.wraps_time,
                              channels=plan.sources[0].video.shape[0] + levels.guide_channels)

    first = schedule[0]
    output = _start(plan, levels, first)
    # Levels run before each sample's layout is checked (recompose.py); None: never checked.
    check = CHECK_AFTER - 1 if _recomposes(plan) and len(schedule) > CHECK_AFTER else None
    records = []
    previous = None  # (field, schedule) of the coarser level, to start this level's search from
    for index, step in enumerate(schedule):
        started = time.perf_counter()
        output, previous, record = _run_level(plan, levels, step, output, previous, step is first)
        if index == check and previous is not None:
            output, previous = _recompose(plan, levels, schedule[:index + 1], output, previous)
        record.seconds = time.perf_counter() - started
        records.append(record)
        if progress is not None:
            progress(levels.start - step.level + 1, geometry.levels)
    return SynthesisResult(output.clamp(0, 1), records)


def _start(plan: SynthesisPlan, levels: "_Levels", first: LevelSchedule) -> torch.Tensor:
    """(B, C, T, H, W): the coarsest level's starting guess for each of ``plan.seeds``."""
    target, config = plan.target, plan.config
    output = levels.start_guess(first)[None].repeat(len(plan.seeds), 1, 1, 1, 1)
    free = levels.free(first.level)
    if free is not None:
        output = torch.where(free, output, levels.fixed(first.level))
        if target.free_start == "fill":
            output = fill_free(output, free)
    if config.noise_sigma > 0:
        noise = draw_noise(tuple(output.shape[1:]), list(plan.seeds), config.noise_sigma).to(output)
        output = output + (noise if free is None else noise * free)
    return output


def _recomposes(plan: SynthesisPlan) -> bool:
    """Whether samples that settle on a shifted copy start again (recompose.py): only where noise
    is meant to re-arrange the whole target, with nothing fixed and nothing guiding it."""
    config, target = plan.config, plan.target
    return (config.noise_sigma > 0 and config.max_copy_share < 1 and config.recompose_tries > 1
            and target.fixed_mask is None and target.guides is None)


def _recompose(plan: SynthesisPlan, levels: "_Levels", steps: list[LevelSchedule], output: torch.Tensor, previous):
    """``output`` and ``previous`` after ``steps``, with each sample whose field is mostly one
    offset replaced by the best of fresh starts (recompose.py)."""
    field, last = previous
    keys = levels.values(last.level)
    key_grid = grid_shape(keys.shape, last.patch_size)
    shares = copy_share(field, key_grid)
    redo = [index for index, share in enumerate(shares.tolist()) if share > plan.config.max_copy_share]
    if not redo:
        return output, previous
    output, field = output.clone(), field.clone()
    errors = start_error(output, keys, field, last.patch_size)
    for attempt in range(1, plan.config.recompose_tries):
        retry = replace(plan, seeds=tuple(retry_seed(plan.seeds[index], attempt) for index in redo),
                        config=replace(plan.config, noise_sigma=retry_sigma(plan.config.noise_sigma, attempt)))
        trial, trial_previous = _start(retry, levels, steps[0]), None
        for step in steps:
            trial, trial_previous, _ = _run_level(retry, levels, step, trial, trial_previous, step is steps[0])
        trial_shares = copy_share(trial_previous[0], key_grid)
        trial_errors = start_error(trial, keys, trial_previous[0], last.patch_size)
        for position, index in enumerate(redo):
            if _better_start(plan.config.max_copy_share, (trial_shares[position], trial_errors[position]),
                             (shares[index], errors[index])):
                output[index], field[index] = trial[position], trial_previous[0][position]
                shares[index], errors[index] = trial_shares[position], trial_errors[position]
    return output, (field, last)


def _better_start(limit: float, trial, kept) -> bool:
    """Whether a start of (share, error) ``trial`` beats ``kept``: under ``limit``, the smaller
    error; against one over it, being under it or the smaller share."""
    (trial_share, trial_error), (kept_share, kept_error) = trial, kept
    if trial_share <= limit and kept_share <= limit:
        return bool(trial_error < kept_error)
    return bool(trial_share <= limit or (kept_share > limit and trial_share < kept_share))


class _Levels:
    """The plan's inputs at each pyramid level, made once and looked up by level."""

    def __init__(self, plan: SynthesisPlan, geometry, patch_size):
        self.plan, self.geometry, self.patch_size = plan, geometry, patch_size
        self.sources = [build_pyramid(source.video, geometry, minimum=patch_size) for source in plan.sources]
        self.guide_channels = 0 if plan.target.guides is None else plan.target.guides.shape[0]
        self.target_shapes = [geometry.level_shape(plan.target.shape, k, patch_size) for k in range(geometry.levels)]
        # Unusable source voxels per source and level; None when every voxel of every source is usable.
        self.unusable = None
        if any(source.usable is not None for source in plan.sources):
            self.unusable = [[level_mask(~source.usable, tuple(level.shape[1:])) if source.usable is not None
                              else torch.zeros(tuple(level.shape[1:]), dtype=torch.bool, device=level.device)
                              for level in pyramid]
                             for source, pyramid in zip(plan.sources, self.sources)]
        self.start = geometry.levels - 1
        if self.unusable is not None:
            shares = [clean_share([masks[level] for masks in self.unusable], patch_size)
                      for level in range(geometry.levels)]
            self.start = start_level(shares)
            if self.start < 0:
                self.valid_keys(0, patch_size)  # raises the user-facing error
        self._free = None if plan.target.fixed_mask is None else {}

    def values(self, level: int) -> torch.Tensor:
        """(C, T, H, W): the sources at ``level``, end to end in time."""
        return _end_to_end([pyramid[level] for pyramid in self.sources])

    def blurry_keys(self, level: int) -> torch.Tensor:
        """The coarser level of each source upscaled to this level's shape, end to end."""
        return _end_to_end([resize_video(pyramid[level + 1], tuple(pyramid[level].shape[1:]))
                            for pyramid in self.sources])

    def source_guides(self, level: int, channels: list[int], weights: torch.Tensor) -> torch.Tensor:
        return _end_to_end([resize_video(source.guides[channels], tuple(pyramid[level].shape[1:])) * weights
                            for source, pyramid in zip(self.plan.sources, self.sources)])

    def target_guides(self, level: int, channels: list[int], weights: torch.Tensor) -> torch.Tensor:
        return resize_video(self.plan.target.guides[channels], self.target_shapes[level]) * weights

    def valid_keys(self, level: int, patch_size) -> torch.Tensor | None:
        """(T', H', W') bool key positions that copy only usable voxels of one source; None: all."""
        if len(self.sources) == 1 and self.unusable is None:
            return None
        parts = []
        for index, pyramid in enumerate(self.sources):
            shape = tuple(pyramid[level].shape[1:])
            valid = (clean_keys(self.unusable[index][level], patch_size) if self.unusable is not None
                     else torch.ones(grid_shape(shape, patch_size), dtype=torch.bool, device=pyramid[level].device))
            parts.append(valid)
            if index + 1 < len(self.sources):
                # Positions whose patch starts in this source and ends in the next: never chosen.
                parts.append(torch.zeros((patch_size[0] - 1, *valid.shape[1:]), dtype=torch.bool, device=valid.device))
        valid = torch.cat(parts)
        if not bool(valid.any()):
            mask = self.unusable[0][level]
            raise ConfigError(f"the mask leaves no patch untouched at pyramid level {level} ({mask.shape[2]}x"
                              f"{mask.shape[1]} pixels, {mask.shape[0]} frames); use a smaller mask, a smaller "
                              f"patch size or {COARSEST_SIZE}")
        return valid

    def free(self, level: int) -> torch.Tensor | None:
        """(T, H, W) bool target voxels to synthesise at ``level``; None when none are fixed."""
        if self._free is None:
            return None
        if level not in self._free:
            self._free[level] = level_mask(~self.plan.target.fixed_mask, self.target_shapes[level])
        return self._free[level]

    def fixed(self, level: int) -> torch.Tensor:
        """(C, T, H, W) the fixed values at ``level``."""
        return resize_video(self.plan.target.fixed, self.target_shapes[level])

    def start_guess(self, step: LevelSchedule) -> torch.Tensor:
        source = self.plan.sources[0].video
        if self.plan.target.start is None:
            return resize_video(source, step.target_shape)
        guess = self.plan.target.start(self.sources[0][step.level], source, step.target_shape, step.patch_size)
        if tuple(guess.shape) != (source.shape[0], *step.target_shape):
            raise ValueError(f"the start guess must be {(source.shape[0], *step.target_shape)}, got {tuple(guess.shape)}")
        return guess


def _end_to_end(videos: list[torch.Tensor]) -> torch.Tensor:
    return videos[0] if len(videos) == 1 else torch.cat(videos, dim=-3)


def _run_level(plan: SynthesisPlan, levels: _Levels, step: LevelSchedule, output: torch.Tensor, previous,
               is_first: bool):
    """One pyramid level: its EM iterations. Returns (output, (field, step), record)."""
    config, target = plan.config, plan.target
    batch = output.shape[0]
    level, level_patch, iterations, target_shape = step.level, step.patch_size, step.iterations, step.target_shape
    values = levels.values(level)
    wraps = target.wraps_time
    if is_first:
        queries, keys = output, values
    elif not target.carry_layout:
        queries = resize_video(output, target_shape, loop=wraps)
        keys = levels.blurry_keys(level)
    free = levels.free(level)
    fixed = None if free is None else levels.fixed(level)
    # With fixed voxels only the box of patches that touch a free voxel is searched and voted:
    # no other patch can change a free voxel.
    box = None if free is None else free_box(free, level_patch)
    if free is not None and box is None:  # the free region is too thin to show at this size
        iterations = 0
        queries = fixed[None].repeat(batch, 1, 1, 1, 1)
    record = LevelRecord(tuple(values.shape[1:]), target_shape, level_patch, iterations)
    searched_shape = target_shape if box is None else tuple(side.stop - side.start for side in box)
    query_grid = (wrapped_grid if wraps else grid_shape)(searched_shape, level_patch)
    valid_keys = levels.valid_keys(level, level_patch) if iterations else None
    vote_level = vote_wrapped if wraps else vote

    weights = plan.weights(level, levels.geometry.levels)
    channels = [index for index, weight in enumerate(weights) if weight > 0]
    query_guides = key_guides = None
    if channels:
        scale = torch.tensor([weights[i] for i in channels], dtype=values.dtype, device=values.device)[:, None, None, None]
        query_guides = levels.target_guides(level, channels, scale)
        key_guides = levels.source_guides(level, channels, scale)

    field_ = None  # the search's starting field, when there is one
    if previous is not None and target.carry_layout:
        coarser_field, coarser = previous
        field_ = carry_field(coarser_field, (coarser.target_shape, target_shape),
                             (tuple(levels.values(coarser.level).shape[1:]), tuple(values.shape[1:])),
                             (coarser.patch_size, level_patch), query_grid)
        queries, keys = vote_level(values, field_, target_shape, level_patch, config.vote), values
    elif previous is not None:
        coarser_field, coarser = previous
        field_ = rescale_field(coarser_field, grid_shape(levels.values(coarser.level).shape, coarser.patch_size),
                               query_grid, grid_shape(keys.shape, level_patch))
    backends = {}  # one per name and level, so a backend can reuse its index across iterations
    for iteration in range(iterations):
        searched, searched_keys = queries, keys
        if query_guides is not None:
            searched = torch.cat([queries, query_guides[None].expand(batch, -1, -1, -1, -1)], 1)
            searched_keys = torch.cat([keys, key_guides])
        if wraps:
            searched = unroll_for_search(searched, level_patch)
        elif box is not None:
            searched = searched[(slice(None), slice(None), *box)]
        request = SearchRequest(searched, searched_keys, level_patch, valid_keys=valid_keys, initial_field=field_,
                                refining=iteration > 0, quick=step.large,
                                seeds=tuple(_search_seed(seed, level, iteration) for seed in plan.seeds))
        backend = choose_backend(config.backend, request, wraps)
        if backend == "exact" and plan.completeness_alpha is not None and valid_keys is None:
            backend = COMPLETENESS_BACKEND
            field_ = completeness_search(searched, searched_keys, level_patch, plan.completeness_alpha)
        else:
            if backend not in backends:
                options = dict(config.backend_options) if backend == config.backend else {}
                backends[backend] = make_backend(backend, **options)
            field_ = backends[backend].search(request)
        record.backends.append(backend)
        if free is None and config.vote == "best":
            consensus = vote(values, field_, target_shape, level_patch, "median")
            queries = _best_vote(values, field_, consensus, target_shape, level_patch)
        elif free is None:
            queries = vote_level(values, field_, target_shape, level_patch, config.vote)
        else:
            queries = _fill_free_once(values, field_, free, fixed, box, level_patch, config.vote,
                                      target.fill_vote == "best")
        keys = values
    return queries, (None if field_ is None else (field_, step)), record


def _best_vote(values: torch.Tensor, field: torch.Tensor, consensus: torch.Tensor, shape: Shape3,
               patch_size) -> torch.Tensor:
    """Each voxel from the covering patch chosen by ``field`` that is closest to ``consensus``:
    the consensus's agreement without its blur where the chosen patches disagree (see
    ``_fill_free_once``)."""
    distances = matched_distances(consensus, values, field, patch_size)
    return best_patch_vote(values, field, distances, shape, patch_size)


def _fill_free_once(values: torch.Tensor, field: torch.Tensor, free: torch.Tensor, fixed: torch.Tensor,
                    box: tuple[slice, slice, slice], patch_size, consensus_vote: str,
                    best: bool = True) -> torch.Tensor:
    """One vote where some voxels are fixed: (B, C, T, H, W), ``fixed`` with the voxels of ``free``
    in ``box`` voted from ``values`` by ``field``, a search result for that box.

    1. The consensus: the usual fold (``consensus_vote``, median or mean) of the chosen patches,
       with the fixed voxels' own values.
    2. Each free voxel takes its value from whichever covering patch is closest to the consensus
       (best_vote.py): a real source patch, so the fill keeps the source's texture and motion.
    The consensus alone is a blur wherever the chosen patches disagree, as they do in texture
    that never repeats exactly (moving leaves), and the blur then matches only the smoothest,
    stillest parts of the source: on tree_foliage.mp4 it kept half the surrounding leaves' detail
    and a fifth of their motion. Taking the patch closest to the current estimate instead keeps
    both, but pieces of the fill then match themselves and never yield to their border (visible
    blocks in a smooth sky); measured against the consensus, which the border pulls on, they do.
    With ``best`` False (``Target.fill_vote`` "consensus") step 2 is skipped.
    """
    box_shape = tuple(side.stop - side.start for side in box)
    region = (slice(None), slice(None), *box)
    filled = fixed[None].repeat(field.shape[0], 1, 1, 1, 1)
    consensus_vote = "median" if consensus_vote == "best" else consensus_vote
    consensus = torch.where(free[box], vote(values, field, box_shape, patch_size, consensus_vote), filled[region])
    if not best:
        filled[region] = consensus
        return filled
    voted = _best_vote(values, field, consensus, box_shape, patch_size)
    filled[region] = torch.where(free[box], voted, filled[region])
    return filled


def _search_seed(seed: int, level: int, iteration: int) -> int:
    """A distinct, reproducible seed for each sample's search at each level and iteration."""
    return (seed * 1_000_003 + level * 1_009 + iteration) % 2**63
