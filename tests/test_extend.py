"""Extension: the input's frames unchanged, the new frames after (or before) them, windows of bounded
size, no jump at the junction, seeds, and `vgpnn extend` end to end (length, fps, audio, errors)."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import vgpnn.apps.variations as variations
from vgpnn.apps.extend import JUMP, MAX_EASE, ExtendOptions, ease_junction, extend, typical_step, window_plan
from vgpnn.apps.timeline import plan_continuation
from vgpnn.config import SynthesisConfig
from vgpnn.errors import ConfigError, InputError
from vgpnn.video import read_clip, write_video

from conftest import FAST, error_lines, smooth_frames

FAST_CONFIG = SynthesisConfig(noise_sigma=0, iterations=1)


def panning_clip(frames=10, height=24, width=32, speed=1, seed=0):
    """A smooth texture sliding left ``speed`` pixels a frame: steady motion, no two frames alike."""
    wide = smooth_frames(1, height, width + speed * frames, seed)[0]
    return np.stack([wide[:, speed * t:speed * t + width] for t in range(frames)])


def steps(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change from each frame to the next."""
    return np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))


@pytest.fixture()
def engine_calls(monkeypatch):
    """The plans the extension hands the engine, in order."""
    plans = []
    original = variations.synthesize

    def recording(plan, progress=None):
        plans.append(plan)
        return original(plan, progress)
    monkeypatch.setattr(variations, "synthesize", recording)
    return plans


@pytest.mark.parametrize("backward", [False, True])
def test_the_input_frames_come_first_unchanged_then_new_frames(backward):
    clip = panning_clip()
    out = extend(clip, 23, FAST_CONFIG, ExtendOptions(backward=backward))[0]
    assert out.shape == (23, *clip.shape[1:]) and out.dtype == np.uint8
    kept, new = (out[-10:], out[:-10]) if backward else (out[:10], out[10:])
    assert np.array_equal(kept, clip)  # bit-exact
    # The new frames are not the input replayed nor a still picture.
    assert steps(new).mean() > 0.3 * steps(clip).mean()


def test_long_extensions_run_in_windows_of_bounded_size(engine_calls):
    clip = panning_clip(frames=8)
    out = extend(clip, 8 * 6, FAST_CONFIG)[0]
    windows = window_plan(8, 48, FAST_CONFIG)
    assert len(engine_calls) == windows.windows >= 5
    for plan in engine_calls:
        target = plan.target
        # Each engine call holds at most a clip's length of frames, whatever the output's length...
        assert target.shape[0] <= 8
        # ... whose first frames are known (fixed in full) and whose others are all new.
        fixed = target.fixed_mask.reshape(target.shape[0], -1)
        assert fixed[:windows.context].all() and not fixed[windows.context:].any()
        assert plan.source_shape == (8, 24, 32)  # patches always come from the whole input
    assert sum(plan.target.shape[0] - windows.context for plan in engine_calls) == 48 - 8
    assert np.array_equal(out[:8], clip)


def test_each_window_continues_the_frames_written_before_it(engine_calls):
    clip = panning_clip(frames=8)
    out = extend(clip, 30, FAST_CONFIG)[0]
    done = 8
    for plan in engine_calls:
        context = window_plan(8, 30, FAST_CONFIG).context
        known = (out[done - context:done].astype(np.float32) / 255).transpose(3, 0, 1, 2)
        assert torch.allclose(plan.target.fixed[:, :context], torch.from_numpy(known))
        done += plan.target.shape[0] - context
    assert done == 30


def test_no_jump_where_the_input_ends_on_a_smoothly_moving_clip():
    clip = panning_clip(frames=12)
    out = extend(clip, 30, SynthesisConfig(noise_sigma=0))[0]
    typical = np.median(steps(clip))
    junction = steps(out)[11]  # last input frame -> first new frame
    assert junction <= 2 * typical
    # It keeps moving: the new frames' mean step (the benchmark's motion figure; a still picture
    # scores about 0) is at least half the input's typical step.
    assert np.mean(steps(out[11:])) >= 0.5 * typical


def test_a_jump_where_the_input_ends_is_spread_over_the_first_new_frames():
    # A panorama panning 1 pixel a frame, then new frames that carry on 12 pixels further along:
    # a cut of about 12 typical steps at the junction.
    pan = panning_clip(frames=40, width=40)
    known, new = pan[:10], pan[22:40]
    typical = typical_step(known)
    assert typical == pytest.approx(np.median(steps(known)))
    eased = ease_junction(known, new, typical)
    path = steps(np.concatenate([known[-1:], eased]))
    changed = [i for i in range(len(new)) if not np.array_equal(eased[i], new[i])]
    assert steps(np.concatenate([known[-1:], new]))[0] > 5 * typical
    assert 1 <= len(changed) < MAX_EASE and changed == list(range(len(changed)))  # the first frames only
    assert path[0] <= 3 * typical and path.max() <= 3 * typical  # every step a few typical ones, not a cut
    # Frames that already go on smoothly are left alone.
    assert np.array_equal(ease_junction(known, pan[10:20], typical), pan[10:20])
    assert steps(np.concatenate([known[-1:], pan[10:11]]))[0] <= JUMP * typical


