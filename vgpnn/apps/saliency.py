"""Where a clip's subject is: per-pixel saliency from motion and contrast, and the band of
rows or columns a retarget keeps whole.

A viewer watches what moves and what stands out from its surroundings, so both count:
1. Motion: each frame's mean absolute change from its neighbours in time (colour channels
   averaged), blurred a little so a moving object counts in its middle too, not only at its
   edges (a flat object moving shows change only where its outline passes).
2. Contrast: centre-surround, the colour distance between the frame slightly blurred and the
   frame heavily blurred (what differs from its neighbourhood: an object on a plain wall, not
   the wall).
3. Each is divided by its high quantile over the whole clip (a few outlier pixels do not set
   the scale) and clipped to 1. In a clip that moves, saliency is motion, weighed up to twice
   where it also stands out (motion * (1 + contrast) / 2): averaging the two instead let a
   still, busy background outweigh a small moving subject, and the band below then cropped the
   subject away. A still clip (no motion worth the name) takes contrast alone.
4. The subject is what stands above the clip's typical saliency: saliency less its median,
   clipped at 0, so a uniformly busy background (foliage everywhere) weighs little against an
   object that stands out.

The band (``subject_band``): in each frame, the narrowest run of lines holding
``SUBJECT_SHARE`` of that frame's subject mass; the band spans them all, so a subject that
moves is kept whole wherever it goes in the clip (a share of the whole clip's mass instead cut
its first and last positions, the tails of its sweep). When that is wider than the target,
the target-sized run holding the most mass over the clip (a crop that follows the subject as
well as one fixed crop can, as AutoFlip-style reframing would).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..resize import resize_video

# Mean frame-to-frame change (0..1 scale) under which a clip counts as still (compression noise).
STILL_MOTION = 1e-3
# Motion and contrast are scaled by this quantile of their values over the clip.
SCALE_QUANTILE = 0.99
# Blur sizes as fractions of the frame's shorter side: a little (fills a moving object's middle
# from its edges; the centre of centre-surround) and a lot (the surround).
SMALL_BLUR = 0.03
LARGE_BLUR = 0.25
# The share of the subject's mass its band holds: all of it would let a few stray pixels at the
# far edge of the frame widen the band to the whole frame.
SUBJECT_SHARE = 0.9
# Quantile sampling cap: torch.quantile refuses very large inputs.
_QUANTILE_SAMPLES = 1 << 20
# Saliency is smooth at this scale, so it is worked out on frames no larger than this on their
# shorter side and resized back: a 132-frame clip at 144 px took 10 s at full size on a CPU.
WORK_SIDE = 72


def _blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (N, C, H, W) with standard deviation ``sigma`` pixels, mirrored borders."""
    radius = min(int(math.ceil(2.5 * sigma)), frames.shape[-1] - 1, frames.shape[-2] - 1)
    if sigma <= 0 or radius < 1:
        return frames
    offsets = torch.arange(-radius, radius + 1, dtype=frames.dtype, device=frames.device)
    kernel = torch.exp(-offsets.square() / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    channels = frames.shape[1]
    padded = F.pad(frames, (radius, radius, radius, radius), mode="reflect")
    across = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(across, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def _sampled(values: torch.Tensor) -> torch.Tensor:
    """``values`` flattened, or at most _QUANTILE_SAMPLES of them evenly spaced. The positions
    are integer arithmetic: a float32 spacing rounds past the last element beyond 2^24 values
    (a 75-frame 640x360 clip has 17 million)."""
    flat = values.reshape(-1)
    count = flat.numel()
    if count <= _QUANTILE_SAMPLES:
        return flat
    positions = torch.arange(_QUANTILE_SAMPLES, device=flat.device) * (count - 1) // (_QUANTILE_SAMPLES - 1)
    return flat[positions]


def _scaled(values: torch.Tensor) -> torch.Tensor:
    scale = float(torch.quantile(_sampled(values), SCALE_QUANTILE))
    return (values / scale).clamp(max=1) if scale > 0 else torch.zeros_like(values)


def saliency(source: torch.Tensor) -> torch.Tensor:
    """(T, H, W) saliency in [0, 1] of ``source`` (C, T, H, W) in [0, 1], as the module notes tell."""
    if source.dim() != 4:
        raise ValueError(f"expected a video (C, T, H, W), got shape {tuple(source.shape)}")
    full = tuple(source.shape[1:])
    scale = min(1.0, WORK_SIDE / min(full[1:]))
    small = resize_video(source, (full[0], max(1, round(full[1] * scale)), max(1, round(full[2] * scale))))
    return resize_video(_saliency(small)[None], full)[0].clamp(0, 1)


def _saliency(source: torch.Tensor) -> torch.Tensor:
    frames = source.transpose(0, 1)  # (T, C, H, W)
    short = min(frames.shape[-2:])
    centre = _blur(frames, SMALL_BLUR * short)
    contrast = (centre - _blur(frames, LARGE_BLUR * short)).square().sum(1).sqrt()  # (T, H, W)
    contrast = _scaled(contrast)
    if frames.shape[0] < 2:
        return contrast
    steps = (frames[1:] - frames[:-1]).abs().mean(1)  # (T-1, H, W): change from frame t to t+1
    if float(steps.mean()) < STILL_MOTION:
        return contrast
    # Each frame's change from its neighbours: the mean of the steps before and after it.
    padded = torch.cat([steps[:1], steps, steps[-1:]])
    motion = (padded[:-1] + padded[1:]) / 2  # (T, H, W)
    motion = _scaled(_blur(motion[:, None], SMALL_BLUR * short)[:, 0])
    return motion * (1 + contrast) / 2


def subject_mass(source: torch.Tensor) -> torch.Tensor:
    """(T, H, W): how much each pixel of ``source`` (C, T, H, W) belongs to the subject:
    saliency above its median over the clip (step 4 of the module notes)."""
    salient = saliency(source)
    return (salient - float(_sampled(salient).median())).clamp_min(0)


def line_profile(mass: torch.Tensor, axis: int, lines: int) -> torch.Tensor:
    """(T, lines): the subject mass ``mass`` (T, H, W) summed over the other axis, per frame and
    line of ``axis`` (1: rows, 2: columns), resampled to ``lines`` lines (the level's) by area."""
    profile = mass.sum(dim=3 - axis)  # (T, H) or (T, W)
    return F.adaptive_avg_pool1d(profile[:, None], lines)[:, 0] if lines != profile.shape[1] else profile


def subject_band(profile: torch.Tensor, size: int, share: float = SUBJECT_SHARE) -> range:
    """The lines to keep whole out of ``profile`` (T, lines): per frame and line, the subject's
    mass; for a target of ``size`` lines. The run spanning every frame's narrowest run that
    holds ``share`` of its mass when it fits in ``size``, otherwise the ``size``-line run holding
    the most mass over the clip (the module notes say why)."""
    # A few numbers per line and frame, scanned width by width in Python: on the CPU, wherever
    # the clip is (each scan step would otherwise wait for the GPU).
    profile = profile.detach().cpu()
    count = profile.shape[1]
    if not 1 <= size <= count:
        raise ValueError(f"a band of {size} lines out of {count}")
    totals = profile.sum(1)  # (T,)
    frames = totals > 1e-6 * max(float(totals.max()), 1e-30)  # frames where something stands out
    if not bool(frames.any()):  # nothing stands out: no band to keep
        return range(0)
    profile, totals = profile[frames].double(), totals[frames].double()
    cumulative = torch.cat([profile.new_zeros(len(profile), 1), profile.cumsum(1)], 1)  # [:, i]: lines < i
    first, last = count, 0
    undecided = torch.ones(len(profile), dtype=torch.bool)
    for width in range(1, count + 1):  # each frame's narrowest run holding ``share`` of its mass
        held = cumulative[:, width:] - cumulative[:, :-width]  # (frames, runs of ``width`` lines)
        best, start = held.max(1)
        done = undecided & (best >= share * totals)
        for frame_start in start[done].tolist():
            first, last = min(first, frame_start), max(last, frame_start + width)
        undecided &= ~done
        if not bool(undecided.any()):
            break
    if last - first <= size:
        return range(first, last)
    over_clip = cumulative.sum(0)
    held = over_clip[size:] - over_clip[:-size]
    start = int(held.argmax())
    return range(start, start + size)
