"""Variations: new clips of the source's shape, each from its own seed (sample i: seed + i)."""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from ..clip_tensor import frames_to_tensor
from ..config import SynthesisConfig
from ..device import resolve_device
from ..errors import ConfigError
from ..plan import Source, SynthesisPlan, Target
from ..synthesis import ProgressCallback
from .variations import VariationCallback, make_variations, seeds_from


@dataclass(frozen=True)
class GenerateOptions:
    variations: int = 1  # how many clips to make
    seed: int = 0  # clip i uses seed + i
    device: str = "auto"  # auto, cpu or cuda
    batch_size: int = 1  # variations synthesised together (pays off on a GPU)

    def __post_init__(self) -> None:
        if self.variations < 1:
            raise ConfigError(f"number of variations must be at least 1, got {self.variations}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.seed < 0:
            raise ConfigError(f"seed must be 0 or more, got {self.seed}")


def generate(frames: np.ndarray, config: SynthesisConfig = SynthesisConfig(),
             options: GenerateOptions = GenerateOptions(),
             on_variation: VariationCallback | None = None,
             progress: ProgressCallback | None = None) -> list[np.ndarray]:
    """Make ``options.variations`` new clips from ``frames`` (T, H, W, 3) uint8.

    Returns the clips as (T, H, W, 3) uint8 arrays; ``on_variation`` sees each as soon as it is
    done (so a caller can write it before the next one starts).
    """
    source = frames_to_tensor(frames, resolve_device(options.device))
    plan = SynthesisPlan((Source(source),), Target(tuple(frames.shape[:3])), seeds_from(options.seed, options.variations),
                         config)
    return make_variations(plan, options.batch_size, on_variation, progress)
