"""What one run of the synthesis loop makes, as data: the loop (synthesis.py) has no application flags.

Every application is the same coarse-to-fine Q/K/V loop with different inputs. An application
says what those inputs are by building a :class:`SynthesisPlan`:

- **sources**: the videos whose patches the output is made of (values), each optionally with
  guide channels (matched, never copied) and a mask of the voxels patches may be copied from.
  Several sources of one shape are searched together: any patch of any source can be chosen.
- **target**: the output's shape; its guide channels (paired with the sources' guides, as in
  EbSynth's (source guide, target guide, weight) triples); voxels fixed to given values (kept
  from the input when inpainting, a loop's or an extension's known frames); whether time
  wraps around (a seamless loop); whether each level starts from the coarser level's layout
  carried up; and how the coarsest level starts.
- **guide_weights**: per level, the weight of each guide channel (0 leaves it out).
- **seeds** and **config** (noise, patch size, iterations, backend, vote).

Applications build plans in ``apps/``; the loop imports none of their helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .config import SynthesisConfig
from .errors import ConfigError
from .pyramid import Shape3

# (coarsest source level (C, T, H, W), full-size source (C, T, H, W), coarsest target shape,
#  patch size) -> the coarsest level's starting guess (C, T', H', W')
StartGuess = Callable[[torch.Tensor, torch.Tensor, Shape3, tuple[int, int, int]], torch.Tensor]
FREE_STARTS = ("fill", "guess")  # see Target.free_start
FILL_VOTES = ("best", "consensus")  # see Target.fill_vote
# (level, levels) with 0 the finest -> one weight per guide channel
GuideWeights = Callable[[int, int], Sequence[float]]


@dataclass(frozen=True)
class Source:
    """A video the output is made of."""

    video: torch.Tensor  # (C, T, H, W) in [0, 1]: the values that are copied
    guides: torch.Tensor | None = None  # (G, T, H, W): matched against the target's guides, never copied
    usable: torch.Tensor | None = None  # (T, H, W) bool: voxels patches may be copied from; None: all

    def __post_init__(self) -> None:
        if self.video.dim() != 4:
            raise ValueError(f"a source video must be (C, T, H, W), got {tuple(self.video.shape)}")
        shape = tuple(self.video.shape[1:])
        if self.guides is not None and (self.guides.dim() != 4 or tuple(self.guides.shape[1:]) != shape):
            raise ValueError(f"source guides must be (G, {', '.join(map(str, shape))}), got {tuple(self.guides.shape)}")
        if self.usable is not None and tuple(self.usable.shape) != shape:
            raise ValueError(f"a source's usable mask must be {shape}, got {tuple(self.usable.shape)}")

    @property
    def shape(self) -> Shape3:
        return tuple(self.video.shape[1:])


@dataclass(frozen=True)
class Target:
    """The output: its shape and what is known or asked of it."""

    shape: Shape3  # (frames, height, width)
    guides: torch.Tensor | None = None  # (G, T, H, W) at ``shape``, paired channel by channel with the sources'
    fixed: torch.Tensor | None = None  # (C, T, H, W) at ``shape``: values of the fixed voxels
    fixed_mask: torch.Tensor | None = None  # (T, H, W) bool: True where the output equals ``fixed``
    wraps_time: bool = False  # a seamless loop: the last frame leads into the first
    carry_layout: bool = False  # each finer level starts from the coarser one's arrangement of source patches
    start: StartGuess | None = None  # the coarsest level's guess; None: the source resized to the target's shape
    # Where the coarsest level's free voxels start: "fill", a smooth fill grown from the fixed voxels
    # around them (an inpainting hole, whose guess would show what was removed); "guess", the start
    # guess itself (an extension's new frames, which start as source frames along a timeline: a
    # fill grown in time from the last known frame is a still picture and the motion never starts).
    free_start: str = "fill"
    # How the free voxels are voted where some are fixed: "best", each from the covering source
    # patch closest to the consensus (an inpainting hole keeps the source's texture and motion;
    # synthesis.py's _fill_free_once); "consensus", the plain vote, as with no fixed voxels (a
    # continuation, whose free part is most of the target: the plain vote blends across its
    # timeline's jumps as a target in one piece does, where "best" leaves each one a hard cut).
    fill_vote: str = "best"

    def __post_init__(self) -> None:
        shape = tuple(int(side) for side in self.shape)
        object.__setattr__(self, "shape", shape)
        if self.guides is not None and (self.guides.dim() != 4 or tuple(self.guides.shape[1:]) != shape):
            raise ValueError(f"target guides must be (G, {', '.join(map(str, shape))}), got {tuple(self.guides.shape)}")
        if self.free_start not in FREE_STARTS:
            raise ValueError(f"free_start must be one of {', '.join(FREE_STARTS)}, got {self.free_start!r}")
        if self.fill_vote not in FILL_VOTES:
            raise ValueError(f"fill_vote must be one of {', '.join(FILL_VOTES)}, got {self.fill_vote!r}")
        if (self.fixed is None) != (self.fixed_mask is None):
            raise ValueError("fixed voxels need both their values and their mask")
        if self.fixed is not None:
            if self.fixed.dim() != 4 or tuple(self.fixed.shape[1:]) != shape:
                raise ValueError(f"fixed values must be (C, {', '.join(map(str, shape))}), got {tuple(self.fixed.shape)}")
            if tuple(self.fixed_mask.shape) != shape or self.fixed_mask.dtype != torch.bool:
                raise ValueError(f"the fixed mask must be bool {shape}, got {self.fixed_mask.dtype} "
                                 f"{tuple(self.fixed_mask.shape)}")
            if self.wraps_time or self.carry_layout:
                # The fixed voxels' search box and best-patch vote have no wrapped or carried form.
                raise ValueError("fixed voxels cannot be combined with wrapping time or a carried layout")


@dataclass(frozen=True)
class SynthesisPlan:
    """One run of the loop: ``len(seeds)`` outputs of ``target`` made of ``sources``' patches."""

    sources: tuple[Source, ...]
    target: Target
    seeds: tuple[int, ...]  # output i's noise and searches depend on seeds[i] alone
    config: SynthesisConfig = field(default_factory=SynthesisConfig)
    guide_weights: GuideWeights | None = None  # None: every guide channel at weight 1 on every level
    completeness_alpha: float | None = None  # GPNN's completeness weighting where exhaustive search runs

    def __post_init__(self) -> None:
        sources = tuple(self.sources)
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "seeds", tuple(int(seed) for seed in self.seeds))
        if not sources:
            raise ValueError("a plan needs at least one source")
        if not self.seeds:
            raise ValueError("a plan needs at least one seed")
        first = sources[0]
        for other in sources[1:]:
            if other.shape != first.shape or other.video.shape[0] != first.video.shape[0]:
                raise ConfigError(f"every source must have one shape; got {tuple(first.video.shape)} and "
                                  f"{tuple(other.video.shape)}")
            if (other.guides is None) != (first.guides is None) or (
                    other.guides is not None and other.guides.shape[0] != first.guides.shape[0]):
                raise ValueError("every source must have the same guide channels")
        source_guides = 0 if first.guides is None else first.guides.shape[0]
        target_guides = 0 if self.target.guides is None else self.target.guides.shape[0]
        if source_guides != target_guides:
            raise ValueError(f"the sources have {source_guides} guide channels and the target {target_guides}")
        if self.target.fixed is not None and self.target.fixed.shape[0] != first.video.shape[0]:
            raise ValueError(f"fixed values have {self.target.fixed.shape[0]} channels, the sources "
                             f"{first.video.shape[0]}")
        if self.target.wraps_time and self.config.vote == "best":
            # The best-patch vote has no wrapped form (wrap.py folds by median or mean).
            raise ConfigError("the 'best' vote cannot be combined with time that wraps (a loop); "
                              "expected vote 'median' or 'mean'")
        if self.completeness_alpha is not None and self.completeness_alpha <= 0:
            raise ValueError(f"completeness alpha must be positive, got {self.completeness_alpha}")

    @classmethod
    def single(cls, source: torch.Tensor, target_shape: Shape3, config: SynthesisConfig, seeds: Sequence[int],
               **target) -> "SynthesisPlan":
        """The plan of plain variations or retargets: one source (C, T, H, W), no guides; ``target``:
        other :class:`Target` fields."""
        return cls((Source(source),), Target(tuple(target_shape), **target), tuple(seeds), config)

    @property
    def source_shape(self) -> Shape3:
        return self.sources[0].shape

    def weights(self, level: int, levels: int) -> list[float]:
        """The guide channels' weights at ``level`` (0 the finest)."""
        count = 0 if self.target.guides is None else self.target.guides.shape[0]
        if self.guide_weights is None:
            return [1.0] * count
        weights = [float(w) for w in self.guide_weights(level, levels)]
        if len(weights) != count:
            raise ValueError(f"guide weights give {len(weights)} values for {count} guide channels")
        return weights
