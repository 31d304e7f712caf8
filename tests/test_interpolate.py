"""Interpolation: input frames kept bit for bit, new frames where the motion puts them, scene
cuts held, frame-rate arithmetic, the repair on the engine, and `vgpnn interpolate` end to end
(frame counts, rates, audio, errors and exit codes)."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vgpnn.apps.interpolate import (InterpolateOptions, detect_scene_cuts, factor_for_rate, interpolate,
                                    resampled_times, whole_factor_times)
from vgpnn.config import SynthesisConfig
from vgpnn.errors import ConfigError, InputError
from vgpnn.video import read_clip, write_video
from conftest import error_lines, smooth_frames

BUNNY = Path(__file__).resolve().parents[2] / "shared" / "clips" / "bunny_audio.mp4"
CPU = InterpolateOptions(device="cpu")
FAST_REPAIR = SynthesisConfig(noise_sigma=0, iterations=1)


def _texture(height, width, seed, low=0.0, high=1.0):
    noise = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
    smooth = F.avg_pool2d(noise, 3, 1, 1)[0].permute(1, 2, 0).numpy()
    return ((low + (high - low) * smooth) * 255).round().astype(np.uint8)


def moving_square(frames=3, step=8, height=48, width=64, start=10):
    """A dark textured background with a bright textured 12x12 square moving ``step`` pixels right
    per frame, and the square's left edge in each frame."""
    background = _texture(height, width, seed=1, high=0.4)
    square = _texture(12, 12, seed=2, low=0.6)
    clip = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        left = start + step * t
        clip[t, 18:30, left:left + 12] = square
    return clip


def square_centre(frame):
    """Column of the centre of the bright pixels (the square) of a frame."""
    bright = frame.astype(int).min(axis=-1) > 140
    columns = np.nonzero(bright)[1]
    return columns.mean()


# -- timing -----------------------------------------------------------------------------------

def test_whole_factor_times_keep_every_input_frame():
    times = whole_factor_times(4, 3)
    assert len(times) == (4 - 1) * 3 + 1
    assert [t for t in times if t.denominator == 1] == [0, 1, 2, 3]
    assert times[1] == Fraction(1, 3)


@pytest.mark.parametrize("fps, rate, factor", [
    (Fraction(25), 50, 2), (Fraction(25), 60, 3), (Fraction(10), 25, 3), (Fraction(30000, 1001), 59.94, 2),
    (Fraction(24), 120, 5), (Fraction(25), 25.5, 2)])
def test_a_rate_becomes_the_smallest_whole_factor_that_reaches_it(fps, rate, factor):
    assert factor_for_rate(fps, rate) == factor


@pytest.mark.parametrize("rate", [25, 24, 25.01])
def test_a_rate_not_above_the_inputs_is_refused(rate):
    with pytest.raises(ConfigError, match="not above the input's 25 fps"):
        factor_for_rate(Fraction(25), rate)


def test_resampled_times_are_exact_and_keep_the_frames_on_the_grid():
    times = resampled_times(11, Fraction(25), Fraction(60))  # 10 input steps = 0.4 s: 24 steps at 60 fps
    assert len(times) == 25 and times[-1] == 10
    assert all(b - a == Fraction(25, 60) for a, b in zip(times, times[1:]))
    assert [t for t in times if t.denominator == 1] == [0, 5, 10]  # every 5th input frame is on the grid


# -- the library ------------------------------------------------------------------------------

def test_input_frames_are_kept_bit_for_bit_and_the_count_is_right():
    clip = smooth_frames(frames=4, height=32, width=40)
    result = interpolate(clip, 3, options=CPU)
    assert result.frames.shape == (10, 32, 40, 3) and result.frames.dtype == np.uint8
    assert np.array_equal(result.frames[::3], clip)
    assert len(result.times) == 10 and result.cuts == ()


def test_a_clip_of_tiny_frames_is_interpolated():
    clip = smooth_frames(frames=3, height=4, width=6)
    result = interpolate(clip, 2, options=CPU)
    assert result.frames.shape == (5, 4, 6, 3) and np.array_equal(result.frames[::2], clip)


