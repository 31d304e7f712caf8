"""Keyframe propagation: the guided window search, the library (keys, blend, mask, motion,
determinism) and `vgpnn propagate` end to end with its one-line errors."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import error_lines, smooth_frames
from vgpnn import kernels
from vgpnn.apps.guided_search import AppearanceIndex, open_ties, position_tied, window_search
from vgpnn.apps.propagate import PropagateOptions, propagate
from vgpnn.errors import ConfigError
from vgpnn.video import read_clip, write_video

CPU = PropagateOptions(device="cpu")


def moving_square(frames=8, height=40, width=56, step=2, side=12):
    """A bright textured square moving right by ``step`` pixels a frame over a darker still
    texture; returns the clip and the square's top-left column per frame."""
    background = smooth_frames(1, height, width, seed=1)[0] // 3
    square = 128 + smooth_frames(1, side, side, seed=2)[0] // 2
    clip, lefts = [], []
    for t in range(frames):
        frame = background.copy()
        left = 4 + step * t
        frame[14:14 + side, left:left + side] = square
        clip.append(frame)
        lefts.append(left)
    return np.stack(clip), lefts


def red(frames):
    """(T, H, W) bool: where a clip is painted pure red."""
    return (frames[..., 0] > 200) & (frames[..., 1] < 60) & (frames[..., 2] < 60)


# -- the search ------------------------------------------------------------------------------

def test_window_search_finds_a_shift_the_prediction_missed():
    key = torch.from_numpy(smooth_frames(1, 48, 64, seed=3)[0]).permute(2, 0, 1).float() / 255
    target = torch.roll(key, shifts=(2, -3), dims=(1, 2))  # target pixel p shows key pixel p - (2, -3)
    ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(64.0), indexing="ij")
    prediction = torch.stack([xs, ys])  # "no motion": wrong by (+3, -2)
    matches, distance = window_search(target, key, prediction, radius=3, patch=7, position_weight=0.01)
    inner = (slice(8, -8), slice(8, -8))
    assert torch.equal(matches[0][inner], xs[inner] + 3) and torch.equal(matches[1][inner], ys[inner] - 2)
    # Colours match exactly: what is left is the positional cost, 3^2 + 2^2 pixels at weight 0.01.
    assert torch.allclose(distance[inner], torch.full_like(distance[inner], 0.01**2 * 13), atol=1e-6)


@pytest.mark.skipif(not kernels.available(kernels.NUMBA), reason="needs numba")
@pytest.mark.parametrize("with_tie", [False, True])
def test_the_compiled_window_search_scores_as_the_torch_one_does(monkeypatch, with_tie):
    generator = torch.Generator().manual_seed(11)
    key = torch.rand(6, 30, 44, generator=generator)
    target = torch.rand(6, 26, 40, generator=generator)
    prediction = torch.rand(2, 26, 40, generator=generator) * torch.tensor([43.0, 29.0]).view(2, 1, 1)
    candidates = [torch.stack([torch.randint(0, 44, (26, 40), generator=generator),
                               torch.randint(0, 30, (26, 40), generator=generator)]) for _ in range(3)]
    tied = torch.rand(30, 44, generator=generator) if with_tie else None
    search = lambda: window_search(target, key, prediction, 2, 3, 0.3, candidates, tied)
    by_kernel = search()
    monkeypatch.setattr(kernels, "window_search", lambda *args: None)  # the torch oracle
    by_torch = search()
    assert torch.allclose(by_kernel[1], by_torch[1], rtol=1e-5)
    assert torch.equal(by_kernel[0], by_torch[0])


def test_open_ties_removes_thin_rims_and_keeps_painted_areas():
    tied = torch.zeros(20, 20)
    tied[3, 2:18] = 1  # a one-pixel rim
    tied[8:10, 2:18] = 1  # two pixels wide
    tied[12:17, 5:10] = 1  # a 5x5 patch of paint
    opened = open_ties(tied)
    assert opened[:11].sum() == 0 and torch.equal(opened[12:17, 5:10], torch.ones(5, 5))
    assert opened.sum() == 25


def test_appearance_index_finds_each_pixel_by_its_features():
    features = torch.rand(5, 24, 30, generator=torch.Generator().manual_seed(4))
    index = AppearanceIndex(features)
    order = torch.randperm(30, generator=torch.Generator().manual_seed(5))
    (field,) = index.candidates(features[:, :, order], 1)  # the key's columns shuffled
    assert torch.equal(field[0], order.view(1, 30).expand(24, 30)) and torch.equal(field[1], torch.arange(24).view(24, 1).expand(24, 30))