def test_a_continuation_lands_where_the_source_goes_on_from_the_last_frame():
    # A clip that repeats every 6 frames: after its last frame (like frame 5) comes frame 6's twin.
    clip = torch.from_numpy(np.concatenate([panning_clip(frames=6)] * 3)).permute(3, 0, 1, 2).float() / 255
    timeline, matched = plan_continuation(clip, clip[:, -1], 10)
    assert matched % 6 == 5 and timeline[0] % 6 == 0
    assert all(b == a + 1 for a, b in zip(timeline, timeline[1:]) if b != 0)


def test_the_same_seed_gives_the_same_output_and_another_seed_another():
    clip = panning_clip()
    noisy = SynthesisConfig(iterations=1)
    first = extend(clip, 24, noisy, ExtendOptions(seed=3, variations=2))
    again = extend(clip, 24, noisy, ExtendOptions(seed=4))
    assert np.array_equal(first[1], again[0])
    assert not np.array_equal(first[0][10:], first[1][10:])
    assert all(np.array_equal(out[:10], clip) for out in first)


def test_what_cannot_be_extended_is_refused():
    with pytest.raises(ConfigError, match="not longer than the input's 10 frames"):
        extend(panning_clip(), 10, FAST_CONFIG)
    with pytest.raises(InputError, match="still image"):
        extend(panning_clip(frames=1), 10, FAST_CONFIG)


def test_windows_share_the_new_frames_evenly():
    windows = window_plan(10, 10 + 37, SynthesisConfig())
    assert windows.context == 2 and sum(windows.new_frames) == 37
    assert max(windows.new_frames) - min(windows.new_frames) <= 1 and max(windows.new_frames) <= 10 - 2


# -- the command line ---------------------------------------------------------------------------

@pytest.fixture()
def clip_path(tmp_path):
    return write_video(tmp_path / "pan.mp4", panning_clip(), Fraction(10))


@pytest.mark.parametrize("backward", [False, True])
def test_cli_writes_the_asked_length_at_the_input_rate_and_keeps_the_input_frames(tmp_path, cli, clip_path,
                                                                                   backward):
    folder = tmp_path / "out"  # PNG frames: lossless, so the kept frames can be compared exactly
    result = cli("extend", clip_path, "--frames", 25, *(["--backward"] if backward else []),
                 "-o", folder, "--format", "frames", *FAST)
    assert result.exit_code == 0, result.stderr
    written = read_clip(folder / ("pan_extended_25f" + ("_backward" if backward else "")), short_side=None,
                        max_frames=None)
    source = read_clip(clip_path, short_side=None, max_frames=None).frames
    assert written.frames.shape == (25, *source.shape[1:])
    assert np.array_equal(written.frames[-10:] if backward else written.frames[:10], source)


def test_cli_duration_uses_the_clip_rate(tmp_path, cli, clip_path):
    out = tmp_path / "long.mp4"
    result = cli("extend", clip_path, "--duration", 2.5, "-o", out, *FAST)
    assert result.exit_code == 0, result.stderr
    written = read_clip(out, short_side=None, max_frames=None)
    assert len(written.frames) == 25 and written.fps == 10 and written.frames.shape[1:3] == (24, 32)


