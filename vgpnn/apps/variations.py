"""Synthesise one clip's outputs batch by batch, handing each over as soon as it is done."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..clip_tensor import frames_to_tensor, tensor_to_frames
from ..config import SynthesisConfig
from ..device import resolve_device
from ..memory import check_memory
from ..pyramid import Shape3
from ..synthesis import LevelRecord, ProgressCallback, synthesize

VariationCallback = Callable[[int, np.ndarray, list[LevelRecord]], None]  # (index, frames, levels)


def make_variations(frames: np.ndarray, target_shape: Shape3, config: SynthesisConfig, seeds: list[int],
                    device: str, batch_size: int, on_variation: VariationCallback | None = None,
                    progress: ProgressCallback | None = None, loop: bool = False,
                    hole: np.ndarray | None = None, carry: bool = False,
                    timeline: list[int] | None = None) -> list[np.ndarray]:
    """One (T, H, W, 3) uint8 clip of ``target_shape`` per seed, from ``frames`` (T, H, W, 3) uint8.

    ``on_variation`` sees each clip as soon as its batch is done, so a caller can write it
    before the next batch starts. ``loop``, ``hole``, ``carry`` and ``timeline`` are passed on to :func:`synthesize`.
    """
    torch_device = resolve_device(device)
    check_memory(torch_device, tuple(frames.shape[:3]), target_shape, min(batch_size, len(seeds)), config.backend)
    source = frames_to_tensor(frames, torch_device)
    hole_tensor = None if hole is None else torch.from_numpy(np.ascontiguousarray(hole, dtype=bool)).to(torch_device)
    results = []
    for start in range(0, len(seeds), batch_size):
        result = synthesize(source, target_shape, config, seeds[start:start + batch_size], progress, loop=loop,
                            hole=hole_tensor, carry=carry, timeline=timeline)
        for offset, video in enumerate(result.videos):
            clip = tensor_to_frames(video)
            results.append(clip)
            if on_variation is not None:
                on_variation(start + offset, clip, result.levels)
    return results
