"""timeline.py: which source frame each frame of a longer, shorter or looping target starts from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vgpnn.apps.timeline import JUMP_PENALTIES, jump_costs, plan_continuation, plan_timeline, timeline_candidates


def periodic_clip(frames=24, period=7):
    """A blob circling with a period of ``period`` frames: frame t looks exactly like t + period."""
    rows, columns = np.mgrid[0:12, 0:12]
    clip = []
    for t in range(frames):
        angle = 2 * np.pi * t / period
        clip.append(np.exp(-((rows - 6 - 3 * np.sin(angle)) ** 2 + (columns - 6 - 3 * np.cos(angle)) ** 2) / 4))
    return torch.from_numpy(np.stack(clip)).float()[None].expand(3, -1, -1, -1)


def ramp_clip(frames=30):
    """Brightness rising every frame, like a glass filling: no two frames alike."""
    return (torch.arange(frames).float() / frames).view(1, frames, 1, 1).expand(3, -1, 4, 4)


def runs(timeline):
    """Lengths of the runs of consecutive frames, and the jumps (from, to) between them."""
    lengths, jumps, length = [], [], 1
    for a, b in zip(timeline, timeline[1:]):
        if b == a + 1:
            length += 1
        else:
            lengths.append(length)
            jumps.append((a, b))
            length = 1
    return lengths + [length], jumps


def test_a_shorter_clip_is_the_first_frames_and_the_same_length_is_the_source():
    assert plan_timeline(ramp_clip(), 12) == list(range(12))
    assert plan_timeline(ramp_clip(), 30) == list(range(30))


def test_following_a_frame_with_its_successor_is_free_and_a_jump_back_is_not():
    costs, typical_step = jump_costs(ramp_clip())
    assert all(costs[i, i + 1] == 0 for i in range(29))
    assert costs[29, 0] > 20 * typical_step  # back to an empty glass
    assert typical_step == pytest.approx(1 / 30)


def test_a_periodic_clip_loops_with_only_seamless_jumps():
    clip = periodic_clip()
    timeline = plan_timeline(clip, 28, loop=True)  # a whole number of periods: a seamless loop exists
    assert len(timeline) == 28
    closed = timeline + timeline[:1]
    for a, b in zip(closed, closed[1:]):  # every frame is followed by one that looks like a's successor
        assert b == a + 1 or (b - (a + 1)) % 7 == 0
    # Repeating the clip from its start would jump from frame 23 to frame 0 (24 is not a multiple
    # of 7) and close the loop from frame 3 to frame 0.
    costs, typical_step = jump_costs(clip)
    assert costs[23, 0] > typical_step and costs[3, 0] > typical_step


def test_a_longer_clip_plays_whole_runs_from_the_start():
    timeline = plan_timeline(ramp_clip(), 75)
    lengths, jumps = runs(timeline)
    assert timeline[0] == 0 and len(timeline) == 75 and max(timeline) == 29
    assert all(length >= 10 for length in lengths[:-1])  # a third of the source; the last run may end early
    assert all(abs(b - (a + 1)) >= 10 for a, b in jumps)  # no stutter over a few frames


@pytest.mark.parametrize("frames, length", [(3, 7), (4, 4), (1, 5), (5, 2)])
def test_tiny_clips_give_a_valid_timeline(frames, length):
    for loop in (False, True):
        timeline = plan_timeline(ramp_clip(frames), length, loop=loop)
        assert len(timeline) == length and all(0 <= i < frames for i in timeline)


def slow_middle_clip(speed=0.85):
    """Brightness rising one step a frame, except frames 4-8, which rise ``speed`` of a step."""
    values = [0, 1, 2, 3] + [4 + k * speed for k in range(5)] + [4 + 4 * speed + k for k in (1, 2, 3)]
    return torch.tensor(values).float().view(1, -1, 1, 1).expand(3, -1, 4, 4)


def test_candidates_offer_one_harsh_jump_or_several_mild_ones():
    clip = slow_middle_clip()
    first, second = timeline_candidates(clip, 24)
    assert first == plan_timeline(clip, 24)  # the default penalty's plan comes first
    assert runs(first)[1] == [(11, 0)]  # one step a jump: the whole clip again, one jump back
    lengths, jumps = runs(second)  # a quarter step: three mild jumps back within the slow part
    assert len(jumps) == 3 and all(4 <= to < source <= 8 for source, to in jumps)
    assert min(lengths) >= 4


@pytest.mark.parametrize("clip, length, loop", [(ramp_clip(), 60, False), (periodic_clip(), 40, True),
                                                (ramp_clip(8), 5, False)])
def test_candidates_are_distinct_and_each_one_penalty_s_plan(clip, length, loop):
    candidates = timeline_candidates(clip, length, loop)
    assert len({tuple(c) for c in candidates}) == len(candidates) >= 1
    plans = [plan_timeline(clip, length, loop, jump_penalty=penalty) for penalty in JUMP_PENALTIES]
    assert all(candidate in plans for candidate in candidates) and all(plan in candidates for plan in plans)


def test_a_continuation_is_the_cheapest_over_every_landing():
    # Oracle: the search run once from each allowed landing, its landing cost added, the
    # cheapest kept. The continuation's own plan (one search over all landings at once) must
    # cost exactly that (ties between equally cheap plans may pick either).
    from vgpnn.apps.timeline import JUMP_PENALTY, _best_path, _jump_matrix, jump_costs

    generator = torch.Generator().manual_seed(3)
    for trial in range(12):
        count = 4 + trial * 3
        length = 5 + trial * 7
        frames = torch.rand((3, count, 4, 5), generator=generator)
        if trial % 2:  # a drifting clip, where continuing without a jump is cheap
            frames = torch.cumsum(frames * 0.1, dim=1)
        last = frames[:, trial % count] + 0.01
        plan, matched = plan_continuation(frames, last, length)

        costs, typical = jump_costs(frames)
        run = max(1, min(count, length, count // 3))
        jump = _jump_matrix(costs, typical, run, JUMP_PENALTY)
        flat = frames.transpose(0, 1).reshape(count, -1).double()
        unlike = (flat - last.reshape(1, -1).double()).abs().mean(1).numpy()
        successor = matched + 1

        def entry(landing):
            return unlike[landing - 1] if landing > 0 else unlike[0] + typical

        oracle = min(entry(landing) + _best_path(jump, landing, length, run, loop=False)[0]
                     for landing in range(count)
                     if landing == successor or abs(landing - successor) >= max(run, 2))
        cost = entry(plan[0]) + sum(jump[a, b] for a, b in zip(plan, plan[1:]) if b != a + 1)
        assert len(plan) == length
        assert cost == pytest.approx(oracle, rel=1e-12, abs=1e-12), trial
