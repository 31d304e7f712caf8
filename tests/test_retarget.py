"""Retargeting: target shapes for every way of asking, loops (resize, vote, seam), natural pace,
and `vgpnn retarget` end to end (sizes, frame counts, audio, errors)."""

from dataclasses import replace
from functools import partial
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vgpnn.apps.retarget import RetargetOptions, TargetRequest, coarsest_guess, plan_target_shape, retarget
from vgpnn.apps.carve import carve_layout, motion_weights
from vgpnn.cli import main
from vgpnn.config import SynthesisConfig
from vgpnn.errors import ConfigError
from vgpnn.wrap import unroll_for_search, vote_wrapped
from vgpnn.metrics import coherence
from vgpnn.patches import carry_field, unfold
from vgpnn.resize import resize_video
from vgpnn.synthesis import synthesize
from vgpnn.video import read_clip, write_video

from conftest import plan_of, textured_clip

SOURCE = (20, 144, 256)  # frames, height, width
BUNNY = Path(__file__).resolve().parents[2] / "shared" / "clips" / "bunny_audio.mp4"


@pytest.mark.parametrize("request_, expected", [
    (TargetRequest(aspect=(9, 16)), (20, 144, 82)),  # narrowing: height kept
    (TargetRequest(aspect=(1, 1)), (20, 144, 144)),
    (TargetRequest(aspect=(21, 9)), (20, 110, 256)),  # wider than 16:9: width kept, height shrinks
    (TargetRequest(aspect=(9, 16), keep="width"), (20, 456, 256)),  # widening on request
    (TargetRequest(aspect=(21, 9), keep="height"), (20, 144, 336)),
    (TargetRequest(width=100, height=50), (20, 50, 100)),
    (TargetRequest(width=101), (20, 144, 102)),  # even, height kept
    (TargetRequest(height=77), (20, 78, 256)),
    (TargetRequest(width_scale=1.5, height_scale=0.5), (20, 72, 384)),
    (TargetRequest(frames=7), (7, 144, 256)),
    (TargetRequest(duration=3.0), (30, 144, 256)),  # at 10 fps
    (TargetRequest(time_scale=0.5, aspect=(1, 1)), (10, 144, 144)),
    (TargetRequest(width=101, even=False), (20, 144, 101)),
])
def test_target_shape_for_each_way_of_asking(request_, expected):
    assert plan_target_shape(SOURCE, Fraction(10), request_) == expected


@pytest.mark.parametrize("aspect", [(9, 16), (1, 1), (4, 5), (21, 9), (2.39, 1), (16, 9)])
@pytest.mark.parametrize("keep", ["auto", "width", "height"])
def test_sizes_are_even_and_the_aspect_is_within_a_pixel(aspect, keep):
    frames, height, width = plan_target_shape((5, 137, 243), Fraction(25), TargetRequest(aspect=aspect, keep=keep))
    assert height % 2 == 0 and width % 2 == 0
    ratio = aspect[0] / aspect[1]
    assert abs(width - height * ratio) <= 1 + 1e-9 or abs(height - width / ratio) <= 1 + 1e-9


@pytest.mark.parametrize("kwargs", [
    dict(aspect=(16, 0)), dict(aspect=(9, 16), width=10), dict(frames=5, duration=1.0),
    dict(width_scale=1.5, height=10), dict(time_scale=0), dict(width=0), dict(keep="diagonal"),
])
def test_impossible_requests_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        TargetRequest(**kwargs)


def test_circular_resize_commutes_with_a_shift_in_time():
    video = torch.rand(3, 6, 4, 5, generator=torch.Generator().manual_seed(0))
    doubled = resize_video(video, (12, 4, 5), loop=True)
    shifted = resize_video(video.roll(1, dims=1), (12, 4, 5), loop=True)
    assert torch.allclose(shifted, doubled.roll(2, dims=1), atol=1e-6)
    # The ordinary resize mirrors at the ends, so there the shift changes more than the phase.
    plain = resize_video(video, (12, 4, 5))
    assert not torch.allclose(resize_video(video.roll(1, dims=1), (12, 4, 5)), plain.roll(2, dims=1), atol=1e-3)


