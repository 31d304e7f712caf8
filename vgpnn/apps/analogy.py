"""Video analogies: the space-time layout and motion of STRUCTURE in the look of APPEARANCE.

The same coarse-to-fine Q/K/V loop as synthesis.py, with the target's layout taken from
another video. Why a loop of its own: the queries carry extra channels that the values do not,
and the small levels use a search (completeness weighting) that the shared loop has no place for.

1. Guide channels (guides.py) for each video on its own: quantised optical-flow speed (videos
   only) and quantised tone, each a ranked bin in [0, 1].
2. Pyramid: APPEARANCE's levels are the keys and values; the output has STRUCTURE's working
   shape, shrunk level by level with the same factors.
3. Start at the coarsest level from STRUCTURE itself, its colours moved to APPEARANCE's mean and
   spread per channel, so the first match already sees the layout in the right palette.
4. In the coarse half of the pyramid, queries are [output, guide weight x STRUCTURE's guides] and
   keys [APPEARANCE, guide weight x APPEARANCE's guides]: where the layout is decided, patches
   pair by motion and tone. The finer half keeps the motion guide alone (tone for images).
   Why not plain VGPNN there, as DESIGN.md has it: the finer levels then re-imposed APPEARANCE's
   own motion (a disk moving in STRUCTURE came out frozen or moving APPEARANCE's way); with the
   tone guide kept too, texture flattened into its bins' average on real clips.
5. Wherever exhaustive search is cheap, the search uses GPNN's completeness weighting
   (completeness.py), so the output draws on all of APPEARANCE, not its single best-fitting patch.
6. Every voxel of the output is voted from APPEARANCE's values only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..clip_tensor import frames_to_tensor, tensor_to_frames
from ..completeness import DEFAULT_ALPHA, completeness_search
from ..config import SynthesisConfig
from ..device import resolve_device
from ..errors import ConfigError
from ..guides import guide_channels
from ..nn import EXACT_WORK_LIMIT, SearchRequest, choose_backend, make_backend
from ..patches import grid_shape, rescale_field, vote
from ..pyramid import Shape3, build_pyramid, pyramid_geometry
from ..resize import resize_video
from ..synthesis import LevelRecord, ProgressCallback, SynthesisResult, draw_noise, effective_patch_size
from .variations import VariationCallback

COMPLETENESS_BACKEND = "exact+completeness"  # the name levels report for the weighted search


@dataclass(frozen=True)
class AnalogyOptions:
    structure_bins: int = 3  # k-means bins of STRUCTURE's motion and tone
    appearance_bins: int = 3  # k-means bins of APPEARANCE's motion and tone
    guide_weight: float = 3.0  # guide channels' weight against colour in coarse-level patch distances
    guided_share: float = 0.5  # share of the pyramid's levels, coarsest first, matched with the full guide weight
    fine_guide_weight: float = 3.0  # the first guide's weight at the finer levels (0: plain VGPNN there)
    alpha: float = DEFAULT_ALPHA  # completeness weighting's alpha (per-element squared distance)
    variations: int = 1  # how many outputs (they differ only when config.noise_sigma > 0)
    seed: int = 0  # output i uses seed + i (noise); k-means is seeded by 0 so the guides never vary
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.structure_bins < 1 or self.appearance_bins < 1:
            raise ConfigError(f"bins must be at least 1, got {self.structure_bins} (structure) and "
                              f"{self.appearance_bins} (appearance)")
        if min(self.guide_weight, self.fine_guide_weight) < 0 or not 0 <= self.guided_share <= 1 or self.alpha <= 0:
            raise ConfigError(f"guide weight must be 0 or more, guided share in [0, 1] and alpha positive; got "
                              f"{self.guide_weight}, {self.guided_share}, {self.alpha}")
        if self.variations < 1 or self.seed < 0:
            raise ConfigError(f"variations must be at least 1 and the seed 0 or more, got "
                              f"{self.variations} and {self.seed}")


def analogy(structure: np.ndarray, appearance: np.ndarray, config: SynthesisConfig = SynthesisConfig(noise_sigma=0),
            options: AnalogyOptions = AnalogyOptions(), on_variation: VariationCallback | None = None,
            progress: ProgressCallback | None = None) -> list[np.ndarray]:
    """Clips (T, H, W, 3) uint8 of ``structure``'s shape, laid out and moving like ``structure``
    and made only of ``appearance``'s patches; both (T, H, W, 3) uint8 (T = 1 for an image)."""
    device = resolve_device(options.device)
    structure_video = frames_to_tensor(structure, device)
    appearance_video = frames_to_tensor(appearance, device)
    results = []
    for index in range(options.variations):
        result = synthesize_analogy(structure_video, appearance_video, config, options, [options.seed + index],
                                    progress)
        clip = tensor_to_frames(result.videos[0])
        results.append(clip)
        if on_variation is not None:
            on_variation(index, clip, result.levels)
    return results


def analogy_patch_size(structure_shape: Shape3, appearance_shape: Shape3, config: SynthesisConfig) -> tuple[int, int, int]:
    """The patch for this pair: shrunk in time to the shorter clip (an image: 1 frame); its
    rows and columns must fit both frames."""
    _, ph, pw = config.patch_size
    for name, (frames, height, width) in (("structure", structure_shape), ("appearance", appearance_shape)):
        if ph > height or pw > width:
            raise ConfigError(f"patch {pw}x{ph} pixels is larger than the {name}'s working frame {width}x{height}; "
                              "use a smaller patch size or a larger working size")
    return effective_patch_size(effective_patch_size(config.patch_size, appearance_shape), structure_shape)


