"""The level schedule: for each pyramid level, its shapes, patch size, iterations and search backend.

One rule, used by the synthesis loop, by ``vgpnn info``'s time estimates and by the memory check:

1. The patch shrinks along any axis where the source is shorter than it (an image: 1 frame).
2. The coarsest level the loop runs gets 1 EM iteration: its start is a rough guess that
   one vote already replaces, unless the target wraps in time (a loop's coarsest guess is not
   yet a loop; full iterations there close the seam early). Other levels get
   ``config.iterations``.
3. A level whose source has more than ``config.large_level_voxels`` voxels gets 1 iteration
   and ``config.large_level_patch_size`` patches (shrunk to fit the level, rule 1), and its
   PatchMatch makes one round from the coarser level's field (``LevelSchedule.large``): these
   levels are most of a large job's time, and their start is already a converged field.
4. The backend: the one asked for, or with 'auto' exhaustive search while a search costs at
   most ``exact_work_limit`` multiply-adds per output, then PatchMatch (whole patches in the
   numba kernel on a CPU, the Triton kernel on a GPU; faiss on a CPU without numba)
   (``vgpnn.nn.backend_for``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import SynthesisConfig
from .errors import ConfigError
from .nn import backend_for
from .pyramid import PyramidGeometry, Shape3, pyramid_geometry

PatchSize = tuple[int, int, int]


@dataclass(frozen=True)
class LevelSchedule:
    """What the loop does at one pyramid level."""

    level: int  # 0 is the finest
    source_shape: Shape3  # (frames, height, width) of the source at this level
    target_shape: Shape3  # ... and of the target
    patch_size: PatchSize  # (frames, rows, columns)
    iterations: int  # EM iterations
    backend: str  # nearest-neighbour backend the searches of this level use (before completeness weighting)
    large: bool = False  # rule 3: small patches, 1 iteration, one PatchMatch round


def effective_patch_size(patch_size: PatchSize, shape: Shape3) -> PatchSize:
    """The patch shrunk along any axis where the video is shorter than it (e.g. images: 1 frame)."""
    return tuple(min(p, s) for p, s in zip(patch_size, shape))


def check_shapes(source_shape: Shape3, target_shape: Shape3, config: SynthesisConfig) -> PatchSize:
    """The patch size for this source and target, after checking both frames can hold a patch.
    In time the patch shrinks to the shorter clip (an image, or a still target from a video)."""
    pt, ph, pw = config.patch_size
    if ph > source_shape[1] or pw > source_shape[2]:
        raise ConfigError(f"patch {pw}x{ph} pixels is larger than the working frame "
                          f"{source_shape[2]}x{source_shape[1]}; use a smaller patch size or a larger working size")
    frames, height, width = target_shape
    if frames < 1 or height < ph or width < pw:
        raise ConfigError(f"output {width}x{height} pixels, {frames} frames is smaller than a patch "
                          f"({pw}x{ph} pixels); ask for a larger output")
    return (min(pt, source_shape[0], frames), ph, pw)


def geometry_for(source_shape: Shape3, config: SynthesisConfig) -> PyramidGeometry:
    return pyramid_geometry(source_shape, config.pyramid_factor, config.coarsest_frames, config.coarsest_short_side)


def search_work(query_shape: Shape3, key_shape: Shape3, patch_size: PatchSize, channels: int) -> float:
    """Multiply-adds of an exhaustive search for one output: query patches x key patches x patch dims."""
    queries = math.prod(max(1, t - p + 1) for t, p in zip(query_shape, patch_size))
    keys = math.prod(max(1, s - p + 1) for s, p in zip(key_shape, patch_size))
    return float(queries) * keys * channels * math.prod(patch_size)


def level_schedule(source_shape: Shape3, target_shape: Shape3, config: SynthesisConfig, device_type: str,
                   *, start_level: int | None = None, wraps_time: bool = False,
                   channels: int = 3) -> list[LevelSchedule]:
    """The levels the loop runs, coarsest first, from ``start_level`` (default: the coarsest)
    down to 0. ``channels``: per voxel in a search (colour plus guides)."""
    patch_size = check_shapes(source_shape, target_shape, config)
    geometry = geometry_for(source_shape, config)
    first = geometry.levels - 1 if start_level is None else start_level
    levels = []
    for level in range(first, -1, -1):
        source = geometry.level_shape(source_shape, level, patch_size)
        target = geometry.level_shape(target_shape, level, patch_size)
        large = math.prod(source) > config.large_level_voxels
        if large:
            small = effective_patch_size(config.large_level_patch_size, source)
            level_patch, iterations = effective_patch_size(small, target), 1
        else:
            level_patch = patch_size
            iterations = 1 if level == first and not wraps_time else config.iterations
        work = search_work(target, source, level_patch, channels)
        levels.append(LevelSchedule(level, source, target, level_patch, iterations,
                                    backend_for(config.backend, work, device_type, wraps_time), large))
    return levels