def test_appearance_candidates_at_a_stride_move_the_neighbours_look_alike_along():
    features = torch.rand(5, 24, 30, generator=torch.Generator().manual_seed(4))
    index = AppearanceIndex(features)
    frame = features[:, 3:19, 5:29]  # a piece of the key: pixel (x, y) shows key (x + 5, y + 3)
    (field,) = index.candidates(frame, 1, stride=2)
    ys, xs = torch.meshgrid(torch.arange(16), torch.arange(24), indexing="ij")
    assert torch.equal(field[0], xs + 5) and torch.equal(field[1], ys + 3)  # every pixel, not only the grid's


def test_a_logo_on_a_plain_wall_is_tied_to_its_place_and_a_recolouring_is_not():
    wall = 0.5 + 0.01 * torch.rand(3, 30, 40, generator=torch.Generator().manual_seed(6))  # plain, a little noisy
    features = torch.cat([wall, torch.zeros(3, 30, 40)])
    index = AppearanceIndex(features)
    logo = wall.clone()
    logo[:, 10:16, 12:20] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    tied = position_tied(features, logo, index)
    assert float(tied[10:16, 12:20].min()) == 1.0  # the wall elsewhere looks the same and stayed plain
    assert float(tied[:, 25:].max()) < 0.05  # the wall's noise only
    recoloured = wall.flip(0)  # every pixel recoloured by its own colour: look-alikes got one edit
    assert float(position_tied(features, recoloured, index).max()) < 0.2


def test_an_edit_that_follows_colour_reaches_what_comes_into_view():
    # A blue square slides in from beyond the right border; the key shows only a blue bar on the
    # left, painted yellow. The square was never on the key: the flow cannot bring its edit, the
    # look of the key's blue bar does.
    background = smooth_frames(1, 40, 56, seed=7)[0] // 4
    frames = []
    for t in range(6):
        frame = background.copy()
        frame[5:35, 2:8] = (30, 40, 220)
        left = 56 - 4 * t
        frame[14:26, left:left + 10] = (30, 40, 220)
        frames.append(frame)
    frames = np.stack(frames)
    key = frames[0].copy()
    key[5:35, 2:8] = (240, 220, 20)
    out = propagate(frames, {0: key}, options=CPU)
    square = out[5, 16:24, 38:44].astype(int)
    assert (np.abs(square - (240, 220, 20)).max(axis=-1) < 40).mean() > 0.9


# -- the library -----------------------------------------------------------------------------

def test_output_has_the_clip_shape_and_each_key_at_its_frame():
    frames = smooth_frames(6, 32, 40)
    key = frames[2].copy()
    key[10:20, 10:20] = (255, 0, 0)
    out = propagate(frames, {2: key}, options=CPU)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[2], key)


def test_a_painted_dot_follows_a_moving_square():
    frames, lefts = moving_square()
    key = frames[0].copy()
    key[18:24, lefts[0] + 3:lefts[0] + 9] = (255, 0, 0)  # on the square, 3 px in from its left edge
    out = propagate(frames, {0: key}, options=CPU)
    for t in range(1, len(frames)):
        rows, columns = np.nonzero(red(out[t]))
        assert len(columns) > 20, t  # the dot is still there...
        assert abs(columns.mean() - (lefts[t] + 5.5)) < 1.0, t  # ...and moved with the square
        assert rows.min() >= 17 and rows.max() <= 24, t


def test_a_thin_stroke_on_a_plain_wall_stays_put_and_does_not_spread():
    frames, lefts = moving_square()
    frames[:, :10] = 90  # a plain wall above the square
    frames += np.random.default_rng(9).integers(0, 3, frames.shape, dtype=np.uint8)  # sensor noise, new each frame
    key = frames[0].copy()
    key[4, 6:50] = (255, 0, 0)  # a line one pixel wide, painted on the wall
    # Without the temporal guide, which would hold the line on this still wall by itself.
    out = propagate(frames, {0: key}, options=PropagateOptions(device="cpu", temporal_weight=0))
    for t in range(1, len(frames)):
        rows, columns = np.nonzero(red(out[t]))
        assert len(columns) > 15, t  # the line is still there (it thins), on its row...
        assert rows.min() >= 3 and rows.max() <= 5, t  # ...and nowhere else on the wall


