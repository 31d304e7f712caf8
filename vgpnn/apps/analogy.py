"""Video analogies: the space-time layout and motion of STRUCTURE in the look of APPEARANCE.

A plan for the shared loop (synthesis.py):

1. Guide channels (guides.py) for each video on its own: quantised optical-flow speed (videos
   only), quantised tone and ranked texture, each in [0, 1]. APPEARANCE is the source, with
   its guides; the target has STRUCTURE's working shape and STRUCTURE's guides.
2. Start at the coarsest level from STRUCTURE itself, its colours moved to APPEARANCE's mean and
   spread per channel, so the first match already sees the layout in the right palette.
3. Guide weights: in the coarse half of the pyramid every guide channel counts at
   ``guide_weight`` against colour: where the layout is decided, patches pair by motion and
   tone. The finer half keeps the motion guide (tone for images) and the texture guide. Why
   not plain VGPNN there: the finer levels then re-imposed APPEARANCE's own motion (a disk
   moving in STRUCTURE came out frozen or moving APPEARANCE's way); with the tone guide kept
   too, texture flattened into its bins' average on real clips; without the texture guide,
   the blurred upsampled queries settled on APPEARANCE's smoothest patches.
4. Wherever exhaustive search runs, the search uses GPNN's completeness weighting
   (completeness.py), so the output draws on all of APPEARANCE, not its single best-fitting patch.
5. Every voxel of the output is voted from APPEARANCE's values only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..clip_tensor import frames_to_tensor
from ..completeness import DEFAULT_ALPHA
from ..config import SynthesisConfig
from ..device import resolve_device
from ..errors import ConfigError
from .guides import guide_channels
from ..plan import Source, SynthesisPlan, Target
from ..pyramid import Shape3
from ..resize import resize_video
from ..schedule import check_shapes
from ..synthesis import ProgressCallback
from .variations import VariationCallback, make_variations, seeds_from


@dataclass(frozen=True)
class AnalogyOptions:
    structure_bins: int = 3  # k-means bins of STRUCTURE's motion and tone
    appearance_bins: int = 3  # k-means bins of APPEARANCE's motion and tone
    guide_weight: float = 3.0  # guide channels' weight against colour in coarse-level patch distances
    guided_share: float = 0.5  # share of the pyramid's levels, coarsest first, matched with the full guide weight
    # The motion guide's weight (the tone guide's, for images) at the finer levels (0: plain VGPNN
    # there), and the texture guide's. Measured at 144p, 30 frames on the CPU over the five pairs of
    # benchmarks/bench_analogy.py: with both at 3, detail ratio 0.87 on average (min 0.55) and
    # motion r at least 0.76; with both at 6, 0.96 (min 0.60) and motion r at least 0.71.
    fine_guide_weight: float = 6.0
    texture_weight: float = 6.0
    alpha: float = DEFAULT_ALPHA  # completeness weighting's alpha (per-element squared distance)
    # How chosen patches are folded (config.VOTES). 'best' because the guides pull neighbouring
    # queries to different patches, whose median is a blur: at 72p, 12 frames, water_glass in
    # tree_foliage's look kept 0.18 of the foliage's gradient with the median and 0.28 with best,
    # the sketch 0.24 and 0.56, and motion followed STRUCTURE better too (r 0.66 -> 0.87, 0.64 -> 0.81).
    vote: str = "best"
    variations: int = 1  # how many outputs (they differ only when config.noise_sigma > 0)
    seed: int = 0  # output i uses seed + i (noise); k-means is seeded by 0 so the guides never vary
    device: str = "auto"
    batch_size: int = 1  # outputs synthesised together (pays off on a GPU); results do not depend on it

    def __post_init__(self) -> None:
        if self.structure_bins < 1 or self.appearance_bins < 1:
            raise ConfigError(f"bins must be at least 1, got {self.structure_bins} (structure) and "
                              f"{self.appearance_bins} (appearance)")
        if min(self.guide_weight, self.fine_guide_weight, self.texture_weight) < 0 or not 0 <= self.guided_share <= 1 or self.alpha <= 0:
            raise ConfigError(f"guide weight must be 0 or more, guided share in [0, 1] and alpha positive; got "
                              f"{self.guide_weight}, {self.guided_share}, {self.alpha}")
        if self.variations < 1 or self.batch_size < 1 or self.seed < 0:
            raise ConfigError(f"variations and batch size must be at least 1 and the seed 0 or more, got "
                              f"{self.variations}, {self.batch_size} and {self.seed}")


def analogy(structure: np.ndarray, appearance: np.ndarray, config: SynthesisConfig = SynthesisConfig(noise_sigma=0),
            options: AnalogyOptions = AnalogyOptions(), on_variation: VariationCallback | None = None,
            progress: ProgressCallback | None = None) -> list[np.ndarray]:
    """Clips (T, H, W, 3) uint8 of ``structure``'s shape, laid out and moving like ``structure``
    and made only of ``appearance``'s patches; both (T, H, W, 3) uint8 (T = 1 for an image)."""
    device = resolve_device(options.device)
    plan = analogy_plan(frames_to_tensor(structure, device), frames_to_tensor(appearance, device), config, options)
    return make_variations(plan, options.batch_size, on_variation, progress)