@pytest.mark.parametrize("factor", [2, 4])
def test_a_moving_square_is_placed_where_its_motion_puts_it(factor):
    clip = moving_square(step=8)
    result = interpolate(clip, factor, options=CPU)
    for index, time in enumerate(result.times):
        expected = 10 + 6 + 8 * float(time)
        assert abs(square_centre(result.frames[index]) - expected) <= 1.0, (index, time)
        if time.denominator != 1:
            # One square, not two half-bright ghosts: as many bright pixels as in an input frame.
            bright = (result.frames[index].astype(int).min(axis=-1) > 140).sum()
            assert abs(bright - 144) <= 20


def test_new_frames_beat_a_cross_fade_on_the_moving_square():
    clip = moving_square(frames=5, step=6)
    result = interpolate(clip[::2], 2, options=CPU)
    error = np.abs(result.frames[1].astype(int) - clip[1]).mean()
    fade = np.abs((clip[0].astype(int) + clip[2]) / 2 - clip[1]).mean()
    assert error < fade / 3


def test_the_shrinkage_keeps_agreed_detail_and_drops_unknown_detail():
    """Step 5 of tween: no uncertainty leaves the frame as it is; an uncertainty above all the
    local detail leaves only the local mean, a smooth frame."""
    from vgpnn.apps.tween import _gaussian_mean, _shrink, _SHRINK_SIGMA

    frame = torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(_shrink(frame, torch.zeros_like(frame)), frame, atol=1e-6)
    shrunk = _shrink(frame, torch.full_like(frame, 10.0))
    assert torch.allclose(shrunk, _gaussian_mean(frame, _SHRINK_SIGMA), atol=1e-6)


@pytest.mark.parametrize("consistent_scale", ["working", "enlarged"])
def test_a_pair_keeps_the_flows_that_agree_both_ways(monkeypatch, consistent_scale):
    """tween.flows_between solves small frames at their size and enlarged, and keeps the two
    flows whose forward-then-backward trip comes back to the start on more pixels (a still
    pair: every flow carries each pixel to its own colour)."""
    from vgpnn.apps import tween

    solved = []

    def fake_dis_flow(first, second, preset="fine", scale=1.0):
        solved.append(scale)
        forward = len(solved) % 2 == 1  # called forward, then backward, per scale
        consistent = (scale > 1) == (consistent_scale == "enlarged")
        value = 2.0 if forward or not consistent else -2.0  # the backward flow undoes the forward one
        return torch.full((2, *first.shape), value + (0.5 if scale > 1 else 0.0) * forward)

    monkeypatch.setattr(tween, "dis_flow", fake_dis_flow)
    frame = torch.full((3, 160, 200), 0.5)
    pair = tween.flows_between(frame, frame)
    assert solved == [1.0, 1.0, tween.FLOW_SHORT_SIDE / 160, tween.FLOW_SHORT_SIDE / 160]
    kept_scale = 2.5 if consistent_scale == "enlarged" else 2.0
    assert torch.all(pair.forward == kept_scale)


def test_flows_that_find_nothing_lose_to_flows_that_explain_the_motion(monkeypatch):
    """Zero flows agree both ways everywhere, but carry the moving square to the background."""
    from vgpnn.apps import tween

    clip = torch.from_numpy(moving_square(frames=2, step=6)).permute(0, 3, 1, 2).float() / 255
    motion = torch.zeros(2, 48, 64)
    motion[0, 18:30, 10:22] = 6.0  # the square's pixels move 6 right; the background stays
    back = torch.zeros(2, 48, 64)
    back[0, 18:30, 16:28] = -6.0

    def fake_dis_flow(first, second, preset="fine", scale=1.0):
        if scale > 1:
            return torch.zeros(2, *first.shape)
        return motion if first.equal(tween.to_gray(clip[0][:, None])[0]) else back

    monkeypatch.setattr(tween, "dis_flow", fake_dis_flow)
    assert tween.flows_between(clip[0], clip[1]).forward.equal(motion)