def test_a_key_in_the_middle_reaches_back_and_forward():
    frames, lefts = moving_square()
    key = frames[4].copy()
    key[18:24, lefts[4] + 3:lefts[4] + 9] = (255, 0, 0)
    out = propagate(frames, {4: key}, options=CPU)
    for t in (0, 7):
        assert abs(np.nonzero(red(out[t]))[1].mean() - (lefts[t] + 5.5)) < 1.0


def test_two_keys_blend_without_a_jump():
    frames = np.repeat(smooth_frames(1, 32, 40)[:1], 9, axis=0)  # a still clip
    warm, cool = frames[0].copy(), frames[0].copy()
    warm[..., 0] = 255
    cool[..., 2] = 255
    out = propagate(frames, {0: warm, 8: cool}, options=CPU)
    assert np.array_equal(out[0], warm) and np.array_equal(out[8], cool)
    redness = out[..., 0].astype(float).mean((1, 2)) - out[..., 2].astype(float).mean((1, 2))
    steps = np.diff(redness)
    assert (steps < 0).all()  # from one key's look to the other's, frame by frame
    assert steps.min() > 3 * steps.mean()  # no step more than 3x the average: no jump


def test_outside_the_mask_the_output_is_the_input_bit_for_bit():
    frames, lefts = moving_square()
    key = frames[0].copy()
    key[...] = 255 - key  # edit everywhere...
    mask = np.zeros(frames.shape[1:3], bool)
    mask[:, :28] = True  # ...but only the left half may change
    out = propagate(frames, {0: key}, mask, options=CPU)
    assert np.array_equal(out[:, ~mask], frames[:, ~mask])
    assert np.abs(out[:, mask].astype(int) - frames[:, mask]).mean() > 50  # the edit is there inside


def test_the_same_inputs_give_the_same_output():
    frames, lefts = moving_square(frames=5)
    key = frames[0].copy()
    key[18:24, 7:13] = (255, 0, 0)
    first = propagate(frames, {0: key}, options=CPU)
    assert np.array_equal(first, propagate(frames, {0: key}, options=CPU))


@pytest.mark.parametrize("keys, mask, message", [
    ({}, None, "at least one keyframe"),
    ({5: np.zeros((24, 32, 3), np.uint8)}, None, "out of range"),
    ({0: np.zeros((20, 32, 3), np.uint8)}, None, "frame size"),
    ({0: np.zeros((24, 32, 3), np.uint8)}, np.zeros((24, 32), bool), "mask is empty"),
    ({0: np.zeros((24, 32, 3), np.uint8)}, np.ones((24, 30), bool), "the mask must be"),
])
def test_library_errors_name_what_was_expected(keys, mask, message):
    with pytest.raises(ConfigError, match=message):
        propagate(smooth_frames(3, 24, 32), keys, mask, options=CPU)


# -- the command line ------------------------------------------------------------------------

@pytest.fixture()
def clip_and_key(tmp_path):
    """A 6-frame, 40x56 clip at 12.5 fps, as a folder of PNG frames (lossless), and a key for frame 0."""
    frames, lefts = moving_square(frames=6)
    folder = tmp_path / "clip"
    write_video(folder, frames, Fraction(25, 2))
    key = frames[0].copy()
    key[18:24, lefts[0] + 3:lefts[0] + 9] = (255, 0, 0)
    Image.fromarray(key).save(tmp_path / "key.png")
    return folder, tmp_path / "key.png", frames


def test_cli_writes_every_frame_at_the_clip_rate(cli, tmp_path):
    frames, _ = moving_square(frames=6)
    clip = write_video(tmp_path / "clip.mp4", frames, Fraction(25, 2))
    key = read_clip(clip).frames[0].copy()
    key[18:24, 7:13] = (255, 0, 0)
    Image.fromarray(key).save(tmp_path / "key.png")
    result = cli("propagate", clip, "--key", f"0={tmp_path / 'key.png'}", "-o", tmp_path / "out.mp4",
                 "--report", tmp_path / "report.json", "--preview", tmp_path / "sheet.png", "-q")
    assert result.exit_code == 0, result.output
    out = read_clip(tmp_path / "out.mp4")
    assert out.frames.shape == frames.shape and out.fps == Fraction(25, 2)
    assert red(out.frames).sum(axis=(1, 2)).min() > 15  # the dot is in every frame
    assert (tmp_path / "sheet.png").is_file() and '"status": "written"' in (tmp_path / "report.json").read_text()


