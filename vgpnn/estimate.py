"""How long a synthesis job will take, estimated before running it (``vgpnn info``).

The model, in three steps:

1. Walk the pyramid the synthesis will build (the same geometry, per-level patch and
   iteration count, and backend rule as :mod:`vgpnn.synthesis`), and count per level:
   ``exact``  multiply-adds of exhaustive search (query patches x key patches x patch length),
   ``approx`` query patches searched by faiss or PatchMatch (their cost per query is fixed),
   ``keys``   key patches indexed by faiss or described for PatchMatch (once per level),
   ``vote``   voxels x patch volume folded by the median vote,
   ``steps``  EM iterations (fixed overhead each: resizes, unfolds, Python).
2. Seconds on a reference device = the sum of each count times a cost per unit, fitted by
   least squares to per-level timings of real runs (``benchmarks/calibrate_estimate.py``).
3. Scale by the speed of this machine relative to that reference: a float32 matrix product is
   timed now (about 0.2 s) and compared with the same product on the reference device.

Fitted per device kind; the reference CPU is this project's 2-core development machine, the
reference GPU an H200 (the costs fitted on an H100 before the fused kernels got faster, all
divided by 5.3: the model then overestimated every H200 job below by 5.0 to 5.6 times). On
another kind of device the scaling in step 3 is only as good as matrix-product speed is a
guide to the rest (memory bandwidth, the vote), so the figure is an estimate, and ``vgpnn
info`` says so.

Seconds per variation, default settings, estimated vs measured (the GPU runs are among those
the costs were fitted to). The CPU's search cost ``approx`` is that of the compiled PatchMatch
(kernels/patchmatch_numba.py), fitted to one figure: 29.6 CPU seconds per 256x144x15
variation (``benchmarks/bench_generate.py``, which reports CPU time, on the 2-core machine
while others shared it), taken as 15.8 s of quiet wall time with the ratio the faiss path
showed between its CPU time and its quiet wall time (49.5 / 26.4 = 1.87). The other CPU
costs are the earlier fit (exhaustive search, vote, overhead), whose estimates were within
about 20 % of measured times; treat the CPU figures as a guide until re-fitted on a quiet
machine (``benchmarks/calibrate_estimate.py``):

    device        size (WxHxT)    estimated   measured
    2-core CPU    256x144x15      15.8        15.8 (from CPU time, as above)
    H200          256x144x15      0.24        0.25 (bench_speed.py, median of 3)
    H200          640x360x30      1.35        1.4  (calibrate_estimate.py --check, 2 seeds)
    H200          1280x720x15     1.29        1.22 (3 seeds)
    H200          1920x1080x30    3.74        3.7  (calibrate_estimate.py --check, 2 seeds)

(On CUDA, ``calibrate_estimate.py``'s per-level fit is not usable: a level's time is taken
without waiting for the GPU, so the fit sees the launches, not the work.)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from .config import SynthesisConfig
from .errors import ConfigError
from .nn import patchmatch_rounds_from_previous
from .pyramid import Shape3
from .schedule import level_schedule

# Seconds per unit of each count on the reference devices (step 2), and the reference
# devices' float32 matrix-product rate in multiply-adds per second (step 3).
COSTS = {
    # approx: the numba PatchMatch (no key index, so keys 0), from CPU seconds (see above)
    "cpu": {"exact": 1.96e-11, "approx": 1.89e-06, "keys": 0.0, "vote": 5.13e-09, "steps": 6.22e-04},
    "cuda": {"exact": 2.72e-15, "approx": 3.06e-08, "keys": 1.30e-09, "vote": 4.96e-11, "steps": 2.47e-04},
}
REFERENCE_MATMUL_RATE = {"cpu": 7.19e10, "cuda": 2.53e13}

# Keyframe propagation (apps/propagate.py) is not the engine: per frame it makes a flow, a
# look-alike search and a window search, each growing with the frame's pixels. Reference
# seconds per pixel of a frame made, whole command included, from two measurements:
# cpu: 255 s for a 5 s 854x480 clip (124 frames made) on a 2-core machine whose matrix
# products ran at 1.2e11 multiply-adds/s, scaled to the reference rate; cuda: 22.2 s for the
# same clip at 1280x720 on the H200.
PROPAGATION_COSTS = {"cpu": 8.4e-06, "cuda": 1.94e-07}
_MATMUL_SIDE = {"cpu": 1024, "cuda": 8192}


@dataclass(frozen=True)
class LevelWork:
    """The counts of step 1 for one pyramid level (all its iterations, all samples)."""

    source_shape: Shape3
    target_shape: Shape3
    patch_size: tuple[int, int, int]
    iterations: int
    backend: str  # of the first iteration; later ones match against the sharp source alike
    exact: float = 0.0
    approx: float = 0.0
    keys: float = 0.0
    vote: float = 0.0
    steps: float = 0.0


def level_work(source_shape: Shape3, target_shape: Shape3, patch_size, iterations: int, backends: list[str],
               samples: int = 1, search_share: float = 1.0) -> LevelWork:
    """Counts for one level, given the backend of each iteration. ``search_share``: the share of
    a usual level's PatchMatch rounds this level makes (a large level's one round on a GPU)."""
    patch_volume = patch_size[0] * patch_size[1] * patch_size[2]
    queries = math.prod(max(1, t - p + 1) for t, p in zip(target_shape, patch_size))
    keys = math.prod(max(1, s - p + 1) for s, p in zip(source_shape, patch_size))
    exact = approx = 0.0
    for backend in backends:
        if backend == "exact":
            exact += float(queries) * keys * 3 * patch_volume * samples
        else:
            approx += queries * samples * search_share
    indexed = keys if any(b != "exact" for b in backends) else 0
    vote = float(math.prod(target_shape)) * patch_volume * len(backends) * samples
    return LevelWork(tuple(source_shape), tuple(target_shape), tuple(patch_size), len(backends), backends[0],
                     exact, approx, float(indexed), vote, float(len(backends)))


def plan_levels(source_shape: Shape3, target_shape: Shape3, config: SynthesisConfig, device_type: str,
                samples: int = 1) -> list[LevelWork]:
    """The levels :func:`vgpnn.synthesis.synthesize` will run, coarsest first, with their counts
    (the schedule of schedule.py)."""
    cpu_kernel = device_type == "cpu"
    usual = patchmatch_rounds_from_previous(cpu_kernel, quick=False)
    return [level_work(level.source_shape, level.target_shape, level.patch_size, level.iterations,
                       [level.backend] * level.iterations, samples,
                       patchmatch_rounds_from_previous(cpu_kernel, level.large) / usual)
            for level in level_schedule(source_shape, target_shape, config, device_type)]


def reference_seconds(levels: list[LevelWork], device_type: str) -> float:
    """Step 2: the modelled seconds on the reference device of ``device_type``."""
    costs = COSTS.get(device_type, COSTS["cpu"])
    return sum(getattr(level, name) * cost for level in levels for name, cost in costs.items())


def propagation_seconds(shape: Shape3, keys, device_type: str) -> float:
    """The modelled seconds of propagating ``keys`` (frame indices) through a clip of ``shape``
    = (frames, height, width) on the reference device of ``device_type``. A frame between two
    keys is made once from each side."""
    frames, height, width = shape
    keys = sorted(set(keys))
    between = (keys[-1] - keys[0] + 1 - len(keys)) if keys else 0
    made = frames - len(keys) + between
    return made * height * width * PROPAGATION_COSTS.get(device_type, PROPAGATION_COSTS["cpu"])


def level_seconds(levels: list[LevelWork], device_type: str) -> list[float]:
    """Step 2 per level (coarsest first): the modelled share of each level, which progress
    bars use to weight levels (finer levels cost far more than coarser ones)."""
    costs = COSTS.get(device_type, COSTS["cpu"])
    return [sum(getattr(level, name) * cost for name, cost in costs.items()) for level in levels]


# The automatic working size (``--working-size auto``): the largest of these shorter sides, up
# to the input's own, whose estimated time per variation here stays within the budget; never
# below DEFAULT_SHORT_SIDE (or the input's own size when smaller), as before there was a choice.
WORKING_SIZES = (144, 180, 216, 240, 288, 360, 432, 480, 540, 720, 900, 1080)
DEFAULT_SHORT_SIDE = 144
SECONDS_PER_VARIATION = 60.0


def automatic_short_side(native_short_side: int, shape_at, config: SynthesisConfig, device,
                         rate: Callable[[], float]) -> int | None:
    """The shorter side a job should work at here: None for the input's own size (where it is at
    most the largest of WORKING_SIZES and its estimate fits), else one of WORKING_SIZES.
    ``shape_at(short_side)`` gives the working (frames, height, width) at a shorter side (None:
    native); ``rate()`` this device's matrix-product rate, asked only when an estimate is needed."""
    if native_short_side <= DEFAULT_SHORT_SIDE:
        return None  # nothing to choose: it is never upscaled
    candidates = [None] if native_short_side <= WORKING_SIZES[-1] else []
    candidates += [side for side in reversed(WORKING_SIZES) if DEFAULT_SHORT_SIDE < side < native_short_side]
    measured = None
    for side in candidates:
        shape = shape_at(side)
        try:
            levels = plan_levels(shape, shape, config, device.type)
        except ConfigError:  # frames smaller than a patch at this size
            continue
        measured = rate() if measured is None else measured
        if estimate_seconds(levels, device, measured) <= SECONDS_PER_VARIATION:
            return side
    return DEFAULT_SHORT_SIDE


def matmul_rate(device: torch.device, repeats: int = 3) -> float:
    """Multiply-adds per second of a float32 matrix product on ``device``, best of ``repeats``."""
    import torch  # only to measure: the model itself is arithmetic

    side = _MATMUL_SIDE.get(device.type, _MATMUL_SIDE["cpu"])
    left = torch.rand(side, side, device=device)
    right = torch.rand(side, side, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    left @ right  # warm-up: first calls pay for thread pools and kernels
    sync()
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        left @ right
        sync()
        best = min(best, time.perf_counter() - started)
    return side**3 / best


def estimate_seconds(levels: list[LevelWork], device: torch.device, rate: float | None = None) -> float:
    """Steps 2 and 3: modelled seconds on ``device``; ``rate`` (from :func:`matmul_rate`) is
    measured when not given."""
    rate = matmul_rate(device) if rate is None else rate
    reference = REFERENCE_MATMUL_RATE.get(device.type, REFERENCE_MATMUL_RATE["cpu"])
    return reference_seconds(levels, device.type) * reference / rate
