"""Extension: the clip, then more of it; or, backward, new frames that lead into it.

The input's frames are kept as they are (at the working size) and the new frames are made of
the clip's own space-time patches, moving at the clip's own pace:

1. The output is synthesised in windows, one engine call each (a :class:`SynthesisPlan`): the
   last ``context`` frames known so far are the window's fixed voxels and the rest of it,
   about a clip's length, is new. Each call costs about what one variation of the clip costs,
   so time grows linearly with the number of new frames and memory not at all (beyond the
   output array itself).
2. Why only ``context`` known frames: extension never shrinks time in the pyramid (every level
   has all the frames; a clip retimed on a 3-frame coarsest level slowed down around its
   jumps, see apps/retarget.py), so no patch reaches further back into the known frames than
   its own length less one. Those are the frames a new frame's patches must agree with: the
   search covers them, and the junction has no step.
3. The coarsest level's new frames start from source frames along a timeline (timeline.py,
   ``plan_continuation``), planned once for all the new frames: it lands on the frame whose
   predecessor looks most like the input's last frame, then plays runs of the source joined
   where they look most alike; each window starts from its part of it. Left to the
   engine's default start, a fill grown from the known frames, the new frames start as a still
   picture of the last known frame and never move. Each jump of the timeline, the one at the
   junction included, is spread over a few frames by a wipe (``_timeline_guess`` says why).
4. Where the first new frame still steps further from the last known one than the clip moves
   in a frame (a short clip may have no frame like its last), the jump is spread over the first
   new frames by a motion-compensated morph (``ease_junction``).
5. Noise (variations) goes on the new frames only; each window draws its own (window 0 uses the
   output's seed, later windows a number made from it and the window's index).
6. Backward: the clip is reversed, extended forward and the result reversed again. The new
   frames are then made of the clip's patches played in reverse, reversed back: its motion
   runs forward in the result, and the last new frame leads into the clip's first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch

from ..clip_tensor import frames_to_tensor, tensor_to_frames
from ..config import SynthesisConfig
from ..device import resolve_device
from ..errors import ConfigError, InputError
from ..plan import Source, SynthesisPlan, Target
from ..resize import resize_video
from ..schedule import check_shapes, geometry_for
from ..synthesis import LevelRecord, ProgressCallback
from .timeline import plan_continuation
from .tween import flows_between, tween
from .variations import VariationCallback, make_variations, seeds_from

RAMP = 6  # frames over which the start guess wipes from before a jump to after it (see _timeline_guess)
MIN_FRAMES = 3  # a clip shorter than a patch's 3 frames has too little motion to go on with
MAX_EASE = 12  # new frames over which a jump where the input ends may be spread (see ease_junction)
JUMP = 1.5  # a step of more than this many typical steps (the clip's median frame-to-frame change) is a jump


@dataclass(frozen=True)
class ExtendOptions:
    backward: bool = False  # the new frames go before the clip, leading into its first frame
    variations: int = 1  # how many outputs (they differ only when config.noise_sigma > 0)
    seed: int = 0  # output i uses seed + i
    device: str = "auto"
    # Frames per engine call, known context included; None: the clip's length (at least twice the
    # context). Memory and the cost of each call follow it; the output does not grow it.
    window: int | None = None

    def __post_init__(self) -> None:
        if self.variations < 1 or self.seed < 0:
            raise ConfigError(f"variations must be at least 1 and the seed 0 or more, got {self.variations}, "
                              f"{self.seed}")
        if self.window is not None and self.window < 2:
            raise ConfigError(f"a window must hold at least 2 frames, got {self.window}")


@dataclass(frozen=True)
class WindowPlan:
    """How an extension is cut into engine calls."""

    context: int  # known frames fixed at the start of every window
    new_frames: tuple[int, ...]  # new frames of each window, in order

    @property
    def windows(self) -> int:
        return len(self.new_frames)


def window_plan(source_frames: int, length: int, config: SynthesisConfig, window: int | None = None) -> WindowPlan:
    """The windows of an extension of a ``source_frames``-frame clip to ``length`` frames in all."""
    context = max(1, min(config.patch_size[0], source_frames) - 1)
    size = max(window or source_frames, 2 * context)
    per_window = max(1, size - context)
    new = length - source_frames
    count = math.ceil(new / per_window)
    # Equal shares (the first windows one frame more), so no window is a sliver.
    return WindowPlan(context, tuple(new // count + (i < new % count) for i in range(count)))


def check_extension(frame_count: int, length: int) -> None:
    """Refuse an extension that cannot be made, with the reason and what is expected."""
    if frame_count < MIN_FRAMES:
        what = "a still image" if frame_count == 1 else f"{frame_count} frames"
        raise InputError(f"cannot extend {what}: there is no motion to go on with; expected a video of "
                         f"at least {MIN_FRAMES} frames")
    if length <= frame_count:
        raise ConfigError(f"an extension to {length} frames in all is not longer than the input's "
                          f"{frame_count} frames; expected more than {frame_count}")


def extend(frames: np.ndarray, length: int, config: SynthesisConfig = SynthesisConfig(noise_sigma=0),
           options: ExtendOptions = ExtendOptions(), on_variation: VariationCallback | None = None,
           progress: ProgressCallback | None = None) -> list[np.ndarray]:
    """``frames`` (T, H, W, 3) uint8 continued to ``length`` frames in all: one (length, H, W, 3)
    uint8 clip per seed whose first T frames (last T with ``options.backward``) are ``frames``."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected frames (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    count = frames.shape[0]
    check_extension(count, length)
    # Every level keeps all the frames (module notes, 2.).
    config = replace(config, coarsest_frames=max(config.coarsest_frames, count))
    ordered = frames[::-1] if options.backward else frames
    source = frames_to_tensor(ordered, resolve_device(options.device))
    windows = window_plan(count, length, config, options.window)
    patch_size = check_shapes(tuple(source.shape[1:]), (windows.context + min(windows.new_frames),
                                                        *source.shape[2:]), config)
    geometry = geometry_for(tuple(source.shape[1:]), config)
    coarsest_shape = geometry.level_shape(tuple(source.shape[1:]), geometry.levels - 1, patch_size)
    coarsest_source = resize_video(source, coarsest_shape)

    outputs = []
    for index, seed in enumerate(seeds_from(options.seed, options.variations)):
        clip, levels = _extend_one(ordered, source, coarsest_source, windows, length, config, seed, progress)
        if options.backward:
            clip = np.ascontiguousarray(clip[::-1])
        outputs.append(clip)
        if on_variation is not None:
            on_variation(index, clip, levels)
    return outputs