def test_loop_vote_equals_a_brute_force_circular_median():
    generator = torch.Generator().manual_seed(1)
    values = torch.rand(2, 5, 6, 6, generator=generator)
    patch = (3, 3, 3)
    frames, height, width = 4, 5, 5
    field = torch.randint(0, 3 * 4 * 4, (1, frames, height - 2, width - 2), generator=generator)
    voted = vote_wrapped(values, field, (frames, height, width), patch)
    rows = unfold(values, patch).reshape(-1, 2, 3, 3, 3)
    for t in range(frames):
        for y in range(height):
            for x in range(width):
                said = [rows[field[0, (t - dt) % frames, y - dy, x - dx], :, dt, dy, dx]
                        for dt in range(3) for dy in range(3) for dx in range(3)
                        if 0 <= y - dy < height - 2 and 0 <= x - dx < width - 2]
                expected = torch.stack(said).median(dim=0).values
                assert torch.equal(voted[0, :, t, y, x], expected)


def test_unrolled_queries_have_one_patch_position_per_frame():
    videos = torch.arange(5.0).reshape(1, 1, 5, 1, 1).expand(1, 1, 5, 3, 3)
    unrolled = unroll_for_search(videos, (3, 3, 3))
    assert unrolled[0, 0, :, 0, 0].tolist() == [0, 1, 2, 3, 4, 0, 1]


def drifting_clip(frames=12, height=32, width=48, speed=2):
    """A texture sliding sideways by ``speed`` pixels a frame: steady motion with a big seam."""
    wide = textured_clip(frames=1, height=height, width=width + frames * speed, seed=3)[0]
    return np.stack([wide[:, t * speed:t * speed + width] for t in range(frames)])


def frame_steps(frames):
    return np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))


FAST_CONFIG = SynthesisConfig(noise_sigma=0, iterations=2)


def seam(frames):
    return np.abs(frames[0].astype(np.float32) - frames[-1].astype(np.float32)).mean()


def test_loop_narrows_the_seam_and_keeps_moving():
    # A sliding texture cannot loop perfectly (its two ends show different places), so this
    # checks the direction; the sample clips' seams come out like any other step (README).
    clip = drifting_clip(frames=16, speed=1)
    looped = retarget(clip, clip.shape[:3], FAST_CONFIG, RetargetOptions(loop=True, device="cpu"))[0]
    plain = retarget(clip, clip.shape[:3], FAST_CONFIG, RetargetOptions(loop=False, device="cpu"))[0]
    assert seam(plain) > 0.95 * seam(clip)  # without --loop the jump stays (measured: unchanged) ...
    assert seam(looped) < 0.8 * seam(clip)  # ... with it, it shrinks (measured: 0.70)
    assert np.median(frame_steps(looped)) > 0.8 * np.median(frame_steps(clip))  # and the loop still moves


def test_longer_clip_keeps_the_motion_speed():
    clip = drifting_clip()
    out = retarget(clip, (24, *clip.shape[1:3]), FAST_CONFIG, RetargetOptions(device="cpu"))[0]
    assert out.shape == (24, *clip.shape[1:])
    # Slow motion would halve the typical step; measured about 0.9 of the source's.
    assert np.median(frame_steps(out)) > 0.7 * np.median(frame_steps(clip))


def test_noise_free_retarget_to_the_same_shape_returns_the_source():
    clip = textured_clip(frames=6)
    out = retarget(clip, clip.shape[:3], FAST_CONFIG, RetargetOptions(device="cpu"))[0]
    assert np.abs(out.astype(int) - clip.astype(int)).max() <= 1


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


FAST = ["--iterations", "1", "--working-size", "native", "-q"]


def decoded(path):
    clip = read_clip(path, short_side=None, max_frames=None)
    with av.open(str(path)) as container:
        audio = len(container.streams.audio)
    return clip.frames.shape, clip.fps, audio


