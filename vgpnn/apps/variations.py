"""Run a plan's seeds batch by batch, handing each output over as soon as it is done.

Every application ends here: it builds one :class:`~vgpnn.plan.SynthesisPlan` for all its seeds,
and this checks the job fits in memory once, then synthesises ``batch_size`` seeds at a time.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import numpy as np

from ..clip_tensor import tensor_to_frames
from ..memory import check_memory
from ..plan import SynthesisPlan
from ..synthesis import LevelRecord, ProgressCallback, synthesize

# Seconds: a GPU batch queued faster than this is handed over after the next one is queued.
HANDOVER_LAG = 1.0

VariationCallback = Callable[[int, np.ndarray, list[LevelRecord]], None]  # (index, frames, levels)


def seeds_from(seed: int, variations: int) -> tuple[int, ...]:
    """The one seed rule: output i uses ``seed + i``."""
    return tuple(seed + index for index in range(variations))


def make_variations(plan: SynthesisPlan, batch_size: int, on_variation: VariationCallback | None = None,
                    progress: ProgressCallback | None = None) -> list[np.ndarray]:
    """One (T, H, W, 3) uint8 clip per seed of ``plan``.

    ``on_variation`` sees each clip as soon as its batch is done, so a caller can write it
    before the next batch starts. The outputs do not depend on ``batch_size``.

    On a GPU, a batch whose kernels were all queued in under :data:`HANDOVER_LAG` seconds is
    handed over once the next batch's kernels are queued too: copying it to the host waits for
    the GPU, which then works on the next batch meanwhile instead of idling while this process
    writes a file and queues the next kernels. A batch that took longer is handed over at once,
    so no file appears noticeably late. A failure or an interrupt in the next batch still hands
    the finished one over first.
    """
    seeds = list(plan.seeds)
    device = plan.sources[0].video.device
    check_memory(device, plan.source_shape, plan.target.shape, min(batch_size, len(seeds)), plan.config)
    results: list[np.ndarray] = []

    def hand_over(start: int, result) -> None:
        for offset, video in enumerate(result.videos):
            clip = tensor_to_frames(video)
            results.append(clip)
            if on_variation is not None:
                on_variation(start + offset, clip, result.levels)

    starts = range(0, len(seeds), batch_size)
    pending = None
    try:
        for start in starts:
            queued = time.perf_counter()
            result = synthesize(replace(plan, seeds=tuple(seeds[start:start + batch_size])), progress)
            queued = time.perf_counter() - queued
            if pending is not None:
                finished, pending = pending, None
                hand_over(*finished)
            if device.type == "cuda" and start != starts[-1] and queued < HANDOVER_LAG:
                pending = (start, result)
            else:
                hand_over(start, result)
    except BaseException:
        if pending is not None:
            finished, pending = pending, None
            hand_over(*finished)
        raise
    return results
