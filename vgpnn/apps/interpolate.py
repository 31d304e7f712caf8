"""Interpolation: more frames per second out of one clip, every input frame kept as it is.

Step by step:

1. **Timing.** Every output frame has a time, counted in input frames (a Fraction). A whole
   factor N puts N - 1 new frames evenly between each pair of input frames: (T - 1) N + 1 frames
   at N times the frame rate (:func:`whole_factor_times`). A rate that is not a whole multiple of
   the input's is either rounded up to the next whole factor (:func:`factor_for_rate`: every
   input frame is kept) or met exactly (:func:`resampled_times`: frames at k / rate seconds;
   only the input frames that fall on that grid are kept, the others are replaced by new
   frames at the grid's times). Whole times are the input frames, copied bit for bit.
2. **Scene cuts** (``scene_cuts.py``, measured with a quick flow over every pair first): a pair
   across a cut is not morphed: its new frames hold the nearer input frame (the first one up to
   half way, then the second).
3. **Flow**: OpenCV DIS both ways between the pair (``vgpnn.flow``), at the working size and,
   for small frames, also enlarged; the pair keeps the flows that explain more of its pixels
   (``tween.flows_between``).
4. **Warped estimate** (``tween.py``): the motion at the new frame's time by forward splatting
   and by the standard approximation, both neighbours sampled along each and blended by where
   each sees the point; the two weighted by how well their samples agree, and the detail shrunk
   where the samples disagree (unpredictable motion); with a map of the pixels it can trust.
5. **Patch repair** (optional): what warping breaks (the two frames disagree on the motion or
   the colour) is re-made of the clip's own patches by the VGPNN loop on the shared engine: per
   pair, the source is the pair's two input frames and the target its new frames, with the
   trusted pixels as fixed voxels; the free voxels start from the warped estimate (not from a
   smooth fill) and only the finest pyramid levels run (down to ``REPAIR_SCALE`` of the size;
   time does not shrink). Patches are one frame deep: the two input frames are N output frames
   apart, so a space-time patch of the input would move N times too fast. (Copying from the
   trusted voxels of the new frames instead lost every small moving object: all its patches
   touch the untrusted ring around it.) A window with too much to repair keeps its estimate.

Each pair is handled on its own, so memory does not grow with the clip's length (except the
output frames themselves) and time grows linearly with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import partial
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..clip_tensor import frames_to_tensor, tensor_to_frames
from ..config import SynthesisConfig
from ..device import resolve_device
from ..errors import ConfigError, InputError
from ..flow import DIS_PRESETS, dis_flow, to_gray
from ..plan import Source, SynthesisPlan, Target
from ..resize import resize_video
from ..synthesis import LevelRecord, ProgressCallback, synthesize
from .scene_cuts import find_cuts, pair_change
from .tween import flows_between, tween

# The flow used only to find scene cuts: a cut is a large change, which a fast flow finds as well.
CUT_FLOW = "fast"
# The repair runs the pyramid levels down to this fraction of the working size (0.85 per level:
# the 3 finest levels); coarser levels would re-decide a layout the warped estimate already has.
REPAIR_SCALE = 0.7
# Untrusted pixels grow by this many pixels before repair: a warp's errors spread past the
# pixels the checks catch (a ghost's soft edge).
REPAIR_MARGIN = 2
# A window is repaired only while at most this share of its new frames' pixels is untrusted:
# beyond that the warp failed broadly and patches would invent rather than repair.
MAX_REPAIR_SHARE = 0.5
# Rates within this relative distance of a whole multiple count as that multiple (59.94 asked
# of a 29.97 fps clip is 2x, although 2 * 30000/1001 is 59.9401).
RATE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class InterpolateOptions:
    device: str = "auto"  # where the warping and the repair run (the flow runs on the CPU)
    flow: str = "fine"  # DIS setting, one of vgpnn.flow.DIS_PRESETS
    repair: bool = True  # re-make untrusted pixels from the clip's own patches (step 5)
    detect_cuts: bool = True  # hold frames across scene cuts instead of morphing them
    seed: int = 0  # the repair's searches (PatchMatch and faiss draw random candidates)

    def __post_init__(self) -> None:
        if self.flow not in DIS_PRESETS:
            raise ConfigError(f"flow must be one of {', '.join(DIS_PRESETS)}, got {self.flow!r}")
        if self.seed < 0:
            raise ConfigError(f"the seed must be 0 or more, got {self.seed}")


@dataclass
class Interpolation:
    """An interpolated clip and how it was made."""

    frames: np.ndarray  # (T', H, W, 3) uint8
    times: tuple[Fraction, ...]  # each output frame's time in input frames; whole: that input frame, unchanged
    cuts: tuple[int, ...]  # pairs (i, i + 1) found to be scene cuts: held, not morphed
    repaired: float  # share of the new frames' pixels re-made by the patch repair
    levels: list[LevelRecord] = field(default_factory=list)  # every repair run's levels, for reports


def whole_factor_times(frame_count: int, factor: int) -> list[Fraction]:
    """Times of (frame_count - 1) * factor + 1 frames: each input frame and factor - 1 between each pair."""
    if factor < 1 or frame_count < 1:
        raise ConfigError(f"expected a factor and a frame count of at least 1, got {factor} and {frame_count}")
    return [Fraction(k, factor) for k in range((frame_count - 1) * factor + 1)]


def factor_for_rate(fps: Fraction, rate: float) -> int:
    """The smallest whole factor that gives at least ``rate`` frames per second from ``fps``."""
    ratio = float(rate) / float(fps)
    if ratio <= 1 + RATE_TOLERANCE:
        raise ConfigError(f"{float(rate):g} fps is not above the input's {float(fps):g} fps; expected a higher rate")
    nearest = round(ratio)
    if abs(ratio - nearest) <= RATE_TOLERANCE * ratio:
        return nearest
    return math.ceil(ratio)


def resampled_times(frame_count: int, fps: Fraction, rate: Fraction) -> list[Fraction]:
    """Times of the frames at exactly ``rate`` frames per second over the input's span (its first
    to its last frame): k * fps / rate for k = 0, 1, ... while within it."""
    if rate <= fps:
        raise ConfigError(f"{float(rate):g} fps is not above the input's {float(fps):g} fps; expected a higher rate")
    step = Fraction(fps) / Fraction(rate)
    return [k * step for k in range(int((frame_count - 1) / step) + 1)]


def interpolate(frames: np.ndarray, factor: int | None = 2, *, times: Sequence[Fraction] | None = None,
                cuts: Sequence[int] | None = None, config: SynthesisConfig = SynthesisConfig(noise_sigma=0),
                options: InterpolateOptions = InterpolateOptions(),
                progress: ProgressCallback | None = None) -> Interpolation:
    """``frames`` (T, H, W, 3) uint8 with ``factor - 1`` new frames between each pair, or frames at
    the given ``times`` (in input frames, non-decreasing, within 0..T-1; e.g. from
    :func:`resampled_times`). ``cuts``: the pairs (i, i + 1) not to morph; None: found by
    :func:`detect_scene_cuts` (unless ``options.detect_cuts`` is False). ``config``: the repair's
    patch size, iterations and backend. ``progress(pairs done, pairs)``."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected frames (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    count = len(frames)
    if count < 2:
        raise InputError("a single image has no motion to interpolate; expected a video of at least 2 frames")
    if times is None:
        if factor is None or factor < 2:
            raise ConfigError(f"the factor must be a whole number of at least 2, got {factor}")
        times = whole_factor_times(count, factor)
    times = [Fraction(t) for t in times]
    if not times or any(b < a for a, b in zip(times, times[1:])) or times[0] < 0 or times[-1] > count - 1:
        raise ConfigError(f"frame times must be non-decreasing and within 0..{count - 1}")
    device = resolve_device(options.device)

    if cuts is None:
        cuts = detect_scene_cuts(frames, options.device) if options.detect_cuts else []
    cuts = sorted({int(cut) for cut in cuts})
    # New frames per pair: pair i holds the times strictly between i and i + 1.
    wanted: dict[int, list[Fraction]] = {}
    for time in times:
        if time.denominator != 1:
            wanted.setdefault(math.floor(time), []).append(time)
    made: dict[Fraction, np.ndarray] = {}
    repaired = new_pixels = 0
    records: list[LevelRecord] = []
    pairs = sorted(wanted)
    for done, pair in enumerate(pairs, start=1):
        steps = [float(time - pair) for time in wanted[pair]]
        if pair in cuts:  # hold the nearer frame
            for time, step in zip(wanted[pair], steps):
                made[time] = frames[pair + (step >= 0.5)]
        else:
            window, repaired_here, levels = _pair_frames(frames[pair:pair + 2], steps, config, options, device)
            repaired += repaired_here
            records.extend(levels)
            for time, frame in zip(wanted[pair], window):
                made[time] = frame
        new_pixels += len(steps) * frames.shape[1] * frames.shape[2]
        if progress is not None:
            progress(done, len(pairs))
    output = np.stack([frames[time.numerator] if time.denominator == 1 else made[time] for time in times])
    share = repaired / new_pixels if new_pixels else 0.0
    return Interpolation(output, tuple(times), tuple(cuts), share, records)