@pytest.fixture()
def clip_path(tmp_path):
    path = tmp_path / "tiny.mp4"
    write_video(path, textured_clip(frames=8), Fraction(25))
    return path


@pytest.mark.parametrize("args, shape", [
    (["--aspect", "9:16"], (8, 32, 18)),
    (["--aspect", "21:9", "--keep", "height"], (8, 32, 74)),
    (["--size", "40x36"], (8, 36, 40)),
    (["--height-scale", "1.5", "--frames", "12"], (12, 48, 48)),
    (["--duration", "0.2"], (5, 32, 48)),
    (["--time-scale", "2", "--loop"], (16, 32, 48)),
])
def test_cli_outputs_decode_with_the_asked_size_and_length(tmp_path, clip_path, args, shape):
    out = tmp_path / "out.mp4"
    result = run("retarget", clip_path, *args, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    frames, fps, _ = decoded(out)
    assert frames == (*shape, 3) and fps == 25


def test_cli_default_names_say_what_was_asked(tmp_path, clip_path):
    assert run("retarget", clip_path, "--aspect", "1:1", "--loop", "-o", tmp_path, *FAST).exit_code == 0
    assert (tmp_path / "tiny_1x1_loop.mp4").exists()
    assert run("retarget", clip_path, "--width", "40", "--time-scale", "1.5", "-n", "2", "--seed", "4",
               "-o", tmp_path, *FAST).exit_code == 0
    assert (tmp_path / "tiny_w40_t1.5_4.mp4").exists() and (tmp_path / "tiny_w40_t1.5_5.mp4").exists()


def test_audio_is_kept_exactly_when_the_length_is_kept(tmp_path):
    voiced = tmp_path / "voiced.mp4"
    write_video(voiced, textured_clip(frames=8), Fraction(25), audio_from=BUNNY)
    same = run("retarget", voiced, "--aspect", "1:1", "-o", tmp_path / "same.mp4", *FAST[:-1])
    longer = run("retarget", voiced, "--time-scale", "1.5", "-o", tmp_path / "longer.mp4", *FAST[:-1])
    assert same.exit_code == 0 and longer.exit_code == 0
    assert decoded(tmp_path / "same.mp4")[2] == 1
    assert decoded(tmp_path / "longer.mp4")[2] == 0
    assert "audio not copied: the output's length differs" in longer.output


def test_an_image_is_retargeted_to_an_image_of_any_size(tmp_path):
    image = tmp_path / "still.png"
    write_video(image, textured_clip(frames=1), None)
    assert run("retarget", image, "--width", "61", "-o", tmp_path / "wide.png", *FAST).exit_code == 0
    frames, _, _ = decoded(tmp_path / "wide.png")
    assert frames == (1, 32, 61, 3)


@pytest.mark.parametrize("args, message, status", [
    (["--aspect", "16:0"], "expected two positive numbers W:H", 2),
    (["--width", "4"], "smaller than a patch", 1),  # depends on the clip: that input fails
    ([], "nothing to change", 2),
    (["--aspect", "1:1", "--width", "40"], "only one way to set the size", 2),
    (["--frames", "9", "--duration", "1"], "only one way to set the length", 2),
    (["--size", "40by30"], "expected WIDTHxHEIGHT", 2),
])
def test_impossible_requests_fail_with_one_line_and_no_output(tmp_path, clip_path, args, message, status):
    result = CliRunner().invoke(main, ["retarget", str(clip_path), *args, "-o", str(tmp_path / "x.mp4"), *FAST])
    assert result.exit_code == status
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.mp4").exists()


def disk_clip(frames=10, height=32, width=64, centre_x=20, radius=7, speed=1):
    """A still texture with a dark disk drifting right by ``speed`` pixels a frame: the one
    thing that moves, and round, so a squeeze shows as an ellipse."""
    background = textured_clip(frames=1, height=height, width=width, seed=5)[0]
    rows, columns = np.mgrid[0:height, 0:width]
    clip = []
    for t in range(frames):
        inside = (rows - height / 2) ** 2 + (columns - centre_x - t * speed) ** 2 <= radius ** 2
        clip.append(np.where(inside[..., None], 20, background).astype(np.uint8))
    return np.stack(clip)


def disk_extent(frame):
    """Width and height in pixels of the dark (< 40) region of one frame."""
    dark = frame.max(axis=-1) < 40
    columns, rows = np.flatnonzero(dark.any(axis=0)), np.flatnonzero(dark.any(axis=1))
    return (columns[-1] - columns[0] + 1, rows[-1] - rows[0] + 1) if len(columns) else (0, 0)


def test_motion_weights_favour_what_moves_and_weigh_a_still_clip_alike():
    clip = torch.from_numpy(disk_clip()).permute(3, 0, 1, 2).float() / 255
    weights = motion_weights(clip, (3, 16, 32), (3, 7, 7)).reshape(10, 26)  # a (3, 16, 32) level's (H', W') grid
    assert weights.mean().item() == pytest.approx(1.0)
    # The disk sweeps columns 13..36 of the clip (centre 20..29, radius 7): up to 18 of the level,
    # so grid columns up to 18; the rest of the frame is still.
    assert weights[:, 19:].max() < 0.01
    assert weights[:, 5:14].mean() > 1.5  # measured: 2.2
    still = clip[:, :1].expand(-1, 10, -1, -1)
    assert torch.equal(motion_weights(still, (3, 16, 32), (3, 7, 7)), torch.ones(10 * 26))


def test_carving_keeps_the_moving_disk_and_removes_whole_lines():
    clip = torch.from_numpy(disk_clip(radius=5, speed=0.5)).permute(3, 0, 1, 2).float() / 255
    level = resize_video(clip, (3, 16, 32))
    rows, columns = carve_layout(level, (16, 14), (3, 7, 7), motion_weights(clip, (3, 16, 32), (3, 7, 7)))
    assert rows == list(range(16)) and len(columns) == 14 and columns == sorted(columns)
    # The disk covers columns 15..30 of the clip (centre 20..24.5, radius 5), 8..14 of the level.
    assert set(range(8, 15)) <= set(columns)


def test_a_narrower_retarget_keeps_the_disk_round():
    clip = disk_clip()
    out = retarget(clip, (10, 32, 24), FAST_CONFIG, RetargetOptions(device="cpu"))[0]
    widths, heights = zip(*(disk_extent(frame) for frame in out))
    # Measured: 15x15 in every frame. From the squeezed source, as before carving, it came out
    # from 1x1 to 10x15 (squeezed, and half pushed out of the frame).
    assert min(heights) >= 13
    assert all(abs(w - h) <= 2 for w, h in zip(widths, heights))


def test_carried_field_keeps_a_shifted_piece_one_piece():
    # Coarser level: queries 10x12 (grid 4x6), keys 10x20 (grid 4x14), every query copying the
    # key 5 columns to its right. Finer level: queries 1.5x as large (grid 9x12), keys twice (grid 14x34).
    patch = (1, 7, 7)
    rows, columns = torch.meshgrid(torch.arange(4), torch.arange(6), indexing="ij")
    field = (rows * 14 + columns + 5)[None, None]  # (B, T', H', W')
    carried = carry_field(field, ((1, 10, 12), (1, 15, 18)), ((1, 10, 20), (1, 20, 40)), (patch, patch), (1, 9, 12))
    rows, columns = torch.meshgrid(torch.arange(9), torch.arange(12), indexing="ij")
    # One displacement everywhere, scaled with the keys: 10 columns right, no rows.
    assert torch.equal(carried, (rows * 34 + columns + 10)[None, None])


def test_carrying_the_layout_up_keeps_a_narrower_retarget_coherent():
    clip = disk_clip()
    source = torch.from_numpy(clip).permute(3, 0, 1, 2).float() / 255
    start = partial(coarsest_guess, timeline=None)
    carried = synthesize(plan_of(source, (10, 32, 24), FAST_CONFIG, [0], carry_layout=True, start=start)).videos[0]
    resized = synthesize(plan_of(source, (10, 32, 24), FAST_CONFIG, [0], carry_layout=False, start=start)).videos[0]
    # Measured: 0 with the layout carried up (every patch is a source patch) against 2.4e-3 when
    # each level re-matches its resized output instead.
    assert coherence(carried, source) < 1e-5
    assert coherence(carried, source) < 0.1 * coherence(resized, source)


def test_the_coarsest_guess_starts_from_the_timeline_it_is_given_and_refuses_a_wrong_one():
    clip = drifting_clip(frames=8)
    source = torch.from_numpy(clip).permute(3, 0, 1, 2).float() / 255
    config = SynthesisConfig(noise_sigma=0, iterations=1, coarsest_frames=8)

    def run(timeline):
        start = partial(coarsest_guess, timeline=timeline)
        return synthesize(plan_of(source, (8, 32, 48), config, [0], start=start)).videos

    # A reversed timeline starts the coarsest level backwards: the output differs from the
    # default (forward) one, and a timeline of the wrong length or range is refused.
    forward = run(list(range(8)))
    assert torch.equal(forward, run(None))
    backward = run(list(range(7, -1, -1)))
    assert (backward - forward).abs().mean() > 0.02
    for wrong in (list(range(7)), [0] * 7 + [8]):
        with pytest.raises(ValueError, match="timeline"):
            run(wrong)


def test_retarget_keeps_the_candidate_timeline_that_comes_out_most_coherent(monkeypatch):
    import vgpnn.apps.retarget as retarget_module
    from vgpnn.apps.variations import make_variations

    def fixed_timeline(seeds, timeline):
        source = torch.from_numpy(clip).permute(3, 0, 1, 2).float() / 255
        plan = plan_of(source, shape, config, seeds, start=partial(coarsest_guess, timeline=timeline))
        return make_variations(plan, 1)

    clip = drifting_clip(frames=8, speed=2)
    shape = (16, *clip.shape[1:3])
    smooth = list(range(8)) * 2  # one jump back
    stutter = [0, 4, 1, 5, 2, 6, 3, 7] * 2  # a jump at every frame
    config = replace(FAST_CONFIG, coarsest_frames=8)
    expected = fixed_timeline([0, 1], smooth)
    assert not np.array_equal(fixed_timeline([0], stutter)[0], expected[0])
    for order in ([stutter, smooth], [smooth, stutter]):
        monkeypatch.setattr(retarget_module, "coarsest_timelines", lambda *args, order=order: order)
        seen, progress = [], []
        outputs = retarget(clip, shape, FAST_CONFIG, RetargetOptions(variations=2, device="cpu"),
                           on_variation=lambda index, frames, levels: seen.append((index, frames)),
                           progress=lambda done, total: progress.append((done, total)))
        assert all(np.array_equal(a, b) for a, b in zip(outputs, expected))
        assert [index for index, _ in seen] == [0, 1] and np.array_equal(seen[1][1], expected[1])
        totals = {total for _, total in progress}
        # One bar per output, over both candidates' levels: 1 .. total for each of the two outputs.
        assert len(totals) == 1 and [done for done, _ in progress] == list(range(1, totals.pop() + 1)) * 2


def test_only_long_length_changes_are_cut_into_windows():
    from vgpnn.apps.target_shape import WINDOW_VOXELS, window_frames
    source = (20, 144, 256)
    one_piece = WINDOW_VOXELS // (144 * 256)
    assert window_frames(source, (150, 144, 256)) is None  # the README's 15 s: one piece
    assert window_frames(source, (6000, 144, 256)) == one_piece
    assert window_frames(source, (6000, 144, 144)) is None  # a new frame size: one piece
    # However large the frames, a window has room for two runs of the source.
    assert window_frames((30, 1080, 1920), (900, 1080, 1920)) == 60


def test_a_long_retarget_runs_in_bounded_windows_that_join_without_a_step(monkeypatch):
    import vgpnn.apps.retarget as retarget_module
    monkeypatch.setattr("vgpnn.apps.target_shape.WINDOW_VOXELS", 1)  # windows of twice the source
    import vgpnn.apps.extend as extend_module
    engine_calls = []
    real = retarget_module.make_variations

    def recording(plan, *args, **kwargs):
        engine_calls.append(plan.target.shape[0])
        return real(plan, *args, **kwargs)

    for module in (retarget_module, extend_module):  # in one piece, or window by window
        monkeypatch.setattr(module, "make_variations", recording)
    clip = drifting_clip(frames=8, height=24, width=32)  # windows of 16 frames
    progress = []
    out = retarget(clip, (40, *clip.shape[1:3]), FAST_CONFIG, RetargetOptions(device="cpu"),
                   progress=lambda done, total: progress.append(done / total))
    assert out[0].shape == (40, *clip.shape[1:])
    # Every engine call holds at most a window's frames, and one output is all of them.
    assert engine_calls and max(engine_calls) <= 16 and len(engine_calls) > 2
    assert progress == sorted(progress) and progress[-1] == 1
    steps = frame_steps(out[0])
    # No jump where windows meet: no step is far above the clip's own (measured: at most 1.75x the
    # median, at the timeline's jumps between runs of the source).
    assert steps.max() < 3 * np.median(frame_steps(clip))
    assert np.median(steps) > 0.7 * np.median(frame_steps(clip))  # and it keeps moving
    again = retarget(clip, (40, *clip.shape[1:3]), FAST_CONFIG, RetargetOptions(device="cpu"))
    assert np.array_equal(out[0], again[0])


def test_a_long_loop_runs_in_bounded_windows_and_its_seam_has_no_step(monkeypatch):
    import vgpnn.apps.extend as extend_module
    import vgpnn.apps.retarget as retarget_module
    monkeypatch.setattr("vgpnn.apps.target_shape.WINDOW_VOXELS", 1)  # windows of twice the source
    targets = []
    real = extend_module.make_variations

    def recording(plan, *args, **kwargs):
        targets.append(plan.target)
        return real(plan, *args, **kwargs)

    for module in (retarget_module, extend_module):
        monkeypatch.setattr(module, "make_variations", recording)
    clip = drifting_clip(frames=8, height=24, width=32)
    out = retarget(clip, (40, *clip.shape[1:3]), FAST_CONFIG, RetargetOptions(device="cpu", loop=True))[0]
    assert out.shape == (40, *clip.shape[1:])
    assert targets and max(t.shape[0] for t in targets) <= 16 and len(targets) > 2
    # The last window leads into the output's first frames: they are fixed at its end.
    last = targets[-1]
    closing = FAST_CONFIG.patch_size[0] - 1
    assert last.fixed_mask[-closing:].all() and not last.fixed_mask[-closing - 1].any()
    first = torch.from_numpy(out[:closing]).permute(3, 0, 1, 2).float() / 255
    assert torch.allclose(last.fixed[:, -closing:], first, atol=1 / 255)
    # Played around, the seam (last frame to first) is a step like any other.
    around = np.concatenate([out, out[:1]])
    steps = frame_steps(around)
    assert steps[-1] < 3 * np.median(frame_steps(clip))
    assert steps.max() < 3 * np.median(frame_steps(clip))


def square_clip(frames=8, height=32, width=64, side=12, left=6, speed=1, background="textured"):
    """A faint textured square drifting right by ``speed`` pixels a frame over a still background
    (``textured``, busier than the square, or ``plain``): the subject, the only thing that moves.
    Returns the clip, the square (side, side, 3) and its top row."""
    if background == "textured":
        clip = np.repeat(textured_clip(frames=1, height=height, width=width, seed=5), frames, axis=0)
    else:
        clip = np.full((frames, height, width, 3), 120, np.uint8)
    square = (textured_clip(frames=1, height=side, width=side, seed=7)[0] // 4 + 100).astype(np.uint8)
    top = (height - side) // 2
    for t in range(frames):
        clip[t, top:top + side, left + t * speed:left + t * speed + side] = square
    return clip, square, top


def square_error(out, square, top):
    """Per output frame, the least mean absolute difference between ``square`` and any window
    of the frame on its rows: 0 when the square is there whole and intact."""
    side = square.shape[0]
    errors = []
    for frame in out.astype(np.float32):
        windows = [np.abs(frame[top:top + side, x:x + side] - square).mean() for x in range(frame.shape[1] - side + 1)]
        errors.append(min(windows))
    return np.array(errors)


def test_saliency_finds_the_moving_square_and_a_still_clip_falls_back_to_contrast():
    from vgpnn.apps.saliency import saliency, subject_mass
    clip, _, top = square_clip(background="plain")
    video = torch.from_numpy(clip).permute(3, 0, 1, 2).float() / 255
    mass = subject_mass(video)
    # The square sweeps columns 6..24 and rows 10..21; the background around it weighs little.
    inside = mass[:, top:top + 12, 8:22].mean()
    assert inside > 10 * mass[:, :, 40:].mean()
    still = saliency(video[:, :1].expand(-1, 4, -1, -1))
    assert still[:, top:top + 12, 8:16].mean() > 3 * still[:, :, 40:].mean()  # contrast alone


def test_subject_band_spans_each_frames_subject_or_is_the_best_crop():
    from vgpnn.apps.saliency import subject_band
    # Two frames: the subject at lines 2..4, then at lines 5..7 (with a faint tail at line 9).
    profile = torch.tensor([[0, 0, 4, 5, 4, 0, 0, 0, 0, 0],
                            [0, 0, 0, 0, 0, 3, 6, 3, 0, 0.5]])
    # 90% of each frame's mass: lines 2..4 (all 13), then 5..7 (12 of 12.5): the band spans both.
    assert subject_band(profile, 8) == range(2, 8)
    assert subject_band(profile, 3) == range(2, 5)  # too wide to fit: the 3-line run holding most (13, not 12)
    assert subject_band(torch.zeros(2, 5), 3) == range(0)


def test_carving_never_removes_the_lines_it_is_told_to_keep():
    clip = torch.from_numpy(disk_clip(radius=5, speed=0.5)).permute(3, 0, 1, 2).float() / 255
    level = resize_video(clip, (3, 16, 32))
    weights = motion_weights(clip, (3, 16, 32), (3, 7, 7))
    rows, columns = carve_layout(level, (16, 14), (3, 7, 7), weights, keep=(range(0), range(18, 30)))
    assert len(columns) == 14 and set(range(18, 30)) <= set(columns)
    with pytest.raises(ValueError, match="cannot keep"):
        carve_layout(level, (16, 10), (3, 7, 7), weights, keep=(range(0), range(18, 30)))


def test_a_thin_strip_is_carved_in_a_window_around_its_subject():
    """A 15x220 coarsest level narrowed to 20 columns: the greedy search works only in a window
    of 20 + MAX_CARVED columns around what moves (one by one over all of them took minutes),
    and keeps the moving square; an axis losing at most MAX_CARVED lines is searched whole."""
    from vgpnn.apps.carve import MAX_CARVED, carve_to, carving_window
    from vgpnn.apps.saliency import subject_mass
    generator = torch.Generator().manual_seed(0)
    clip = 0.3 + 0.05 * torch.rand(3, 6, 15, 220, generator=generator)
    for t in range(6):
        clip[:, t, 4:11, 150 + t:157 + t] = 1.0  # a bright square moving right
    mass = subject_mass(clip)
    rows, columns = carving_window(mass, (15, 220), (15, 20))
    assert rows == range(15) and len(columns) == 20 + MAX_CARVED and columns.start <= 150 < 162 <= columns.stop
    assert carving_window(mass, (15, 40), (15, 40 - MAX_CARVED)) == (range(15), range(40))
    carved = carve_to(clip, (15, 20), (3, 7, 7), clip)
    assert carved.shape == (3, 6, 15, 20)
    assert ((carved[0] == 1.0).sum((1, 2)) == 49).all()  # the whole 7x7 square, in every frame


@pytest.mark.parametrize("width", [32, 24])
def test_a_narrower_retarget_keeps_the_moving_square_whole(width, device):
    # The square sweeps 19 columns of a busier background: at 32 it fits with room to spare, at
    # 24 with little. Measured: found intact (mean error 0) in every frame; without the subject's
    # band the carving cut into it at 24 (error 9.6 of 255: columns of its faint texture are as
    # cheap to remove as the background's).
    clip, square, top = square_clip()
    out = retarget(clip, (8, 32, width), FAST_CONFIG, RetargetOptions(device=device))[0]
    assert out.shape == (8, 32, width, 3)
    assert square_error(out, square, top).max() < 2


def test_a_taller_retarget_keeps_the_square_once_at_its_size_and_grows_the_background(device):
    clip, square, top = square_clip(height=40, width=40, side=10, left=4, speed=2, background="plain")
    out = retarget(clip, (8, 64, 40), FAST_CONFIG, RetargetOptions(device=device))[0]
    # Stretched, the square would be 16 rows tall; grown around it, it stays 10 and intact.
    errors = []
    for frame in out.astype(np.float32):
        errors.append(min(np.abs(frame[y:y + 10, x:x + 10] - square).mean()
                          for y in range(64 - 10 + 1) for x in range(40 - 10 + 1)))
    assert max(errors) < 4


def test_quantile_samples_stay_inside_a_clip_of_more_than_2_24_values():
    from vgpnn.apps.saliency import _QUANTILE_SAMPLES, _sampled
    values = torch.arange(75 * 360 * 640)  # a 75-frame 640x360 clip: float32 positions rounded past its end
    sampled = _sampled(values)
    assert len(sampled) == _QUANTILE_SAMPLES and int(sampled[0]) == 0 and int(sampled[-1]) == values.numel() - 1


def test_a_long_retarget_to_a_new_frame_size_is_made_in_two_bounded_stages(monkeypatch):
    """Re-composed at the new frame size and the source's length in one piece, then made longer
    window by window: no engine call holds more than the larger of the two, and the output has
    the asked shape, keeps moving and is reproducible."""
    from vgpnn.apps.target_shape import resized_first
    import vgpnn.apps.extend as extend_module
    import vgpnn.apps.retarget as retarget_module
    assert resized_first((20, 144, 256), (150, 144, 144)) is None  # fits one piece
    assert resized_first((20, 144, 256), (6000, 144, 144)) == (20, 144, 144)
    assert resized_first((20, 144, 256), (6000, 144, 256)) is None  # the frame size stays: windows alone
    monkeypatch.setattr("vgpnn.apps.target_shape.WINDOW_VOXELS", 1)  # windows of twice the source
    calls = []
    real = retarget_module.make_variations

    def recording(plan, *args, **kwargs):
        calls.append(plan.target.shape)
        return real(plan, *args, **kwargs)

    for module in (retarget_module, extend_module):
        monkeypatch.setattr(module, "make_variations", recording)
    clip = drifting_clip(frames=8, height=24, width=32)
    made = []
    out = retarget(clip, (40, 24, 24), FAST_CONFIG, RetargetOptions(device="cpu"),
                   on_variation=lambda index, frames, levels: made.append((index, len(levels))))
    assert out[0].shape == (40, 24, 24, 3)
    assert calls[0] == (8, 24, 24)  # the first stage: the source's length at the new size
    assert all(shape[1:] == (24, 24) and shape[0] <= 16 for shape in calls) and len(calls) > 2
    assert made == [(0, made[0][1])] and made[0][1] > 0  # one output, with both stages' level records
    steps = frame_steps(out[0])
    assert steps.max() < 3 * np.median(frame_steps(clip))
    assert np.median(steps) > 0.5 * np.median(frame_steps(clip))
    again = retarget(clip, (40, 24, 24), FAST_CONFIG, RetargetOptions(device="cpu"))
    assert np.array_equal(out[0], again[0])