def analogy_plan(structure: torch.Tensor, appearance: torch.Tensor, config: SynthesisConfig,
                 options: AnalogyOptions) -> SynthesisPlan:
    """The plan (module notes) for ``structure`` and ``appearance``, both (3, T, H, W) in [0, 1]
    on one device, with the seeds ``options`` asks for."""
    for name, video in (("structure", structure), ("appearance", appearance)):
        if video.dim() != 4 or video.shape[0] != 3:
            raise ValueError(f"{name} must be (3, T, H, W), got {tuple(video.shape)}")
    analogy_patch_size(tuple(structure.shape[1:]), tuple(appearance.shape[1:]), config)
    motion = structure.shape[1] > 1 and appearance.shape[1] > 1
    structure_guides = guide_channels(structure, options.structure_bins, motion)
    appearance_guides = guide_channels(appearance, options.appearance_bins, motion)

    def start(coarsest_appearance, _appearance, shape, _patch_size):
        return _match_colours(resize_video(structure, shape), coarsest_appearance)

    def weights(level: int, levels: int) -> list[float]:
        guided_from = levels - math.ceil(levels * options.guided_share)  # the finest level with every guide
        if level >= guided_from:
            return [options.guide_weight] * len(structure_guides)
        kept = options.fine_guide_weight  # motion for videos, tone for images
        return ([kept, 0.0] if motion else [kept]) + [options.texture_weight]

    return SynthesisPlan((Source(appearance, guides=appearance_guides),),
                         Target(tuple(structure.shape[1:]), guides=structure_guides, start=start),
                         seeds_from(options.seed, options.variations), replace(config, vote=options.vote),
                         guide_weights=weights,
                         completeness_alpha=options.alpha)


def analogy_patch_size(structure_shape: Shape3, appearance_shape: Shape3, config: SynthesisConfig) -> tuple[int, int, int]:
    """The patch for this pair: shrunk in time to the shorter clip (an image: 1 frame); its
    rows and columns must fit both frames."""
    _, ph, pw = config.patch_size
    for name, (frames, height, width) in (("structure", structure_shape), ("appearance", appearance_shape)):
        if ph > height or pw > width:
            raise ConfigError(f"patch {pw}x{ph} pixels is larger than the {name}'s working frame {width}x{height}; "
                              "use a smaller patch size or a larger working size")
    return check_shapes(appearance_shape, structure_shape, config)


def _match_colours(video: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``video`` (3, T, H, W) with each channel's mean and spread moved to ``reference``'s: the
    layout stays, the palette becomes the appearance's (a flat channel only moves its mean)."""
    mean, spread = video.mean((1, 2, 3), keepdim=True), video.std((1, 2, 3), keepdim=True)
    target_mean, target_spread = reference.mean((1, 2, 3), keepdim=True), reference.std((1, 2, 3), keepdim=True)
    scale = torch.where(spread > 1e-6, target_spread / spread.clamp_min(1e-6), torch.zeros_like(spread))
    return ((video - mean) * scale + target_mean).clamp(0, 1)