def continuation_target(known: torch.Tensor, new: int, start, after: torch.Tensor | None = None) -> Target:
    """A window's target: the ``known`` frames (C, k, H, W) fixed at its start and ``new`` frames
    after them, begun from ``start``'s guess (the engine's default, a fill grown from the known
    frames, would start the new frames as a still picture of the last one). ``after`` (C, a, H, W):
    frames fixed after the new ones too, which the new frames must lead into (a loop's last
    window leads back into its first frames)."""
    after = known[:, :0] if after is None else after
    shape = (known.shape[1] + new + after.shape[1], *known.shape[2:])
    gap = torch.zeros((known.shape[0], new, *shape[1:]), device=known.device)
    fixed = torch.cat([known, gap, after], dim=1)
    fixed_mask = torch.zeros(shape, dtype=torch.bool, device=known.device)
    fixed_mask[:known.shape[1]] = True
    fixed_mask[known.shape[1] + new:] = True
    return Target(shape, fixed=fixed, fixed_mask=fixed_mask, free_start="guess", fill_vote="consensus", start=start)


def window_seed(seed: int, window: int) -> int:
    """Window 0 draws the output's own noise; later windows draw their own, from the seed and
    their index (the same noise in every window would repeat its pattern along the clip)."""
    return seed if window == 0 else (seed * 1_000_003 + window) % 2**63


def _extend_one(ordered: np.ndarray, source: torch.Tensor, coarsest_source: torch.Tensor, windows: WindowPlan,
                length: int, config: SynthesisConfig, seed: int,
                progress: ProgressCallback | None) -> tuple[np.ndarray, list[LevelRecord]]:
    """One output, window by window: (length, H, W, 3) uint8 in ``ordered``'s time order."""
    count, context = ordered.shape[0], windows.context
    result = np.empty((length, *ordered.shape[1:]), dtype=np.uint8)
    result[:count] = ordered  # the known frames are copied, never re-synthesised: exact
    records: list[LevelRecord] = []
    # One timeline for all the new frames, planned before the first window: planned window by
    # window, each window's run was chosen for that window alone, ran into the clip's end and
    # forced a jump at every window's start (module notes, 3.).
    last = resize_video(frames_to_tensor(ordered[-1:], source.device), (1, *coarsest_source.shape[2:]))[:, 0]
    planned, matched = plan_continuation(coarsest_source, last, length - count)
    timeline = [matched] * context + planned  # entry i: output frame count - context + i
    typical = typical_step(ordered)
    done = count
    for number, new in enumerate(windows.new_frames):
        # The context as written (uint8), so each window agrees with the frames it joins.
        known = frames_to_tensor(result[done - context:done], source.device)
        start = partial(_window_guess, timeline, context, done - count, context + new)
        target = continuation_target(known, new, start)
        clip, levels = run_window(source, target, config, seed, number, windows.windows, progress)
        result[done:done + new] = clip[context:]
        if number == 0:  # before the next window takes its context from these frames
            result[done:done + new] = ease_junction(result[:done], result[done:done + new], typical)
        records.extend(levels)
        done += new
    return result, records


def typical_step(frames: np.ndarray) -> float:
    """The median over a clip's (T, H, W, 3) consecutive frames of their mean absolute
    difference, on the 0..255 scale (frame by frame: a long clip's difference as one array
    would take several times the clip's memory)."""
    steps = [np.abs(frames[i + 1].astype(np.int16) - frames[i]).mean() for i in range(len(frames) - 1)]
    return float(np.median(steps)) if steps else 0.0


