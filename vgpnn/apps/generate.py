"""Variations: new clips of the source's shape, each from its own seed (sample i: seed + i)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..clip_tensor import frames_to_tensor, tensor_to_frames
from ..config import SynthesisConfig
from ..device import resolve_device
from ..errors import ConfigError
from ..memory import check_memory
from ..synthesis import LevelRecord, ProgressCallback, synthesize

VariationCallback = Callable[[int, np.ndarray, list[LevelRecord]], None]  # (index, frames, levels)


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
    device = resolve_device(options.device)
    target_shape = tuple(frames.shape[:3])
    check_memory(device, target_shape, target_shape, min(options.batch_size, options.variations), config.backend)
    source = frames_to_tensor(frames, device)
    results = []
    seeds = [options.seed + i for i in range(options.variations)]
    for start in range(0, len(seeds), options.batch_size):
        batch = seeds[start:start + options.batch_size]
        result = synthesize(source, target_shape, config, batch, progress)
        for offset, video in enumerate(result.videos):
            clip = tensor_to_frames(video)
            results.append(clip)
            if on_variation is not None:
                on_variation(start + offset, clip, result.levels)
    return results
