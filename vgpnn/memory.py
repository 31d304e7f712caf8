"""Up-front estimate of a job's peak GPU memory, so a job that cannot fit fails at once.

The model is fitted to peaks measured with ``benchmarks/bench_speed.py`` on an H100
(``torch.cuda.max_memory_allocated``, default settings) and rounded up, so it errs on the side
of refusing:

    size (WxHxT, batch)   measured   estimate
    256x144x15, 1         1.51 GiB   1.62 GiB
    640x360x15, 1         1.72 GiB   2.27 GiB
    1280x720x15, 1        4.37 GiB   4.59 GiB
    1920x1080x30, 1       14.39 GiB  15.40 GiB
    256x144x15, 8         6.32 GiB   8.68 GiB
    640x360x15, 8         8.36 GiB   9.63 GiB
"""

from __future__ import annotations

import torch

from .errors import ResourceError

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


def check_fits(needed: int, available: int, device: str) -> None:
    """Raise :class:`ResourceError` naming both figures when ``needed`` exceeds ``available``."""
    if needed > available:
        raise ResourceError(f"this job needs about {needed / _GIB:.1f} GiB on {device} but "
                            f"{available / _GIB:.1f} GiB is free; use a smaller --size, fewer "
                            "--max-frames or a smaller --batch-size")


def check_gpu_memory(device: torch.device, source_shape, target_shape, batch: int) -> None:
    """On a CUDA device, refuse before any work a job whose estimate exceeds the free memory."""
    if device.type != "cuda":
        return
    free, _ = torch.cuda.mem_get_info(device)
    check_fits(estimate_gpu_bytes(source_shape, target_shape, batch), free, str(device))