def ease_junction(known: np.ndarray, new: np.ndarray, typical: float) -> np.ndarray:
    """``new`` (n, H, W, 3) uint8, the frames that follow ``known`` (at least 1, same size), with
    a jump where they meet spread over its first frames; unchanged where the first new frame
    steps at most JUMP ``typical`` steps from the last known one.

    The timeline lands where the source's frames look most like the last known frame, but a
    short clip may have no frame close to its last one, and nothing follows its end: the first
    new frame then starts a few typical steps away (30 frames at 144 px: 2.2 on foliage, 3.2 on
    a hand whose last frame is unlike the others), which shows as a cut. So the first e - 1 new
    frames are replaced by in-between frames from the last known frame to new frame e (the
    motion-compensated tween of ``vgpnn interpolate``): a morph, as video textures hide their
    jumps. e is the fewest frames, up to MAX_EASE, over which the way from the last known frame
    to new frame e is at most one typical step a frame (a morph's own steps come out larger
    than that share: mean absolute differences do not add up along a motion). A dissolve (a
    cross-fade from the known frames' motion carried on) spread the steps as well but showed a
    moving object twice.
    """
    last = known[-1].astype(np.int16)
    way = [float(np.abs(frame - last).mean()) for frame in new[:MAX_EASE]]  # from the last known frame
    if not way or way[0] <= JUMP * typical:
        return new
    frames = next((e for e in range(2, len(way) + 1) if way[e - 1] / e <= typical), len(way))
    if frames < 2:  # a single new frame: nothing to put in between
        return new
    pair_frames = frames_to_tensor(np.stack([known[-1], new[frames - 1]]))  # on the CPU, where OpenCV's flow is
    pair = flows_between(pair_frames[:, 0], pair_frames[:, 1])
    eased = new.copy()
    eased[:frames - 1] = tensor_to_frames(torch.stack([tween(pair, k / frames)[0] for k in range(1, frames)], 1))
    return eased


def _timeline_guess(timeline: list[int], context: int, coarsest_source: torch.Tensor, source: torch.Tensor,
                    target_shape, patch_size) -> torch.Tensor:
    """The coarsest level's start (C, T', h, w): the coarsest source's frames along ``timeline``
    (its first ``context`` entries, the known frames, are replaced by their fixed values), with
    a wipe after every jump: over RAMP frames the landing's frames spread from left to right
    over where the source would have gone on (held at its last frame).

    A jump left as a cut stays a cut: each new voxel takes a real source patch (synthesis.py's
    fill), and on either side of a cut those are the frames themselves, so nothing spreads it.
    A cross-fade does not spread it either: the search matches the whole blend to one side
    until it is half way, then to the other, so the cut only moves a few frames on (on
    airballoons.mp4, steps of 0.4, 0.4 and 3.5 typical steps after the junction). A wipe changes
    a part of the picture per frame, and the search knits its edge from the clip's patches
    (steps of 0.9, 1.8, 1.3 and 1.2 there, over 6 frames).
    """
    count, width = coarsest_source.shape[1], coarsest_source.shape[-1]
    frames = coarsest_source.index_select(1, torch.tensor(timeline, device=coarsest_source.device))
    for start in range(max(1, context), len(timeline)):
        previous = timeline[start - 1]
        if timeline[start] == previous + 1:
            continue
        for offset in range(min(RAMP, len(timeline) - start)):
            before = coarsest_source[:, min(count - 1, previous + 1 + offset)]
            edge = round(width * (offset + 1) / (RAMP + 1))
            frames[:, start + offset, :, edge:] = before[:, :, edge:]
    return frames


def _window_guess(timeline: list[int], context: int, first: int, size: int, coarsest_source: torch.Tensor,
                  *engine_arguments) -> torch.Tensor:
    """A window's coarsest start: frames ``first`` to ``first + size`` of the whole extension's
    guess (:func:`_timeline_guess`), so a wipe begun in one window goes on in the next.

    Only the part of the timeline that reaches the window is made: a wipe lasts RAMP frames, so
    no jump more than RAMP frames before ``first`` shows in it (making the whole guess for every
    window made a long extension's cost grow with the square of its length)."""
    lo = max(0, first - RAMP)
    part = _timeline_guess(timeline[lo:first + size], max(0, context - lo), coarsest_source, *engine_arguments)
    return part[:, first - lo:first - lo + size]


def run_window(source: torch.Tensor, target: Target, config: SynthesisConfig, seed: int, number: int, windows: int,
               progress: ProgressCallback | None) -> tuple[np.ndarray, list[LevelRecord]]:
    """Window ``number`` of ``windows``: its clip (uint8) and level records, with its own seed
    (``window_seed``) and its share of the progress."""
    plan = SynthesisPlan((Source(source),), target, (window_seed(seed, number),), config)
    scaled = None if progress is None else partial(_window_progress, progress, number, windows)
    made = []
    make_variations(plan, 1, lambda _, clip, levels: made.append((clip, levels)), scaled)
    return made[0]


def _window_progress(progress: ProgressCallback, window: int, windows: int, done: int, total: int) -> None:
    progress(window * total + done, windows * total)
