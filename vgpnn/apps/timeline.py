"""Which source frame each frame of a retimed target starts from: runs of the source played at
their own pace, joined where the source looks most alike (after Schödl et al., "Video
textures", SIGGRAPH 2000).

A longer clip, or a loop, must show some source frames more than once, so it has jumps: places
where the next frame is not the one that followed in the source. The patch search repairs a
small jump in a few frames, but a large one (a glass that is full, then empty again) stays as
a burst of patches that look like nothing in the source. Repeating the source from its start
put the jump wherever the clip happened to end; here the jumps go where the frame after them
is most like the one that followed in the source.

``plan_timeline`` solves this exactly by dynamic programming over (output frame, source frame,
length of the current run): every run is at least ``min_run`` frames long and every jump lands
at least that far from the frame the source would show next, so the result plays the source's
motion rather than stuttering over a few similar frames, and each jump costs the
mean absolute difference between the frame it lands on and the natural successor of the frame
it leaves, plus a fixed penalty. A loop also pays for the jump from its last frame back to its first.

How much a jump costs the finished clip is not its frame difference: the search spreads its
repair over several frames, and how far depends on what changes (a rabbit sitting up is
repaired worse than rising water). No single penalty suited every sample clip, so
``timeline_candidates`` offers the plan of each of ``JUMP_PENALTIES`` and the caller keeps the
one whose synthesized result is most coherent (see apps/retarget.py).
"""

from __future__ import annotations

import numpy as np
import torch

# Each jump also costs this many of the source's median frame-to-frame changes: a jump is never
# free, the search has to repair it. One step keeps a single jump on every sample clip and still
# finds a periodic clip's seamless ones; a quarter step lets two milder jumps replace one harsh
# one. Measured with bench_retarget.py's coherence (ratio to a plain variation), one step / a
# quarter: bunny_audio.mp4's loop 2.30 / 1.83, but water_glass.mp4's loop 0.96 / 2.49; hence both.
JUMP_PENALTY = 1.0
JUMP_PENALTIES = (JUMP_PENALTY, 0.25)


def jump_costs(frames: torch.Tensor) -> tuple[np.ndarray, float]:
    """(T, T) cost of following frame i of ``frames`` (C, T, H, W) with frame j, and the median
    frame-to-frame change. The cost is how unlike frame j is frame i + 1, the frame that followed
    i in the source; for the last frame, which has no successor, frame j's predecessor is
    compared with frame i instead (frame 0, which has none either, costs its difference plus one
    typical step). Following i with i + 1 costs 0."""
    count = frames.shape[1]
    flat = frames.transpose(0, 1).reshape(count, -1).double().cpu()
    difference = torch.cdist(flat, flat, p=1).numpy() / flat.shape[1]  # mean absolute difference
    steps = np.diagonal(difference, offset=1)
    typical_step = float(np.median(steps)) if len(steps) else 0.0
    costs = np.empty((count, count))
    costs[:-1] = difference[1:]
    costs[-1, 1:] = difference[-1, :-1]
    costs[-1, 0] = difference[-1, 0] + typical_step
    return costs, typical_step


def timeline_candidates(frames: torch.Tensor, length: int, loop: bool = False) -> list[list[int]]:
    """The distinct plans of :func:`plan_timeline` for each of ``JUMP_PENALTIES``, in that order."""
    plans: list[list[int]] = []
    for penalty in JUMP_PENALTIES:
        plan = plan_timeline(frames, length, loop, jump_penalty=penalty)
        if plan not in plans:
            plans.append(plan)
    return plans


