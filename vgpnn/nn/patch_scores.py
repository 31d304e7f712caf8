"""How PatchMatch scores its proposals: through short descriptors, or exactly from the videos.

Each scorer answers one question for a chunk of query positions: given M proposed key
positions per query, which is nearest, and is it nearer than the current match? It updates
the field and its distances in place, keeping the first of equally near proposals and the
current match unless a proposal is strictly nearer.

- :class:`DescriptorScores` compares ``dims``-long principal-axis descriptors (see
  :mod:`.descriptors`): cheap gathers, a few percent off the true distance.
- :class:`PatchScores` compares whole patches, the true distance, gathering each proposal's
  voxels straight from the key video. On CUDA a Triton kernel does it without materialising
  any patch (:func:`vgpnn.kernels.patchmatch_improve`); the torch version here is its oracle
  and runs anywhere, at the cost of M gathered patches per position.
"""

from __future__ import annotations

import torch

from .. import kernels
from ..patches import PatchSize, grid_shape
from .descriptors import describe, principal_axes


class DescriptorScores:
    def __init__(self, queries: torch.Tensor, axes: torch.Tensor, key_descriptors: torch.Tensor,
                 valid: torch.Tensor | None):
        # Half precision halves the memory traffic of the gathers on a GPU; sums stay float32.
        dtype = key_descriptors.dtype
        self.queries = describe(queries, axes, dtype).flatten(2).transpose(1, 2).contiguous()  # (B, Nq, d)
        self.keys = key_descriptors  # (Nk, d)
        self.valid = valid

    @staticmethod
    def key_descriptors(keys: torch.Tensor, patch_size: PatchSize, dims: int, generator) -> tuple:
        """(axes, descriptors (Nk, d)) of a key video, worth caching across EM iterations."""
        dtype = torch.float16 if keys.is_cuda else torch.float32
        axes = principal_axes(keys, patch_size, dims, generator)
        return axes, describe(keys[None], axes, dtype)[0].flatten(1).T.contiguous()

    def improve(self, proposals: torch.Tensor, start: int, field: torch.Tensor, best: torch.Tensor) -> None:
        distances = _masked(self.valid, proposals, self._distance(proposals, start))
        _keep_nearest(proposals, distances, start, field, best)

    def _distance(self, candidate: torch.Tensor, start: int) -> torch.Tensor:
        stop = start + candidate.shape[-1]
        return (self.queries[:, start:stop] - self.keys[candidate]).float().square().sum(-1)


class PatchScores:
    """True patch distances; ``use_kernel`` picks the Triton kernel (CUDA) or the torch oracle."""

    def __init__(self, queries: torch.Tensor, keys: torch.Tensor, patch_size: PatchSize,
                 valid: torch.Tensor | None, use_kernel: bool):
        self.queries = queries.contiguous()  # (B, C, Tq, Hq, Wq)
        self.keys = keys.contiguous()  # (C, Tk, Hk, Wk)
        self.patch_size = patch_size
        self.valid = valid
        self.use_kernel = use_kernel

    def improve(self, proposals: torch.Tensor, start: int, field: torch.Tensor, best: torch.Tensor) -> None:
        if self.use_kernel:
            kernels.patchmatch_improve(self.queries, self.keys, self.patch_size, proposals, start,
                                       field, best, self.valid)
            return
        distances = _masked(self.valid, proposals, self._distance(proposals, start))
        _keep_nearest(proposals, distances, start, field, best)

    def _distance(self, candidate: torch.Tensor, start: int) -> torch.Tensor:
        """(M, B, n) squared distances between query patches [start, start + n) and the
        proposed key patches, from voxel offsets into the two videos."""
        stop = start + candidate.shape[-1]
        query_offsets = patch_offsets(self.queries[0], self.patch_size)  # (D,)
        key_offsets = patch_offsets(self.keys, self.patch_size)
        query_grid = grid_shape(self.queries.shape[1:], self.patch_size)
        key_grid = grid_shape(self.keys.shape, self.patch_size)
        positions = torch.arange(start, stop, device=candidate.device)
        query_first = first_voxel(positions, query_grid, self.queries.shape[2:])  # (n,)
        query = self.queries.flatten(1)[:, query_first[:, None] + query_offsets]  # (B, n, D)
        key = self.keys.flatten()[first_voxel(candidate, key_grid, self.keys.shape[1:])[..., None] + key_offsets]
        return (query - key).square().sum(-1)  # (M, B, n)


def patch_offsets(video: torch.Tensor, patch_size: PatchSize) -> torch.Tensor:
    """Flat offsets, from a patch's first voxel, of its C * pt * ph * pw values in ``video``
    (C, T, H, W), channel-major as :func:`vgpnn.patches.unfold` orders them."""
    channels, frames, height, width = video.shape
    device = video.device
    c, t, y, x = torch.meshgrid(torch.arange(channels, device=device), *(torch.arange(n, device=device) for n in patch_size),
                                indexing="ij")
    return (((c * frames + t) * height + y) * width + x).flatten()


def first_voxel(position: torch.Tensor, grid: tuple[int, int, int], video_shape) -> torch.Tensor:
    """Flat index, in one channel of a (T, H, W) video, of the first voxel of each patch
    position (flat index into ``grid``)."""
    _, height, width = video_shape
    t, rest = position // (grid[1] * grid[2]), position % (grid[1] * grid[2])
    y, x = rest // grid[2], rest % grid[2]
    return (t * height + y) * width + x


def _masked(valid: torch.Tensor | None, candidate: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    return distance if valid is None else distance.masked_fill(~valid[candidate], float("inf"))


def _keep_nearest(proposals: torch.Tensor, distances: torch.Tensor, start: int, field: torch.Tensor,
                  best: torch.Tensor) -> None:
    stop = start + proposals.shape[-1]
    nearest = distances.argmin(0, keepdim=True)  # the first of equals
    candidate = proposals.gather(0, nearest)[0]
    distance = distances.gather(0, nearest)[0]
    better = distance < best[:, start:stop]
    field[:, start:stop] = torch.where(better, candidate, field[:, start:stop])
    best[:, start:stop] = torch.where(better, distance, best[:, start:stop])