def detect_scene_cuts(frames: np.ndarray, device: str = "auto") -> list[int]:
    """Indices i of the pairs (i, i + 1) of ``frames`` (T, H, W, 3) uint8 that are scene cuts."""
    device = resolve_device(device)
    changes = []
    for i in range(len(frames) - 1):
        pair = frames_to_tensor(frames[i:i + 2], device)  # (3, 2, H, W)
        gray = to_gray(pair)
        changes.append(pair_change(pair[:, 0], pair[:, 1], dis_flow(gray[0], gray[1], CUT_FLOW)))
    return find_cuts(changes)


def _pair_frames(pair_frames: np.ndarray, steps: list[float], config: SynthesisConfig,
                 options: InterpolateOptions, device: torch.device):
    """The new frames (uint8 each) at ``steps`` in (0, 1) between two frames (2, H, W, 3), the
    number of pixels the repair re-made and its level records."""
    pair = frames_to_tensor(pair_frames, device)  # (3, 2, H, W)
    flows = flows_between(pair[:, 0], pair[:, 1], options.flow)
    estimates, trusted = zip(*(tween(flows, step) for step in steps))
    window = torch.stack([pair[:, 0], *estimates, pair[:, 1]], dim=1)  # (3, N + 2, H, W)
    repaired, levels = 0, []
    if options.repair:
        window, repaired, levels = _repair(window, torch.stack(trusted), config, options.seed)
    return list(tensor_to_frames(window[:, 1:-1])), repaired, levels