def test_frames_at_least_the_flow_size_are_solved_once(monkeypatch):
    from vgpnn.apps import tween

    scales = []
    monkeypatch.setattr(tween, "dis_flow", lambda first, second, preset="fine", scale=1.0:
                        scales.append(scale) or torch.zeros(2, *first.shape))
    tween.flows_between(torch.zeros(3, tween.FLOW_SHORT_SIDE, 500), torch.zeros(3, tween.FLOW_SHORT_SIDE, 500))
    assert scales == [1.0, 1.0]


def test_bicubic_warping_by_whole_pixels_moves_the_image_exactly():
    from vgpnn.flow import warp

    image = torch.rand(1, 3, 10, 12, generator=torch.Generator().manual_seed(1))
    flow = torch.zeros(1, 2, 10, 12)
    flow[:, 0] = 1.0  # each pixel takes its right-hand neighbour
    moved, inside = warp(image, flow, mode="bicubic")
    assert torch.allclose(moved[..., :-1], image[..., 1:], atol=1e-5)
    assert not inside[..., -1].any() and inside[..., :-1].all()


def test_a_scene_cut_is_held_not_morphed():
    first = moving_square(frames=3, step=4)
    second = np.repeat(_texture(48, 64, seed=7, low=0.3)[None], 3, axis=0)[:, ::-1].copy()
    clip = np.concatenate([first, second])  # a cut between frames 2 and 3
    assert detect_scene_cuts(clip, "cpu") == [2]
    result = interpolate(clip, 4, options=CPU)
    assert result.cuts == (2,)
    for index, time in enumerate(result.times):
        if 2 < time < 3:  # the new frames across the cut are the frame before it, then the one after
            assert np.array_equal(result.frames[index], clip[2] if time < 2.5 else clip[3])
    # Motion elsewhere is still interpolated, not held.
    assert not np.array_equal(result.frames[2], clip[0]) and not np.array_equal(result.frames[2], clip[1])


def test_ordinary_motion_is_not_a_cut():
    assert detect_scene_cuts(moving_square(frames=5, step=8), "cpu") == []


def test_given_times_and_cuts_are_used():
    clip = moving_square(frames=3, step=8)
    times = [Fraction(0), Fraction(1, 4), Fraction(3, 2), Fraction(2)]
    result = interpolate(clip, None, times=times, cuts=[1], options=CPU)
    assert result.frames.shape[0] == 4 and result.cuts == (1,)
    assert abs(square_centre(result.frames[1]) - (16 + 2)) <= 1.0
    assert np.array_equal(result.frames[2], clip[2])  # t = 1.5 across the given cut: the later frame


def test_the_repair_keeps_input_frames_and_the_square_in_place():
    clip = moving_square(frames=3, step=8)
    result = interpolate(clip, 2, config=FAST_REPAIR, options=InterpolateOptions(device="cpu", repair=True))
    assert np.array_equal(result.frames[::2], clip)
    assert 0 < result.repaired < 0.5  # the square's edges were re-made, not the whole frame
    assert result.levels and all(level.patch_size[0] == 1 for level in result.levels)
    assert abs(square_centre(result.frames[1]) - (16 + 4)) <= 1.0


def test_results_are_deterministic():
    clip = moving_square(frames=3, step=5)
    options = InterpolateOptions(device="cpu", repair=True)
    first = interpolate(clip, 3, config=FAST_REPAIR, options=options).frames
    second = interpolate(clip, 3, config=FAST_REPAIR, options=options).frames
    assert np.array_equal(first, second)


def test_library_errors_name_what_was_expected():
    with pytest.raises(InputError, match="at least 2 frames"):
        interpolate(smooth_frames(frames=1), 2, options=CPU)
    with pytest.raises(ConfigError, match="at least 2"):
        interpolate(smooth_frames(frames=3), 1, options=CPU)
    with pytest.raises(ConfigError, match="within 0..2"):
        interpolate(smooth_frames(frames=3), None, times=[Fraction(0), Fraction(5, 2)], options=CPU)
    with pytest.raises(ConfigError, match="flow must be one of"):
        InterpolateOptions(flow="slow")