def plan_timeline(frames: torch.Tensor, length: int, loop: bool = False, min_run: int | None = None,
                  jump_penalty: float = JUMP_PENALTY) -> list[int]:
    """``length`` indices into the frames of ``frames`` (C, T, H, W): runs of consecutive frames,
    each at least ``min_run`` long (default: a third of T; never more than fits), joined by the
    jumps of least total cost, each jump also costing ``jump_penalty`` typical steps (module
    notes). A clip that is not a loop starts at frame 0; one no longer than the source is its
    first ``length`` frames."""
    count = frames.shape[1]
    if not loop and length <= count:
        return list(range(length))
    costs, typical_step = jump_costs(frames)
    run = max(1, min(count, length, count // 3 if min_run is None else min_run))
    jump = _jump_matrix(costs, typical_step, run, jump_penalty)
    best_cost, best_path = np.inf, [i % count for i in range(length)]
    for start in (range(count) if loop else (0,)):
        cost, path = _best_path(jump, start, length, run, loop)
        if cost < best_cost:
            best_cost, best_path = cost, path
    return best_path


def plan_continuation(frames: torch.Tensor, last: torch.Tensor, length: int, min_run: int | None = None,
                      jump_penalty: float = JUMP_PENALTY) -> tuple[list[int], int]:
    """``length`` indices into the frames of ``frames`` (C, T, H, W) to play after a frame that
    looks like ``last`` (C, H, W): how a clip goes on past its end (apps/extend.py); and the
    frame ``last`` looks most like.

    The continuation lands on a frame j whose predecessor looks most like ``last`` (cost: their
    mean absolute difference; frame 0, which has none, pays one typical step more), then plays
    the cheapest timeline of :func:`plan_timeline`'s rules from there. ``last`` is placed at the
    source frame it looks most like, m; landing on m + 1 is no jump at all (a window of an
    extension that continues where the previous one was going), any other landing keeps a run's
    distance from m + 1, as every jump does (closer, it would repeat or skip a few frames: a
    stutter). After the clip's own last frame, m + 1 does not exist: every landing is a jump.
    """
    count = frames.shape[1]
    costs, typical_step = jump_costs(frames)
    run = max(1, min(count, length, count // 3 if min_run is None else min_run))
    jump = _jump_matrix(costs, typical_step, run, jump_penalty)
    flat = frames.transpose(0, 1).reshape(count, -1).double().cpu()
    unlike_last = (flat - last.reshape(1, -1).double().cpu()).abs().mean(1).numpy()  # (T,)
    successor = int(np.argmin(unlike_last)) + 1
    # What landing on each frame costs (infinite where it may not land); one search then finds
    # the landing and the timeline after it together, in the time of one timeline's search.
    entry = np.full(count, np.inf)
    entry[1:] = unlike_last[:-1]
    entry[0] = unlike_last[0] + typical_step
    landings = np.arange(count)
    entry[(landings != successor) & _too_close(landings, successor, run)] = np.inf
    _, path = _best_path(jump, entry, length, run, loop=False)
    if not path:  # no landing leaves room for full runs (a clip of very few frames): replay it
        path = [i % count for i in range(length)]
    return path, successor - 1


def _jump_matrix(costs: np.ndarray, typical_step: float, run: int, jump_penalty: float) -> np.ndarray:
    """(T, T) cost of a jump from frame i to frame j: ``costs`` plus ``jump_penalty`` typical
    steps, infinite where j is closer than a run to i + 1."""
    count = costs.shape[0]
    jump = costs + jump_penalty * typical_step
    # A jump lands at least a run away from where the source would go: a shorter one repeats or
    # skips a few frames, which shows as a stutter (i -> i + 1 is no jump at all).
    jump[_too_close(np.arange(count)[None, :], np.arange(count)[:, None] + 1, run)] = np.inf
    return jump


def _too_close(landing, successor, run: int):
    """Whether a jump to ``landing`` lands closer than a run to ``successor``, the frame the
    source would show next (arrays broadcast): such a jump repeats or skips a few frames."""
    return np.abs(landing - successor) < max(run, 2)


def _best_path(jump: np.ndarray, start: int | np.ndarray, length: int, run: int,
               loop: bool) -> tuple[float, list[int]]:
    """The cheapest timeline that starts at ``start`` and its cost; ``start`` may instead be
    the cost of starting at each frame (infinite: not there), and the cheapest start, cost
    included, is chosen with the rest (not for a loop, which closes on one start). States are (source frame,
    frames played in the current run, capped at ``run``); only a full run may end in a jump,
    a loop's closing jump back to ``start`` included.

    Only two kinds of state have a choice of predecessor, so only they keep a back pointer: a
    run's first frame (the frame it jumped from; -1 when, with runs of 1, it simply continued)
    and a full run (whether it was full one frame earlier too). Every other state came from the
    previous frame with one frame less played."""
    count = jump.shape[0]
    total = np.full((count, run + 1), np.inf)  # total[frame, played]
    if isinstance(start, np.ndarray):
        total[:, 1] = start
    else:
        total[start, 1] = 0.0
    jumped_from = np.full((length, count), -1, dtype=np.int64)
    stayed_full = np.zeros((length, count), dtype=bool)
    for t in range(1, length):
        new = np.full_like(total, np.inf)
        new[1:, 2:] = total[:-1, 1:run]  # continue: f -> f + 1, the run grows
        still_full = total[:-1, run] < new[1:, run]
        new[1:, run] = np.where(still_full, total[:-1, run], new[1:, run])
        stayed_full[t, 1:] = still_full
        through = total[:, run][:, None] + jump  # jump: (from, to), a new run of 1 starts
        origin = through.argmin(0)
        candidate = through[origin, np.arange(count)]
        better = candidate < new[:, 1]
        new[:, 1] = np.where(better, candidate, new[:, 1])
        jumped_from[t] = np.where(better, origin, -1)
        total = new
    ends = total.copy()
    if loop:  # the last frame leads into the first
        ends[:, :run] = np.inf
        ends += jump[:, start][:, None]
        if start > 0:  # ending on start's predecessor closes the loop with no jump
            ends[start - 1] = total[start - 1]
    frame, played = (int(i) for i in np.unravel_index(np.argmin(ends), ends.shape))
    cost = float(ends[frame, played])
    if not np.isfinite(cost):  # no timeline from this start keeps every run long enough
        return cost, []
    path = [frame]
    for t in range(length - 1, 0, -1):
        if played == 1 and jumped_from[t, frame] >= 0:
            frame, played = int(jumped_from[t, frame]), run
        elif played == run and stayed_full[t, frame]:
            frame -= 1
        else:
            frame, played = frame - 1, max(1, played - 1)
        path.append(frame)
    return cost, path[::-1]