@pytest.mark.parametrize("args, code, message", [
    (["--frames", "10"], 1, "not longer than the input's 10 frames"),
    (["--duration", "0.5"], 1, "not longer than the input's 10 frames"),
    (["--duration", "-2"], 2, "--duration"),
    (["--duration", "nan"], 2, "not a finite number"),
    (["--frames", "0"], 2, "--frames"),
    ([], 2, "--frames N or --duration SECONDS"),
    (["--frames", "20", "--duration", "3"], 2, "--frames N or --duration SECONDS"),
])
def test_cli_mistakes_are_one_line_and_an_exit_status(tmp_path, cli, clip_path, args, code, message):
    result = cli("extend", clip_path, *args, "-o", tmp_path / "x.mp4", "-q", *FAST)
    assert result.exit_code == code
    # One error line (click's usage errors also print the usage and a pointer to --help).
    errors = [line for line in error_lines(result) if line.lower().startswith("error")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_cli_refuses_a_still_image(tmp_path, cli):
    image = write_video(tmp_path / "still.png", panning_clip(frames=1), None)
    result = cli("extend", image, "--frames", 20, "-o", tmp_path / "x.mp4", "-q", *FAST)
    assert result.exit_code == 1
    assert error_lines(result) == [f"error: {image}: cannot extend a still image: there is no motion to go on "
                                   "with; expected a video of at least 3 frames"]


BUNNY = Path(__file__).resolve().parents[2] / "shared" / "clips" / "bunny_audio.mp4"


@pytest.mark.skipif(not BUNNY.exists(), reason="needs the shared clip with audio")
def test_audio_stays_under_the_input_frames_forward_and_is_dropped_backward(tmp_path, cli):
    voiced = write_video(tmp_path / "voiced.mp4", panning_clip(), Fraction(10), audio_from=BUNNY)
    forward = cli("extend", voiced, "--frames", 20, "-o", tmp_path / "forward.mp4", *FAST)
    backward = cli("extend", voiced, "--frames", 20, "--backward", "-o", tmp_path / "backward.mp4", *FAST)
    assert forward.exit_code == 0 and backward.exit_code == 0
    with av.open(str(tmp_path / "forward.mp4")) as container:
        audio = container.streams.audio[0]
        packets = [p for p in container.demux(audio) if p.pts is not None]
        # The input's 1 s of sound, cut where the input's frames end; silence under the new ones.
        assert 0.9 <= float(max(p.pts + p.duration for p in packets) * audio.time_base) <= 1.1
    with av.open(str(tmp_path / "backward.mp4")) as container:
        assert len(container.streams.audio) == 0
    assert "audio not copied: with --backward" in backward.stderr


def test_free_voxels_can_start_from_the_guess_rather_than_a_fill():
    from vgpnn.plan import Source, SynthesisPlan, Target
    from vgpnn.synthesis import synthesize
    source = torch.from_numpy(panning_clip(frames=8)).permute(3, 0, 1, 2).float() / 255
    fixed_mask = torch.zeros(8, 24, 32, dtype=torch.bool)
    fixed_mask[:2] = True
    config = SynthesisConfig(noise_sigma=0, iterations=1, coarsest_frames=8)

    def run(free_start):
        target = Target((8, 24, 32), fixed=source, fixed_mask=fixed_mask, free_start=free_start,
                        start=lambda coarsest, full, shape, patch: coarsest)  # the source itself
        return synthesize(SynthesisPlan((Source(source),), target, (0,), config)).videos[0]

    # Started from the source's own frames, the free frames are the source's again; grown from
    # the 2 fixed frames they start still, and the pan does not come back.
    assert (run("guess") - source).abs().max() < 1e-5
    assert (run("fill") - source).abs().mean() > 0.01
    with pytest.raises(ValueError, match="free_start"):
        Target((8, 24, 32), free_start="noise")


def test_a_continuation_is_voted_like_a_target_in_one_piece():
    # Its free part is most of the target: the plain vote (blending across the timeline's jumps),
    # not inpainting's best-patch vote, which left every jump a hard cut.
    from vgpnn.apps.extend import continuation_target
    from vgpnn.patches import vote
    from vgpnn.plan import Target
    from vgpnn.synthesis import _fill_free_once
    known = torch.rand(3, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    target = continuation_target(known, 4, start=None)
    assert target.fill_vote == "consensus"
    with pytest.raises(ValueError, match="fill_vote"):
        Target((6, 8, 8), fill_vote="mean")
    values = torch.rand(3, 6, 8, 8, generator=torch.Generator().manual_seed(1))
    field = torch.randint(0, 4 * 4 * 4, (1, 4, 4, 4), generator=torch.Generator().manual_seed(2))
    free = ~target.fixed_mask
    box = (slice(0, 6), slice(0, 8), slice(0, 8))
    plain = _fill_free_once(values, field, free, target.fixed, box, (3, 5, 5), "median", best=False)
    expected = torch.where(free, vote(values, field, (6, 8, 8), (3, 5, 5), "median"), target.fixed[None])
    assert torch.equal(plain, expected)
    assert not torch.equal(_fill_free_once(values, field, free, target.fixed, box, (3, 5, 5), "median"), plain)


def test_each_window_starts_from_its_slice_of_the_whole_extensions_guess():
    # The window's guess is made from the part of the timeline that reaches it only (a long
    # extension's cost stays linear); it must equal the same frames of the whole guess, wipes
    # begun before the window included.
    from vgpnn.apps.extend import RAMP, _timeline_guess, _window_guess

    generator = torch.Generator().manual_seed(0)
    coarsest = torch.rand((3, 12, 5, 9), generator=generator)
    timeline = [11, 11, 4, 5, 6, 7, 0, 1, 2, 3, 8, 9, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3]
    context, engine = 2, ((3, 25, 5, 9), (3, 7, 7))
    whole = _timeline_guess(timeline, context, coarsest, coarsest, *engine)
    assert not torch.equal(whole, coarsest[:, timeline])  # the wipes are there to be sliced
    for first, size in [(0, 9), (7, 9), (14, 9), (RAMP + 1, 3), (len(timeline) - 4, 4)]:
        window = _window_guess(timeline, context, first, size, coarsest, coarsest, *engine)
        assert torch.equal(window, whole[:, first:first + size]), (first, size)
