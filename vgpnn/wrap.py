"""Time that wraps around, for seamless loops, so patches that straddle the end and the start exist.

A looping target of T frames has T patch positions in time (not T - pt + 1): the patch at
position t covers frames t, t + 1, ... modulo T. Searching such patches, and voting each frame
from every patch that covers it modulo T, makes the last frame flow into the first exactly as
any frame flows into the next.

Both steps reuse the ordinary search and vote on videos unrolled in time:
- search: the queries are the loop followed by its first pt - 1 frames again;
- vote: the field is extended periodically by its last pt - 1 positions in front, which gives
  a video of T + 2 (pt - 1) frames whose middle T frames each received exactly their wrapped
  set of patches.
"""

from __future__ import annotations

import torch

from .patches import PatchSize, vote


def wrap_index(frames: int, length: int, start: int = 0, device=None) -> torch.Tensor:
    """Frame indices start, start + 1, ... (``length`` of them) modulo ``frames``."""
    return (torch.arange(length, device=device) + start).remainder(frames)


def unroll_for_search(videos: torch.Tensor, patch_size: PatchSize) -> torch.Tensor:
    """(B, C, T, H, W) loops -> (B, C, T + pt - 1, H, W): the grid then has T positions in time."""
    frames = videos.shape[-3]
    return videos.index_select(-3, wrap_index(frames, frames + patch_size[0] - 1, device=videos.device))


def wrapped_grid(shape: tuple[int, int, int], patch_size: PatchSize) -> tuple[int, int, int]:
    """Patch grid of a looping video (T, H, W): T positions in time."""
    t, h, w = shape
    return (t, h - patch_size[1] + 1, w - patch_size[2] + 1)


def vote_wrapped(values: torch.Tensor, field: torch.Tensor, output_shape: tuple[int, int, int],
              patch_size: PatchSize, reduce: str = "median") -> torch.Tensor:
    """Like :func:`vgpnn.patches.vote` for a looping output; ``field`` has the loop grid."""
    frames, height, width = output_shape
    pad = patch_size[0] - 1
    if pad == 0:
        return vote(values, field, output_shape, patch_size, reduce)
    extended = field.index_select(1, wrap_index(frames, frames + pad, start=-pad, device=field.device))
    unrolled = vote(values, extended, (frames + 2 * pad, height, width), patch_size, reduce)
    return unrolled[:, :, pad:pad + frames]
