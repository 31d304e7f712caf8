"""Up-front estimate of a job's peak memory, so a job that cannot fit fails at once, before work.

On a GPU the model is fitted to peaks measured with ``benchmarks/bench_speed.py`` on an H100
(``torch.cuda.max_memory_allocated``, default settings) without Triton, whose torch vote and
PatchMatch need the most, and rounded up, so it errs on the side of refusing. The fused
Triton kernels need far less (last column), so with them the estimate is generous:

    size (WxHxT, batch)   measured   estimate   measured with Triton kernels
    256x144x15, 1         1.51 GiB   1.62 GiB   0.21 GiB
    640x360x15, 1         1.72 GiB   2.27 GiB   0.49 GiB
    1280x720x15, 1        4.37 GiB   4.59 GiB   1.95 GiB
    1920x1080x30, 1       14.39 GiB  15.40 GiB  8.95 GiB
    256x144x15, 8         6.32 GiB   8.68 GiB   0.55 GiB
    640x360x15, 8         8.36 GiB   9.63 GiB   2.67 GiB

On a CPU the figure is the process's peak resident memory (``ru_maxrss``, Python and torch
included), measured on the 2-core development machine with iterations 1 (more iterations
reuse the same buffers) and rounded up:

    size (WxHxT, batch, backend)   measured   estimate
    128x72x15, 1, auto             0.48 GiB   0.58 GiB
    256x144x15, 1, auto            0.66 GiB   0.81 GiB
    256x144x30, 1, auto            0.91 GiB   1.12 GiB
    384x216x20, 1, auto            1.22 GiB   1.43 GiB
    256x144x15, 3, auto            0.82 GiB   1.01 GiB
    128x72x15, 1, patchmatch       1.08 GiB   1.72 GiB
    256x144x15, 1, patchmatch      2.22 GiB   2.38 GiB

A job is refused, never shrunk to fit: an output must not depend on the memory that happened
to be free.
"""

from __future__ import annotations

from pathlib import Path

from .config import SynthesisConfig
from .errors import SMALLER_JOB, ConfigError, ResourceError
from .schedule import level_schedule

_GIB = 2**30
_FIXED = 1.5 * _GIB  # pyramid bookkeeping, chunk buffers of the vote and the exact search
_PER_VOXEL = 240  # bytes per voxel of the largest level (pyramids, descriptors, field)
_PER_EXTRA_SAMPLE = 1.0 * _GIB  # PatchMatch proposal chunks of each further batch element
_PER_EXTRA_SAMPLE_VOXEL = 16  # queries, field and distances of each further batch element


def estimate_gpu_bytes(source_shape: tuple[int, int, int], target_shape: tuple[int, int, int],
                       batch: int) -> int:
    """Estimated peak bytes of synthesising ``batch`` videos of ``target_shape`` from a source
    of ``source_shape`` (frames, height, width) on a GPU."""
    voxels = max(source_shape[0] * source_shape[1] * source_shape[2],
                 target_shape[0] * target_shape[1] * target_shape[2])
    extra = batch - 1
    return int(_FIXED + _PER_VOXEL * voxels + extra * (_PER_EXTRA_SAMPLE + _PER_EXTRA_SAMPLE_VOXEL * voxels))


_CPU_FIXED = 0.5 * _GIB  # Python, torch, numba and faiss loaded; the exact search's score chunks
_CPU_PER_VOXEL = 600  # pyramids, unfolded patch rows of the exact levels, faiss descriptors
_CPU_PATCHMATCH_FIXED = 1.0 * _GIB  # PatchMatch's proposal chunks (2**18 positions at a time)
_CPU_PATCHMATCH_PER_VOXEL = 1100  # its descriptors, field and distances
_CPU_PER_EXTRA_SAMPLE_VOXEL = 200  # queries, votes and fields of each further batch element


def estimate_cpu_bytes(source_shape: tuple[int, int, int], target_shape: tuple[int, int, int],
                       batch: int, patchmatch: bool = False) -> int:
    """Estimated peak resident bytes of the same job on a CPU; ``patchmatch``: some level uses it."""
    voxels = max(source_shape[0] * source_shape[1] * source_shape[2],
                 target_shape[0] * target_shape[1] * target_shape[2])
    estimate = _CPU_FIXED + _CPU_PER_VOXEL * voxels + (batch - 1) * _CPU_PER_EXTRA_SAMPLE_VOXEL * voxels
    if patchmatch:
        estimate += _CPU_PATCHMATCH_FIXED + _CPU_PATCHMATCH_PER_VOXEL * voxels
    return int(estimate)


def available_cpu_bytes() -> int | None:
    """Memory the system can still give without swapping (Linux MemAvailable); None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(needed: int, available: int, device: str) -> None:
    """Raise :class:`ResourceError` naming both figures when ``needed`` exceeds ``available``."""
    if needed > available:
        raise ResourceError(f"this job needs about {needed / _GIB:.1f} GiB on {device} but "
                            f"{available / _GIB:.1f} GiB is free; use {SMALLER_JOB}")


def estimate_bytes(device: torch.device, source_shape, target_shape, batch: int,
                   config: SynthesisConfig | None = None) -> int:
    """Estimated peak bytes of a job on ``device``: GPU memory on CUDA, resident memory on a CPU
    (more where the level schedule searches some level with PatchMatch)."""
    if device.type == "cuda":
        return estimate_gpu_bytes(source_shape, target_shape, batch)
    return estimate_cpu_bytes(source_shape, target_shape, batch, _uses_patchmatch(source_shape, target_shape, config))


def _uses_patchmatch(source_shape, target_shape, config: SynthesisConfig | None) -> bool:
    try:
        levels = level_schedule(tuple(source_shape), tuple(target_shape), config or SynthesisConfig(), "cpu")
    except ConfigError:
        return False  # the job will be refused for its shapes, with its own message
    from .nn import fused_patchmatch
    # PatchMatch's compiled CPU kernel holds no descriptors or proposals: only the torch one counts.
    return not fused_patchmatch("cpu") and any(level.backend == "patchmatch" for level in levels)


def available_bytes(device: torch.device) -> int | None:
    """Free GPU memory on CUDA, available system memory on a CPU (None when it cannot be known)."""
    if device.type == "cuda":
        import torch  # only here: the command line checks memory before it needs torch
        return torch.cuda.mem_get_info(device)[0]
    return available_cpu_bytes()


def check_memory(device: torch.device, source_shape, target_shape, batch: int,
                 config: SynthesisConfig | None = None) -> None:
    """Refuse before any work a job whose estimated peak exceeds the memory free on ``device``."""
    available = available_bytes(device)
    if available is not None:
        label = str(device) if device.type == "cuda" else "this machine (RAM)"
        check_fits(estimate_bytes(device, source_shape, target_shape, batch, config), available, label)