def test_cli_says_the_modelled_cost_before_work_and_warns_of_a_long_job(cli, tmp_path, clip_and_key, monkeypatch):
    from vgpnn import estimate
    folder, key, _ = clip_and_key
    # As if each pixel took far longer: the 6-frame clip now models as a long job.
    monkeypatch.setitem(estimate.PROPAGATION_COSTS, "cpu", 1.0)
    result = cli("propagate", folder, "--key", f"0={key}", "-o", tmp_path / "out.mp4", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "estimated ~" in result.stderr and "warning: this is a long job" in result.stderr


def test_propagation_cost_counts_the_frames_between_two_keys_twice():
    from vgpnn.estimate import PROPAGATION_COSTS, propagation_seconds
    per_frame = 4 * 5 * PROPAGATION_COSTS["cpu"]
    assert propagation_seconds((10, 4, 5), [0], "cpu") == pytest.approx(9 * per_frame)
    assert propagation_seconds((10, 4, 5), [2, 6], "cpu") == pytest.approx((8 + 3) * per_frame)


def test_cli_mask_keeps_the_outside_bit_for_bit(cli, tmp_path, clip_and_key):
    folder, _, frames = clip_and_key
    key = 255 - frames[0]
    Image.fromarray(key).save(tmp_path / "inverted.png")
    mask = np.zeros(frames.shape[1:3], np.uint8)
    mask[10:30, 5:30] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    result = cli("propagate", folder, "--key", f"0={tmp_path / 'inverted.png'}", "--mask", tmp_path / "mask.png",
                 "-o", tmp_path / "out/", "--format", "frames", "-q")  # lossless PNG frames
    assert result.exit_code == 0, result.output
    out = read_clip(tmp_path / "out" / "clip_propagated").frames
    outside = mask == 0
    assert np.array_equal(out[:, outside], frames[:, outside])
    assert not np.array_equal(out[:, ~outside], frames[:, ~outside])


def test_cli_accepts_a_full_size_key_at_a_smaller_working_size(cli, tmp_path, clip_and_key):
    folder, key, frames = clip_and_key
    result = cli("propagate", folder, "--key", f"0={key}", "--working-size", 20, "-o", tmp_path / "small.mp4", "-q")
    assert result.exit_code == 0, result.output
    assert read_clip(tmp_path / "small.mp4").frames.shape[1:3] == (20, 28)


def test_cli_output_does_not_depend_on_the_seed(cli, tmp_path, clip_and_key):
    folder, key, _ = clip_and_key
    for seed in (0, 7):
        assert cli("propagate", folder, "--key", f"0={key}", "--seed", seed, "-o", tmp_path / f"s{seed}/",
                   "--format", "frames", "-q").exit_code == 0
    assert np.array_equal(read_clip(tmp_path / "s0" / "clip_propagated").frames,
                          read_clip(tmp_path / "s7" / "clip_propagated").frames)


def test_cli_errors_are_one_line(cli, tmp_path, clip_and_key):
    folder, key, frames = clip_and_key
    Image.fromarray(frames[0][:30]).save(tmp_path / "short.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small_mask.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    out = ["-o", tmp_path / "out.mp4", "-q"]
    cases = [
        (["--key", f"9={key}"], 1, "keyframe 9 is out of range"),
        (["--key", f"0={tmp_path / 'short.png'}"], 1, "expected 56x40"),
        (["--key", f"0={key}", "--key", f"0={key}"], 2, "frame 0 is given twice"),
        (["--key", f"0={tmp_path / 'broken.png'}"], 1, "broken.png"),
        (["--key", f"0={tmp_path / 'missing.png'}"], 1, "missing.png"),
        (["--key", f"0={key}", "--mask", tmp_path / "small_mask.png"], 1, "mask"),
        (["--key", "zero=key.png"], 2, "FRAME=IMAGE"),
    ]
    for arguments, code, message in cases:
        result = cli("propagate", folder, *arguments, *out)
        lines = error_lines(result)
        assert result.exit_code == code, (arguments, result.output)
        assert len(lines) == 1 or code == 2, lines  # click's usage errors add a usage line
        assert message in result.stderr and "Traceback" not in result.stderr, (arguments, result.stderr)
        assert not (tmp_path / "out.mp4").exists()
