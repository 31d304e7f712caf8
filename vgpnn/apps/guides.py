"""Guide channels for analogies: what the structure and the appearance video share, per voxel.

Three channels, each in [0, 1] and computed on each video separately (quantize.py):
- motion: optical-flow speed (flow.py) in k bins by k-means, as (bin / highest bin) ** 0.25
  (the VGPNN paper's analogy guide: any motion is far from none, fast is a little further);
- tone: blurred luminance in k bins, as bin / highest bin, so the darkest regions of one video
  pair with the darkest of the other. This is what lets a sketch or label video, whose flat
  colours mean nothing to the appearance video, steer where each kind of content goes;
- texture: local gradient energy (averaged over about a patch), as its rank among the video's
  voxels (equalized_ranks). Ranked, not binned: the output then holds as much of each level of
  APPEARANCE's detail as APPEARANCE itself does, so a mostly smooth STRUCTURE still gets
  APPEARANCE's texture, in its own most detailed places first. Without it the finer levels,
  whose queries are upsampled and so blurred, settle on APPEARANCE's smoothest patches (sky,
  bark) and the fill comes out flat.
A still image has no motion channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..flow import flow_magnitude, to_gray
from .quantize import equalized_ranks, ranked_bins
from ..resize import resize_video

MOTION_EXPONENT = 0.25
# Flow speeds above this quantile are clipped before binning: a few wild vectors at occlusions
# would otherwise claim a bin of their own and leave the real motion in one bin.
SPEED_QUANTILE = 0.99
# Tone is binned after shrinking each frame by this factor and back: regions, not texture grain.
TONE_BLUR = 4
_QUANTILE_SAMPLE = 1_000_000
# Gradient energy is averaged over a square of about this share of the frame height: about a
# patch at the working sizes analogies run at, so it measures texture, not single edges.
TEXTURE_SPAN = 1 / 24


def guide_channels(video: torch.Tensor, bins: int, motion: bool, seed: int = 0) -> torch.Tensor:
    """(G, T, H, W) guide channels of ``video`` (3, T, H, W): [motion, tone, texture] or, when
    ``motion`` is False, [tone, texture]."""
    if video.dim() != 4 or video.shape[0] != 3:
        raise ValueError(f"expected a video (3, T, H, W), got {tuple(video.shape)}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    frames, height, width = video.shape[1:]
    gray = to_gray(video)[None]  # (1, T, H, W)
    small = (frames, max(1, height // TONE_BLUR), max(1, width // TONE_BLUR))
    blurred = resize_video(resize_video(gray, small), (frames, height, width))[0]
    channels = [ranked_bins(blurred.reshape(-1, 1), bins, seed).reshape(frames, height, width),
                texture_ranks(gray[0])]
    if motion:
        speed = flow_magnitude(video)
        flat = speed.reshape(-1)
        sample = flat[torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(seed))[:_QUANTILE_SAMPLE]
                      .to(flat.device)]
        clipped = speed.clamp_max(torch.quantile(sample, SPEED_QUANTILE))
        ranks = ranked_bins(clipped.reshape(-1, 1), bins, seed, exponent=MOTION_EXPONENT)
        channels.insert(0, ranks.reshape(frames, height, width))
    return torch.stack(channels)


def texture_ranks(gray: torch.Tensor) -> torch.Tensor:
    """(T, H, W) rank in [0, 1] of each voxel's local gradient energy in ``gray`` (T, H, W)."""
    padded = F.pad(gray[:, None], (1, 1, 1, 1), mode="replicate")
    along_x = padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]
    along_y = padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]
    energy = (along_x.square() + along_y.square()).sqrt()
    radius = max(1, round(gray.shape[1] * TEXTURE_SPAN))
    energy = F.avg_pool2d(energy, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
    return equalized_ranks(energy[:, 0])
