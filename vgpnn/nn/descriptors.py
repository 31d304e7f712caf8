"""Short patch descriptors: each patch projected onto the leading principal axes of the keys.

Approximate backends compare these instead of whole patches. The projection is a 3-D
convolution with the principal axes as filters, so descriptors of every patch position are
computed straight from the video, without materialising the unfolded patches. Distances
between descriptors are distances between patches minus what the dropped axes hold, which
for natural video is a few percent.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..patches import PatchSize, grid_shape, unfold


def principal_axes(keys: torch.Tensor, patch_size: PatchSize, dims: int,
                   generator: torch.Generator | None = None, sample: int = 4096) -> torch.Tensor:
    """The ``dims`` leading principal axes of a sample of the patches of ``keys`` (C, T, H, W).

    Returns (dims, C, pt, ph, pw) convolution filters on ``keys``'s device and dtype.
    """
    channels = keys.shape[0]
    grid = grid_shape(keys.shape, patch_size)
    positions = grid[0] * grid[1] * grid[2]
    patch_dims = channels * patch_size[0] * patch_size[1] * patch_size[2]
    dims = min(dims, patch_dims)
    chosen = torch.randperm(positions, generator=generator)[:sample].to(keys.device)
    t, rest = chosen // (grid[1] * grid[2]), chosen % (grid[1] * grid[2])
    y, x = rest // grid[2], rest % grid[2]
    # Gather the sampled boxes in one indexing op: (C, S, pt, ph, pw) -> (S, D).
    offsets = [torch.arange(n, device=keys.device) for n in patch_size]
    boxes = keys[:, (t[:, None] + offsets[0])[:, :, None, None],
                 (y[:, None] + offsets[1])[:, None, :, None],
                 (x[:, None] + offsets[2])[:, None, None, :]]
    patches = boxes.permute(1, 0, 2, 3, 4).reshape(-1, patch_dims).float()  # (S, D)
    patches = patches - patches.mean(0, keepdim=True)
    covariance = patches.T @ patches  # (D, D)
    with _one_cpu_thread(covariance.device):
        _, vectors = torch.linalg.eigh(covariance.double())  # ascending eigenvalues
    axes = vectors[:, -dims:].flip(1).T  # (dims, D), leading first
    return axes.to(keys.dtype).reshape(dims, channels, *patch_size)


@contextmanager
def _one_cpu_thread(device: torch.device):
    """LAPACK's threaded eigh on a small matrix can spin for seconds when the cores are busy
    (441x441: 5.5 s with 2 threads on a loaded 2-core machine, 12 ms with 1 thread)."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def describe(video: torch.Tensor, axes: torch.Tensor, dtype: torch.dtype | None = None,
             max_elements: int = 2**28) -> torch.Tensor:
    """Descriptors of every patch of ``video`` (B, C, T, H, W): (B, dims, T', H', W') in
    ``dtype`` (default: the video's), computed a few frames at a time to bound memory."""
    batch, _, frames, height, width = video.shape
    if batch > 1:  # one video at a time, so a video's descriptors do not depend on its batch
        return torch.cat([describe(video[b:b + 1], axes, dtype, max_elements) for b in range(batch)])
    pt = axes.shape[2]
    out_frames = frames - pt + 1
    out = video.new_empty(batch, axes.shape[0], out_frames, height - axes.shape[3] + 1,
                          width - axes.shape[4] + 1, dtype=dtype or video.dtype)
    per_frame = batch * axes.shape[0] * height * width
    step = max(1, max_elements // per_frame)
    for start in range(0, out_frames, step):
        stop = min(out_frames, start + step)
        out[:, :, start:stop] = F.conv3d(video[:, :, start:stop + pt - 1], axes)
    return out