def synthesize_analogy(structure: torch.Tensor, appearance: torch.Tensor, config: SynthesisConfig,
                       options: AnalogyOptions, seeds: list[int],
                       progress: ProgressCallback | None = None) -> SynthesisResult:
    """``len(seeds)`` videos (B, 3, T, H, W) of ``structure``'s shape from ``appearance``'s patches;
    both inputs (3, T, H, W) in [0, 1] on one device."""
    for name, video in (("structure", structure), ("appearance", appearance)):
        if video.dim() != 4 or video.shape[0] != 3:
            raise ValueError(f"{name} must be (3, T, H, W), got {tuple(video.shape)}")
    structure_shape: Shape3 = tuple(structure.shape[1:])
    appearance_shape: Shape3 = tuple(appearance.shape[1:])
    patch_size = analogy_patch_size(structure_shape, appearance_shape, config)
    motion = structure_shape[0] > 1 and appearance_shape[0] > 1
    structure_guides = guide_channels(structure, options.structure_bins, motion)
    appearance_guides = guide_channels(appearance, options.appearance_bins, motion)

    geometry = pyramid_geometry(appearance_shape, config.pyramid_factor, config.coarsest_frames,
                                config.coarsest_short_side)
    values_by_level = build_pyramid(appearance, geometry, minimum=patch_size)
    target_shapes = [geometry.level_shape(structure_shape, k, patch_size) for k in range(geometry.levels)]
    coarsest = geometry.levels - 1
    guided_from = geometry.levels - math.ceil(geometry.levels * options.guided_share)  # finest guided level

    start = _match_colours(resize_video(structure, target_shapes[coarsest]), values_by_level[coarsest])
    output = start[None].repeat(len(seeds), 1, 1, 1, 1)
    if config.noise_sigma > 0:
        output = output + draw_noise(tuple(output.shape[1:]), seeds, config.noise_sigma).to(output)

    weighted = config.backend in ("auto", "exact")
    exact_limit = EXACT_WORK_LIMIT.get(structure.device.type, EXACT_WORK_LIMIT["cpu"])
    records, previous = [], None
    for level in range(coarsest, -1, -1):
        started = time.perf_counter()
        values = values_by_level[level]
        target_shape = target_shapes[level]
        level_patch, iterations = _level_settings(config, values, target_shape, patch_size)
        if level == coarsest:
            queries, keys = output, values
        else:
            queries = resize_video(output, target_shape)
            keys = resize_video(values_by_level[level + 1], tuple(values.shape[1:]))
        fine = level < guided_from
        weight = options.fine_guide_weight if fine else options.guide_weight
        # The finer levels keep only the first guide: motion (tone there flattened the texture into
        # its bins' average on real clips), or tone for images, which have nothing else.
        channels = slice(0, 1) if fine else slice(None)
        guided = weight > 0
        query_guide = resize_video(structure_guides[channels], target_shape) * weight if guided else None
        key_guide = resize_video(appearance_guides[channels], tuple(values.shape[1:])) * weight if guided else None
        record = LevelRecord(tuple(values.shape[1:]), target_shape, level_patch, iterations)
        field_ = None
        if previous is not None:
            field_ = rescale_field(previous[0], previous[1], grid_shape(target_shape, level_patch),
                                   grid_shape(values.shape, level_patch))
        backends = {}
        for iteration in range(iterations):
            searched_queries, searched_keys = queries, keys
            if guided:
                searched_queries = torch.cat([queries, query_guide[None].expand(len(seeds), -1, -1, -1, -1)], 1)
                searched_keys = torch.cat([keys, key_guide])
            request = SearchRequest(searched_queries, searched_keys, level_patch, initial_field=field_,
                                    seeds=tuple((seed * 1_000_003 + level * 1_009 + iteration) % 2**63 for seed in seeds))
            if weighted and request.work() <= exact_limit:
                name = COMPLETENESS_BACKEND
                field_ = completeness_search(searched_queries, searched_keys, level_patch, options.alpha)
            else:
                name = choose_backend(config.backend, request)
                if name not in backends:
                    backends[name] = make_backend(name)
                field_ = backends[name].search(request)
            record.backends.append(name)
            queries = vote(values, field_, target_shape, level_patch, config.vote)
            keys = values
        output = queries
        previous = (field_, grid_shape(values.shape, level_patch))
        record.seconds = time.perf_counter() - started
        records.append(record)
        if progress is not None:
            progress(coarsest - level + 1, geometry.levels)
    return SynthesisResult(output.clamp(0, 1), records)


def _match_colours(video: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``video`` (3, T, H, W) with each channel's mean and spread moved to ``reference``'s: the
    layout stays, the palette becomes the appearance's (a flat channel only moves its mean)."""
    mean, spread = video.mean((1, 2, 3), keepdim=True), video.std((1, 2, 3), keepdim=True)
    target_mean, target_spread = reference.mean((1, 2, 3), keepdim=True), reference.std((1, 2, 3), keepdim=True)
    scale = torch.where(spread > 1e-6, target_spread / spread.clamp_min(1e-6), torch.zeros_like(spread))
    return ((video - mean) * scale + target_mean).clamp(0, 1)


def _level_settings(config: SynthesisConfig, values: torch.Tensor, target_shape: Shape3,
                    patch_size) -> tuple[tuple[int, int, int], int]:
    """As in synthesis.py: very large levels get one iteration and smaller patches."""
    voxels = values.shape[1] * values.shape[2] * values.shape[3]
    if voxels > config.large_level_voxels:
        small = effective_patch_size(config.large_level_patch_size, tuple(values.shape[1:]))
        return effective_patch_size(small, target_shape), 1
    return patch_size, config.iterations
