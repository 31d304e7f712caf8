"""Run a plan's seeds batch by batch, handing each output over as soon as it is done.

Every application ends here: it builds one :class:`~vgpnn.plan.SynthesisPlan` for all its seeds,
and this checks the job fits in memory once, then synthesises ``batch_size`` seeds at a time.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from ..clip_tensor import tensor_to_frames
from ..memory import check_memory
from ..plan import SynthesisPlan
from ..synthesis import LevelRecord, ProgressCallback, synthesize

VariationCallback = Callable[[int, np.ndarray, list[LevelRecord]], None]  # (index, frames, levels)


def seeds_from(seed: int, variations: int) -> tuple[int, ...]:
    """The one seed rule: output i uses ``seed + i``."""
    return tuple(seed + index for index in range(variations))


def make_variations(plan: SynthesisPlan, batch_size: int, on_variation: VariationCallback | None = None,
                    progress: ProgressCallback | None = None) -> list[np.ndarray]:
    """One (T, H, W, 3) uint8 clip per seed of ``plan``.

    ``on_variation`` sees each clip as soon as its batch is done, so a caller can write it
    before the next batch starts. The outputs do not depend on ``batch_size``.
    """
    seeds = list(plan.seeds)
    device = plan.sources[0].video.device
    check_memory(device, plan.source_shape, plan.target.shape, min(batch_size, len(seeds)), plan.config)
    results = []
    for start in range(0, len(seeds), batch_size):
        result = synthesize(replace(plan, seeds=tuple(seeds[start:start + batch_size])), progress)
        for offset, video in enumerate(result.videos):
            clip = tensor_to_frames(video)
            results.append(clip)
            if on_variation is not None:
                on_variation(start + offset, clip, result.levels)
    return results