def _repair(window: torch.Tensor, trusted: torch.Tensor, config: SynthesisConfig, seed: int):
    """``window`` (3, N + 2, H, W) with the untrusted pixels of its new frames (``trusted``
    (N, H, W) False) re-made by the patch loop; also how many pixels, and the level records."""
    untrusted = F.max_pool2d((~trusted)[:, None].float(), 2 * REPAIR_MARGIN + 1, 1, REPAIR_MARGIN)[:, 0] > 0
    count = int(untrusted.sum())
    frames, height, width = untrusted.shape
    patch = (1, *config.patch_size[1:])  # one frame deep: the two input frames are a step of N output frames apart
    if count == 0 or count > MAX_REPAIR_SHARE * untrusted.numel() or min(height, width) < max(patch[1:]):
        return window, 0, []
    estimates = window[:, 1:-1]
    repair_config = replace(config, noise_sigma=0.0, patch_size=patch, large_level_patch_size=patch,
                            coarsest_frames=max(2, frames),
                            coarsest_short_side=max(config.coarsest_short_side,
                                                    math.ceil(REPAIR_SCALE * min(height, width))))
    plan = SynthesisPlan((Source(window[:, ::window.shape[1] - 1]),),  # the pair's two input frames
                         Target((frames, height, width), fixed=estimates, fixed_mask=~untrusted, free_start="guess",
                                start=partial(_estimate_at, estimates)),
                         (seed,), repair_config)
    result = synthesize(plan)
    repaired = torch.cat([window[:, :1], result.videos[0], window[:, -1:]], dim=1)
    return repaired, count, result.levels


def _estimate_at(estimates: torch.Tensor, coarsest_source, source, shape, patch_size) -> torch.Tensor:
    """The repair's start: the warped estimates (3, N, H, W) at the coarsest level's ``shape``."""
    return resize_video(estimates, shape)
