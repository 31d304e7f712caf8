"""The best-patch vote: each voxel takes its value from the one covering patch that fits best.

The median vote (patches.py) is a consensus. Where the chosen patches agree, as in a
re-composition of the source, it is sharp; where they disagree, as when a hole in moving foliage
is filled from leaves that never repeat exactly, it is a blur, and the blur then matches the
smoothest patches of the source at the next iteration, so the hole settles into a soft, nearly
still wash. Letting each voxel follow a single covering patch (as Newson et al., "Video
inpainting of complex scenes", 2014, do for their final fill) builds it out of whole source
patches instead, which keeps their texture and their motion.

1. ``matched_distances``: for every position, the sum of squared differences between a reference
   video's patch there and the value patch the field chose (inpainting measures the chosen
   patches against their own consensus: see ``synthesis._fill_hole_once``).
2. ``best_patch_vote``: for every voxel, among the patches that cover it, the one with the lowest
   distance; the voxel is that patch's value at the voxel's offset within it. Ties go to the
   patch at the lowest grid position (time, then row, then column).
Both work on any device and gather from the videos directly, so no patch is materialised; on a
CPU the distances come from a numba kernel (:func:`vgpnn.kernels.matched_distances`) when numba
is installed, and the torch code here is its oracle.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import kernels
from .patches import PatchSize, field_to_voxel_index, grid_shape


def matched_distances(queries: torch.Tensor, values: torch.Tensor, field: torch.Tensor,
                      patch_size: PatchSize) -> torch.Tensor:
    """(B, T', H', W') sum of squared differences between each patch of ``queries`` (B, C, T, H, W)
    and the patch of ``values`` (C, Tv, Hv, Wv) that ``field`` (B, T', H', W') chose for it."""
    batch, channels = queries.shape[:2]
    if tuple(field.shape) != (batch, *grid_shape(queries.shape, patch_size)):
        raise ValueError(f"field {tuple(field.shape)} does not fit queries {tuple(queries.shape)}")
    if values.shape[0] != channels:
        raise ValueError(f"queries have {channels} channels, values {values.shape[0]}")
    pt, ph, pw = patch_size
    grid_t, grid_h, grid_w = field.shape[1:]
    _, value_height, value_width = values.shape[1:]
    base = field_to_voxel_index(field, tuple(values.shape[1:]), patch_size)  # (B, T', H', W')
    compiled = kernels.matched_distances(queries, values, base, patch_size)
    if compiled is not None:
        return compiled
    flat_values = values.reshape(channels, -1)
    total = queries.new_zeros(field.shape)
    for dt in range(pt):
        for dy in range(ph):
            for dx in range(pw):
                chosen = flat_values[:, base + (dt * value_height + dy) * value_width + dx]  # (C, B, T', H', W')
                here = queries[:, :, dt:dt + grid_t, dy:dy + grid_h, dx:dx + grid_w].transpose(0, 1)
                total += (here - chosen).square().sum(0)
    return total


def best_patch_vote(values: torch.Tensor, field: torch.Tensor, distances: torch.Tensor,
                    output_shape: tuple[int, int, int], patch_size: PatchSize) -> torch.Tensor:
    """(B, C, T, H, W): each voxel from the patch of ``values`` (C, Tv, Hv, Wv) chosen by ``field``
    (B, T', H', W') at the covering position with the lowest ``distances`` (B, T', H', W')."""
    if tuple(field.shape[1:]) != grid_shape(output_shape, patch_size):
        raise ValueError(f"field {tuple(field.shape)} does not fit output {output_shape}")
    if distances.shape != field.shape:
        raise ValueError(f"distances {tuple(distances.shape)} must have the field's shape {tuple(field.shape)}")
    batch = field.shape[0]
    channels = values.shape[0]
    pt, ph, pw = patch_size
    frames, height, width = output_shape
    # The positions covering voxel v are v - o for in-patch offsets o; padded by p - 1 on each
    # side, they are exactly the window of size p that starts at v, so one max-pool finds the best.
    padded = F.pad(-distances[:, None].float(), (pw - 1, pw - 1, ph - 1, ph - 1, pt - 1, pt - 1),
                   value=float("-inf"))
    _, picked = F.max_pool3d(padded, patch_size, stride=1, return_indices=True)  # (B, 1, T, H, W)
    picked = picked[:, 0]
    padded_h, padded_w = padded.shape[3], padded.shape[4]
    position_t = picked // (padded_h * padded_w) - (pt - 1)
    position_y = picked // padded_w % padded_h - (ph - 1)
    position_x = picked % padded_w - (pw - 1)
    grid_h, grid_w = field.shape[2], field.shape[3]
    position = (position_t * grid_h + position_y) * grid_w + position_x  # flat grid index, (B, T, H, W)
    base = field_to_voxel_index(field, tuple(values.shape[1:]), patch_size).reshape(batch, -1)
    start = base.gather(1, position.reshape(batch, -1)).reshape(position.shape)
    voxels = torch.meshgrid(*(torch.arange(n, device=field.device) for n in output_shape), indexing="ij")
    _, value_height, value_width = values.shape[1:]
    offset = ((voxels[0] - position_t) * value_height + voxels[1] - position_y) * value_width + voxels[2] - position_x
    source = start + offset  # (B, T, H, W) flat voxel index into values
    chosen = values.reshape(channels, -1)[:, source]  # (C, B, T, H, W)
    return chosen.transpose(0, 1).reshape(batch, channels, frames, height, width)