def test_the_lazy_api_exports_interpolate():
    import vgpnn
    assert vgpnn.interpolate is interpolate and vgpnn.InterpolateOptions is InterpolateOptions


# -- the command line -------------------------------------------------------------------------

@pytest.fixture()
def square_video(tmp_path):
    return write_video(tmp_path / "square.mp4", moving_square(frames=5, step=4), Fraction(10))


def _probe(path):
    clip = read_clip(path, short_side=None, max_frames=None)
    with av.open(str(path)) as container:
        audio = len(container.streams.audio)
    return clip, audio


@pytest.mark.parametrize("args, frames, fps, name", [
    ([], 9, 20, "square_x2.mp4"),
    (["--factor", "3"], 13, 30, "square_x3.mp4"),
    (["--fps", "25"], 13, 30, "square_25fps.mp4"),  # 2.5 x is not whole: 3 x, every input frame kept
    (["--fps", "25", "--exact-fps"], 11, 25, "square_25fps.mp4"),
])
def test_cli_frame_counts_rates_and_names(cli, tmp_path, square_video, args, frames, fps, name):
    result = cli("interpolate", square_video, *args, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    clip, _ = _probe(tmp_path / "out" / name)
    assert clip.frames.shape == (frames, 48, 64, 3) and clip.fps == fps


def test_cli_keeps_the_decoded_input_frames_exactly(cli, tmp_path, square_video):
    result = cli("interpolate", square_video, "--factor", "2", "--format", "frames", "-o", tmp_path, "-q")
    assert result.exit_code == 0, result.output
    made = read_clip(tmp_path / "square_x2", short_side=None, max_frames=None).frames
    source = read_clip(square_video, short_side=None, max_frames=None).frames
    assert made.shape[0] == 9 and np.array_equal(made[::2], source)


def test_cli_works_at_full_resolution_by_default_and_keeps_audio(cli, tmp_path):
    voiced = write_video(tmp_path / "voiced.mp4", smooth_frames(frames=6, height=40, width=56), Fraction(25),
                         audio_from=BUNNY)
    result = cli("interpolate", voiced, "-o", tmp_path / "smooth.mp4", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    clip, audio = _probe(tmp_path / "smooth.mp4")
    assert clip.frames.shape == (11, 40, 56, 3) and clip.fps == 50 and audio == 1
    assert "working at" not in result.stderr
    report = (tmp_path / "r.json").read_text()
    assert '"fps": "50"' in report and '"factor": 2' in report


@pytest.mark.parametrize("args, code, message", [
    (["--factor", "1"], 2, "1 is not in the range x>=2"),
    (["--fps", "10"], 1, "10 fps is not above the input's 10 fps"),
    (["--fps", "8"], 1, "not above the input's"),
    (["--factor", "2", "--fps", "30"], 2, "either --factor or --fps"),
    (["--exact-fps"], 2, "--exact-fps needs --fps"),
    (["-n", "2"], 2, "one output per input"),
])
def test_cli_mistakes_are_one_line_with_an_exit_code(cli, tmp_path, square_video, args, code, message):
    result = cli("interpolate", square_video, *args, "-o", tmp_path / "out.mp4")
    assert result.exit_code == code
    lines = error_lines(result)
    assert any(message in line for line in lines), result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "out.mp4").exists()


def test_cli_refuses_a_still_image(cli, tmp_path):
    image = write_video(tmp_path / "still.png", smooth_frames(frames=1), None)
    result = cli("interpolate", image, "-o", tmp_path / "out.png")
    assert result.exit_code == 1
    assert error_lines(result)[-1].startswith("error: ") and "single image" in error_lines(result)[-1]
    assert not (tmp_path / "out.png").exists()


def test_cli_refuses_to_overwrite_without_y(cli, tmp_path, square_video):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    result = cli("interpolate", square_video, "-o", out)
    assert result.exit_code == 1 and out.read_bytes() == b"keep me"
    assert cli("interpolate", square_video, "-o", out, "-y", "-q").exit_code == 0
    assert _probe(out)[0].frames.shape[0] == 9
