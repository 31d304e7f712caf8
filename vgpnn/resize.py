"""Antialiased cubic resizing of videos along any of the time, height and width axes.

How a resize along one axis works:
1. For each output sample i, find its centre in input coordinates: (i + 0.5) / scale - 0.5.
2. Weigh the input samples around it with the Keys cubic kernel (a = -0.5). When shrinking,
   widen the kernel by 1 / scale so every input sample contributes (antialiasing).
3. Input samples beyond the border are mirrored back inside (no dark or smeared edges), or,
   for a looping axis, wrapped around to the other end.
4. Normalise the weights of each output sample to sum to one.
The weights form an (out, in) matrix, so resizing is one matrix product per axis on any device.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

_KEYS_A = -0.5


def _keys_cubic(x: torch.Tensor) -> torch.Tensor:
    x = x.abs()
    x2, x3 = x * x, x * x * x
    near = (_KEYS_A + 2) * x3 - (_KEYS_A + 3) * x2 + 1
    far = _KEYS_A * x3 - 5 * _KEYS_A * x2 + 8 * _KEYS_A * x - 4 * _KEYS_A
    return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def _mirror(index: torch.Tensor, size: int) -> torch.Tensor:
    # Reflect without repeating the edge sample (…, 2, 1, 0, 1, 2, …), folded until in range.
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)


@lru_cache(maxsize=256)
def _weight_matrix_cpu(in_size: int, out_size: int, circular: bool) -> torch.Tensor:
    scale = out_size / in_size
    widen = min(scale, 1.0)  # < 1 only when shrinking
    support = 2.0 / widen
    centres = (torch.arange(out_size, dtype=torch.float64) + 0.5) / scale - 0.5
    taps = int(math.ceil(2 * support)) + 1
    first = torch.floor(centres - support).to(torch.int64) + 1
    sample = first[:, None] + torch.arange(taps)[None, :]  # (out, taps)
    weights = _keys_cubic((centres[:, None] - sample) * widen)
    weights = weights / weights.sum(dim=1, keepdim=True)
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    inside = sample.remainder(in_size) if circular else _mirror(sample, in_size)
    matrix.scatter_add_(1, inside, weights)
    return matrix


def resize_matrix(in_size: int, out_size: int, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32, circular: bool = False) -> torch.Tensor:
    """The (out_size, in_size) matrix that resizes one axis; ``circular`` treats the axis as a
    loop (sample -1 is the last one)."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"resize sizes must be positive, got {in_size} -> {out_size}")
    return _weight_matrix_on(in_size, out_size, circular, torch.device(device), dtype)


@lru_cache(maxsize=256)
def _weight_matrix_on(in_size: int, out_size: int, circular: bool, device: torch.device,
                      dtype: torch.dtype) -> torch.Tensor:
    # Kept on the device: a synthesis resizes the same few axes hundreds of times, and each
    # copy from the host would wait for the GPU's queued work (a pageable copy synchronises).
    return _weight_matrix_cpu(in_size, out_size, circular).to(device=device, dtype=dtype)


def resize_axis(video: torch.Tensor, axis: int, out_size: int, circular: bool = False) -> torch.Tensor:
    """Resize ``video`` along ``axis`` to ``out_size`` samples; other axes untouched."""
    in_size = video.shape[axis]
    if in_size == out_size:
        return video
    matrix = resize_matrix(in_size, out_size, video.device, video.dtype, circular)
    moved = video.movedim(axis, -1)  # (..., in)
    return (moved @ matrix.T).movedim(-1, axis)  # (..., out) moved back


def resize_video(video: torch.Tensor, shape: tuple[int, int, int], loop: bool = False) -> torch.Tensor:
    """Resize a video ``(..., C, T, H, W)`` to ``shape = (T', H', W')``.

    Axes are resized one after another, shrinking ones first so the intermediate stays small.
    ``loop``: the video is a loop, so time wraps around instead of mirroring at the ends.
    """
    if video.dim() < 4:
        raise ValueError(f"expected a video (..., C, T, H, W), got shape {tuple(video.shape)}")
    if video.dim() > 4:
        # One video at a time: a matrix product's rounding depends on its size, and a video's
        # result must not depend on which other videos share its batch.
        return torch.stack([resize_video(one, shape, loop) for one in video])
    axes = [(video.dim() - 3 + i, size) for i, size in enumerate(shape)]
    axes.sort(key=lambda axis_size: axis_size[1] / video.shape[axis_size[0]])
    time_axis = video.dim() - 3
    for axis, size in axes:
        video = resize_axis(video, axis, size, circular=loop and axis == time_axis)
    return video
