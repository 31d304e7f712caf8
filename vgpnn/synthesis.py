"""The coarse-to-fine Q/K/V patch nearest-neighbour loop that every application runs.

1. Build the source pyramid (finest level first) and the target's level shapes, with the same
   per-level factors.
2. Start at the coarsest level from the source resized to the target's coarsest shape, plus
   seeded Gaussian noise (variations) or none (retargeting).
3. At each level, from coarse to fine:
   queries Q = the previous level's output upscaled to this level's target shape,
   keys K    = the previous source level upscaled to this level's source shape (as blurry as Q),
   values V  = the sharp source at this level.
   Each Q patch takes the V patch at the position of its nearest K patch; overlapping chosen
   patches are folded by a per-voxel median. Further iterations match the output against V.
4. The finest level's output is the result.

With a ``hole`` (inpainting) the target is the source itself: keys touching the hole are never
used, and after every vote the voxels outside the hole are reset to the source (see ``holes.py``).
Only the box of patches touching the hole is searched; the synthesis starts at the coarsest level
that still has most of its keys clean (``holes.start_level``), and each hole voxel takes its value
from the one covering patch closest to the median of them all, not the median itself
(``_fill_hole_once``).

With ``loop=True`` the target is a seamless loop: time wraps around in every search, vote and
resize of the target (see ``loop.py``); the source itself is never treated as a loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .config import SynthesisConfig
from .errors import ConfigError
from .best_vote import best_patch_vote, matched_distances
from .holes import clean_keys, fill_hole, hole_box, level_hole, start_level
from .loop import loop_grid, unroll_for_search, vote_loop
from .nn import SearchRequest, choose_backend, make_backend
from .carve import carve_to
from .patches import PatchSize, carry_field, grid_shape, rescale_field, vote
from .pyramid import Shape3, build_pyramid, pyramid_geometry
from .resize import resize_video
from .timeline import plan_timeline, timeline_candidates

ProgressCallback = Callable[[int, int], None]  # (levels done, levels in all)


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
    videos: torch.Tensor  # (B, C, T, H, W) in [0, 1], on the source's device
    levels: list[LevelRecord]  # coarsest first


def effective_patch_size(patch_size: tuple[int, int, int], shape: Shape3) -> tuple[int, int, int]:
    """The patch shrunk along any axis where the video is shorter than it (e.g. images: 1 frame)."""
    return tuple(min(p, s) for p, s in zip(patch_size, shape))


def draw_noise(shape: tuple[int, ...], seeds: list[int], sigma: float) -> torch.Tensor:
    """Gaussian noise, one CPU generator per sample, so sample i depends only on its own seed
    and a seed gives the same noise on every device and in any batch."""
    noise = [torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for seed in seeds]
    return torch.stack(noise) * sigma


def check_shapes(source_shape: Shape3, target_shape: Shape3, config: SynthesisConfig) -> tuple[int, int, int]:
    """The patch size used for this source, after checking both shapes can hold a patch."""
    pt, ph, pw = config.patch_size
    if ph > source_shape[1] or pw > source_shape[2]:
        raise ConfigError(f"patch {pw}x{ph} pixels is larger than the working frame "
                          f"{source_shape[2]}x{source_shape[1]}; use a smaller patch size or a larger working size")
    patch_size = effective_patch_size(config.patch_size, source_shape)
    frames, height, width = target_shape
    if min(target_shape) < 1 or any(t < p for t, p in zip(target_shape, patch_size)):
        raise ConfigError(f"output {width}x{height} pixels, {frames} frames is smaller than a patch "
                          f"({patch_size[2]}x{patch_size[1]} pixels, {patch_size[0]} frames); ask for a larger output")
    return patch_size


def coarsest_guess(coarsest_source: torch.Tensor, source: torch.Tensor, target_shape: Shape3,
                   patch_size: PatchSize, loop: bool = False, timeline: Sequence[int] | None = None) -> torch.Tensor:
    """The target's starting point at the coarsest level, never squashed nor slowed down.

    Space: an axis that shrinks loses whole rows or columns of the coarsest source level (see
    carve.py), so what stays keeps its proportions; an axis that grows is resized (no content
    to remove). Time: never stretched, which would start, and stay, in slow motion. A target of
    another length, or a loop, plays runs of the source's coarsest frames joined where they look
    most alike (``timeline``, by default planned by timeline.py); a shorter one that does not
    loop takes the first frames."""
    frames, height, width = coarsest_source.shape[1:]
    kept = (min(height, target_shape[1]), min(width, target_shape[2]))
    if kept == (height, width):
        guess = resize_video(source, (frames, *target_shape[1:]))
    else:
        carved = carve_to(coarsest_source, kept, patch_size, source)
        guess = resize_video(carved, (frames, *target_shape[1:]))
    if timeline is None:
        timeline = plan_timeline(coarsest_source, target_shape[0], loop=loop)
    elif len(timeline) != target_shape[0] or not all(0 <= i < frames for i in timeline):
        raise ValueError(f"a timeline for this target has {target_shape[0]} indices below {frames}, got {list(timeline)}")
    return guess.index_select(1, torch.tensor(list(timeline), device=guess.device))


def coarsest_timelines(source: torch.Tensor, target_shape: Shape3, config: SynthesisConfig,
                       loop: bool = False) -> list[list[int]]:
    """The candidate timelines (timeline.py) of :func:`synthesize`'s coarsest level for this
    source (C, T, H, W) and target; any of them can be passed to it as ``timeline``."""
    source_shape: Shape3 = tuple(source.shape[1:])
    patch_size = check_shapes(source_shape, target_shape, config)
    geometry = pyramid_geometry(source_shape, config.pyramid_factor, config.coarsest_frames,
                                config.coarsest_short_side)
    coarsest = geometry.levels - 1
    coarsest_source = resize_video(source, geometry.level_shape(source_shape, coarsest, patch_size))
    length = geometry.level_shape(target_shape, coarsest, patch_size)[0]
    return timeline_candidates(coarsest_source, length, loop=loop)


def synthesize(source: torch.Tensor, target_shape: Shape3, config: SynthesisConfig,
               seeds: list[int], progress: ProgressCallback | None = None,
               loop: bool = False, hole: torch.Tensor | None = None, carry: bool = False,
               timeline: Sequence[int] | None = None) -> SynthesisResult:
    """Generate ``len(seeds)`` videos of ``target_shape`` from ``source`` (C, T, H, W) in [0, 1].

    Noise of strength ``config.noise_sigma`` (0 for none) is drawn from each seed. ``loop``:
    the videos loop seamlessly (their last frame leads into the first). ``hole``: (T, H, W) bool
    of the source's shape; the videos are the source with the hole filled from the rest.
    ``carry``: each finer level starts from the coarser level's arrangement of source patches
    carried up piece by piece (``carry_field``) rather than from its output resized and matched
    blurry against blurry; retargets use it so a layout, once decided, is not re-rounded level by level.
    ``timeline``: which coarsest source frame each coarsest target frame starts from (one of
    :func:`coarsest_timelines`); by default the first of them.
    """
    if source.dim() != 4:
        raise ValueError(f"source must be (C, T, H, W), got {tuple(source.shape)}")
    if not seeds:
        raise ValueError("at least one seed is needed")
    source_shape: Shape3 = tuple(source.shape[1:])
    patch_size = check_shapes(source_shape, target_shape, config)
    geometry = pyramid_geometry(source_shape, config.pyramid_factor, config.coarsest_frames,
                                config.coarsest_short_side)
    sources = build_pyramid(source, geometry, minimum=patch_size)
    holes = None
    if hole is not None:
        if tuple(hole.shape) != source_shape or tuple(target_shape) != source_shape:
            raise ValueError(f"hole {tuple(hole.shape)} and target {tuple(target_shape)} must have the "
                             f"source's shape {source_shape}")
        if loop or carry:
            raise ValueError("a hole cannot be asked for together with a loop or a carried layout")
        holes = [level_hole(hole.to(source.device), tuple(level.shape[1:])) for level in sources]
    target_shapes = [geometry.level_shape(target_shape, k, patch_size) for k in range(geometry.levels)]

    coarsest = geometry.levels - 1 if holes is None else _inpaint_start(holes, patch_size)
    output = coarsest_guess(sources[coarsest], source, target_shapes[coarsest], patch_size, loop, timeline)
    output = output[None].repeat(len(seeds), 1, 1, 1, 1)
    if holes is not None:
        output = fill_hole(output, holes[coarsest])
    if config.noise_sigma > 0:
        noise = draw_noise(tuple(output.shape[1:]), seeds, config.noise_sigma).to(output)
        output = output + (noise if holes is None else noise * holes[coarsest])

    records = []
    previous = None  # (field, level, patch) of the coarser level, to start this level's search from
    for level in range(coarsest, -1, -1):
        started = time.perf_counter()
        values = sources[level]
        # A loop's coarsest guess is not yet a loop; full iterations there close the seam early.
        level_patch, iterations = _level_settings(config, values, patch_size, level == coarsest and not loop)
        if level == coarsest:
            queries, keys = output, values
        elif not carry:
            queries = resize_video(output, target_shapes[level], loop=loop)
            keys = resize_video(sources[level + 1], tuple(values.shape[1:]))
        # Inpainting searches and votes only the box of patches that touch the hole: no other
        # patch can change a hole voxel, and outside the hole every voxel is the source's anyway.
        box = None if holes is None else hole_box(holes[level], level_patch)
        if holes is not None and box is None:  # the hole is too thin to show at this size
            iterations = 0
            queries = values[None].repeat(len(seeds), 1, 1, 1, 1)
        record = LevelRecord(tuple(values.shape[1:]), target_shapes[level], level_patch, iterations)
        searched_shape = target_shapes[level] if box is None else tuple(side.stop - side.start for side in box)
        query_grid = (loop_grid if loop else grid_shape)(searched_shape, level_patch)
        valid_keys = None if box is None else _clean_keys_at(holes[level], level_patch, level)
        vote_level = vote_loop if loop else vote
        field_ = None  # the search's starting field, when there is one
        if previous is not None and carry:
            coarser_field, coarser, coarser_patch = previous
            field_ = carry_field(coarser_field, (target_shapes[coarser], target_shapes[level]),
                                 (tuple(sources[coarser].shape[1:]), tuple(values.shape[1:])),
                                 (coarser_patch, level_patch), query_grid)
            queries, keys = vote_level(values, field_, target_shapes[level], level_patch, config.vote), values
        elif previous is not None:
            coarser_field, coarser, coarser_patch = previous
            field_ = rescale_field(coarser_field, grid_shape(sources[coarser].shape, coarser_patch), query_grid,
                                   grid_shape(keys.shape, level_patch))
        backends = {}  # one per name and level, so a backend can reuse its index across iterations
        for iteration in range(iterations):
            search_seeds = tuple(_search_seed(seed, level, iteration) for seed in seeds)
            if loop:
                searched = unroll_for_search(queries, level_patch)
            else:
                searched = queries if box is None else queries[(slice(None), slice(None), *box)]
            request = SearchRequest(searched, keys, level_patch, valid_keys=valid_keys, initial_field=field_,
                                    seeds=search_seeds)
            backend = choose_backend(config.backend, request)
            if backend not in backends:
                backends[backend] = make_backend(backend)
            field_ = backends[backend].search(request)
            record.backends.append(backend)
            if holes is None:
                queries = vote_level(values, field_, target_shapes[level], level_patch, config.vote)
            else:
                queries = _fill_hole_once(values, field_, holes[level], box, level_patch, config.vote)
            keys = values
        output = queries
        previous = None if field_ is None else (field_, level, level_patch)
        record.seconds = time.perf_counter() - started
        records.append(record)
        if progress is not None:
            progress(coarsest - level + 1, geometry.levels)
    return SynthesisResult(output.clamp(0, 1), records)


def _inpaint_start(holes: list[torch.Tensor], patch_size) -> int:
    """The level inpainting starts at (see ``holes.start_level``); raises the user-facing error
    when even the finest level has no patch that misses the hole."""
    level = start_level(holes, patch_size)
    if level < 0:
        _clean_keys_at(holes[0], patch_size, 0)
    return level


def _fill_hole_once(values: torch.Tensor, field: torch.Tensor, hole: torch.Tensor, box: tuple[slice, slice, slice],
                    patch_size, consensus_vote: str) -> torch.Tensor:
    """One vote of an inpainting iteration: (B, C, T, H, W), the source with the voxels of ``hole``
    in ``box`` voted from ``values`` by ``field``, a search result for that box.

    1. The consensus: the usual fold (``consensus_vote``, median or mean) of the chosen patches,
       with the voxels outside the hole the source's own.
    2. Each hole voxel takes its value from whichever covering patch is closest to the consensus
       (best_vote.py): a real source patch, so the fill keeps the source's texture and motion.
    The consensus alone is a blur wherever the chosen patches disagree, as they do in texture
    that never repeats exactly (moving leaves), and the blur then matches only the smoothest,
    stillest parts of the source: on tree_foliage.mp4 it kept half the surrounding leaves' detail
    and a fifth of their motion. Taking the patch closest to the current estimate instead keeps
    both, but pieces of the fill then match themselves and never yield to their border (visible
    blocks in a smooth sky); measured against the consensus, which the border pulls on, they do.
    """
    box_shape = tuple(side.stop - side.start for side in box)
    region = (slice(None), slice(None), *box)
    filled = values[None].repeat(field.shape[0], 1, 1, 1, 1)
    consensus = torch.where(hole[box], vote(values, field, box_shape, patch_size, consensus_vote), filled[region])
    distances = matched_distances(consensus, values, field, patch_size)
    voted = best_patch_vote(values, field, distances, box_shape, patch_size)
    filled[region] = torch.where(hole[box], voted, filled[region])
    return filled


def _clean_keys_at(hole: torch.Tensor, patch_size, level: int) -> torch.Tensor:
    valid = clean_keys(hole, patch_size)
    if not bool(valid.any()):
        raise ConfigError(f"the mask leaves no patch untouched at pyramid level {level} "
                          f"({hole.shape[2]}x{hole.shape[1]} pixels, {hole.shape[0]} frames); use a smaller mask, "
                          "a smaller patch size or a larger --coarsest-size")
    return valid


def _search_seed(seed: int, level: int, iteration: int) -> int:
    """A distinct, reproducible seed for each sample's search at each level and iteration."""
    return (seed * 1_000_003 + level * 1_009 + iteration) % 2**63


def _level_settings(config: SynthesisConfig, values: torch.Tensor, patch_size, is_coarsest: bool):
    voxels = values.shape[1] * values.shape[2] * values.shape[3]
    if voxels > config.large_level_voxels:
        return effective_patch_size(config.large_level_patch_size, tuple(values.shape[1:])), 1
    return patch_size, 1 if is_coarsest else config.iterations
