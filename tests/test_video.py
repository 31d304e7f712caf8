"""Tests for vgpnn.video: round trips through every format, conversions, trimming, errors."""

import os
import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from vgpnn import video
from vgpnn.errors import ConfigError, InputError, OutputError
from vgpnn.video import Clip, probe_clip, read_clip, write_video

SHARED_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "clips"
BUNNY = SHARED_CLIPS / "bunny_audio.mp4"


def moving_square(frame_count=8, height=32, width=48):
    """Dark frames with a bright 8x8 square that moves 4 pixels right per frame."""
    frames = np.full((frame_count, height, width, 3), 20, dtype=np.uint8)
    for index in range(frame_count):
        frames[index, 8:16, 4 * index : 4 * index + 8] = (240, 200, 60)
    return frames


def square_column(frame: np.ndarray) -> int:
    """Left edge of the bright square, recovered from a decoded frame."""
    brightness = frame[..., 0].max(axis=0)
    return int(np.argmax(brightness > 128))


def leftovers(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def needs_shared_clips():
    if not BUNNY.is_file():
        pytest.skip(f"sample clips not found at {SHARED_CLIPS}")


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("extension", [".mp4", ".mov", ".mkv"])
def test_h264_round_trip_keeps_count_size_order_and_exact_fps(tmp_path, extension):
    frames = moving_square()
    path = write_video(tmp_path / f"clip{extension}", frames, Fraction(30000, 1001))
    clip = read_clip(path)
    assert isinstance(clip, Clip) and clip.kind == "video" and clip.path == path
    assert clip.frames.shape == (8, 32, 48, 3) and clip.frames.dtype == np.uint8
    assert clip.frames.flags.c_contiguous
    assert clip.fps == Fraction(30000, 1001)
    assert clip.original_frame_count == 8 and clip.original_size == (32, 48)
    assert not clip.has_audio
    assert [square_column(frame) for frame in clip.frames] == [4 * i for i in range(8)]
    assert np.abs(clip.frames.astype(int) - frames).mean() < 3


def test_odd_size_is_padded_to_even_by_repeating_the_edge(tmp_path):
    frames = moving_square(height=33, width=47)
    frames[:, -1, :] = (0, 0, 255)  # a blue last row, so the padded row must be blue too
    clip = read_clip(write_video(tmp_path / "odd.mp4", frames, 10))
    assert clip.frames.shape == (8, 34, 48, 3)
    assert clip.frames[:, -1, 8:40, 2].mean() > 200 and clip.frames[:, -1, 8:40, 0].mean() < 60


def test_gif_round_trip(tmp_path):
    frames = moving_square()
    path = write_video(tmp_path / "clip.gif", frames, Fraction(10))
    with Image.open(path) as image:
        assert image.info["loop"] == 0 and image.info["duration"] == 100
    clip = read_clip(path)
    assert clip.kind == "video" and clip.fps == 10
    assert clip.frames.shape == (8, 32, 48, 3)
    assert [square_column(frame) for frame in clip.frames] == [4 * i for i in range(8)]


def test_gif_delays_keep_the_total_duration_at_30_fps(tmp_path):
    path = write_video(tmp_path / "clip.gif", moving_square(frame_count=6), Fraction(30))
    delays = []
    with Image.open(path) as image:
        for index in range(image.n_frames):
            image.seek(index)
            delays.append(image.info["duration"])
    assert sum(delays) == 200 and set(delays) == {30, 40}


def test_png_folder_round_trip_is_lossless(tmp_path):
    frames = moving_square(frame_count=3)
    path = write_video(tmp_path / "nested" / "frames", frames, None)
    assert leftovers(path) == ["0001.png", "0002.png", "0003.png"]
    clip = read_clip(path, frames_fps=Fraction(24))
    assert clip.kind == "frames" and clip.fps == 24
    np.testing.assert_array_equal(clip.frames, frames)


def test_trailing_slash_means_folder(tmp_path):
    path = write_video(f"{tmp_path / 'out.v'}/", moving_square(frame_count=2), 10)
    assert path.is_dir() and leftovers(path) == ["0001.png", "0002.png"]


@pytest.mark.parametrize("pattern", ["{}.png", "frame_{:04d}.png"])
def test_frame_folder_is_read_in_natural_order(tmp_path, pattern):
    numbers = list(range(1, 13))
    random.Random(0).shuffle(numbers)  # create files out of order, too
    for number in numbers:
        Image.new("RGB", (6, 4), (number * 20, 0, 0)).save(tmp_path / pattern.format(number))
    (tmp_path / "notes.txt").write_text("not a frame")
    clip = read_clip(tmp_path)
    assert clip.fps == Fraction(10) and clip.original_frame_count == 12
    assert [int(frame[0, 0, 0]) for frame in clip.frames] == [n * 20 for n in range(1, 13)]


def test_single_image_read_and_write(tmp_path):
    frame = moving_square(frame_count=1, height=21, width=31)
    path = write_video(tmp_path / "still.png", frame, None)
    clip = read_clip(path)
    assert clip.kind == "image" and clip.fps is None and clip.original_frame_count == 1
    np.testing.assert_array_equal(clip.frames, frame)  # images keep odd sizes
    with pytest.raises(ConfigError, match="expected 1 frame"):
        write_video(tmp_path / "two.png", moving_square(frame_count=2), None)


# --- pixel formats ----------------------------------------------------------------------------


def test_grayscale_rgba_palette_and_16_bit_become_8_bit_rgb(tmp_path):
    Image.new("L", (4, 2), 77).save(tmp_path / "gray.png")
    Image.new("RGBA", (4, 2), (10, 20, 30, 0)).save(tmp_path / "rgba.png")
    orange = Image.new("RGB", (4, 2), (200, 100, 0))
    orange.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "palette.png")
    sixteen = np.array([[0, 257 * 128, 65535, 65535]], dtype=np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as deep:
        assert deep.mode.startswith("I")

    def pixels(name):
        frames = read_clip(tmp_path / name).frames
        assert frames.dtype == np.uint8 and frames.shape[-1] == 3
        return frames[0]

    assert (pixels("gray.png") == 77).all()
    assert (pixels("rgba.png") == (10, 20, 30)).all()
    assert (pixels("palette.png") == (200, 100, 0)).all()
    assert pixels("deep.png")[0, :, 0].tolist() == [0, 128, 255, 255]  # scaled, not clipped


def test_exif_rotated_frames_are_read_upright(tmp_path):
    for index in range(2):
        image = Image.new("RGB", (40, 30), (index * 100, 0, 0))
        exif = image.getexif()
        exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
        image.save(tmp_path / f"{index}.jpg", exif=exif)
    assert read_clip(tmp_path).frames.shape == (2, 40, 30, 3)
    assert read_clip(tmp_path / "0.jpg").frames.shape == (1, 40, 30, 3)


def test_frames_of_different_sizes_are_refused(tmp_path):
    Image.new("RGB", (8, 6)).save(tmp_path / "1.png")
    Image.new("RGB", (8, 6)).save(tmp_path / "2.png")
    Image.new("RGB", (10, 6)).save(tmp_path / "3.png")
    with pytest.raises(InputError, match=r"'3\.png' is 6x10 but '1\.png' is 6x8"):
        read_clip(tmp_path)


# --- sizes and trimming ------------------------------------------------------------------------


def test_short_side_downscales_to_even_sizes_and_never_upscales(tmp_path):
    path = write_video(tmp_path / "big.mp4", moving_square(height=60, width=100), 10)
    clip = read_clip(path, short_side=25)
    assert clip.frames.shape[1:3] == (24, 42) and clip.original_size == (60, 100)
    assert read_clip(path, short_side=30).frames.shape[1:3] == (30, 50)
    assert read_clip(path, short_side=500).frames.shape[1:3] == (60, 100)


def test_short_side_on_an_image_keeps_odd_sizes(tmp_path):
    Image.new("RGB", (100, 60), (1, 2, 3)).save(tmp_path / "wide.jpg")
    clip = read_clip(tmp_path / "wide.jpg", short_side=25)
    assert clip.frames.shape == (1, 25, 42, 3)


def test_odd_native_frames_lose_one_row_and_column(tmp_path):
    for index in range(3):
        Image.new("RGB", (47, 33), (index, 0, 0)).save(tmp_path / f"{index}.png")
    clip = read_clip(tmp_path)
    assert clip.frames.shape == (3, 32, 46, 3) and clip.original_size == (33, 47)


def test_start_frame_and_max_frames_trim(tmp_path):
    path = write_video(tmp_path / "clip.mp4", moving_square(), 10)
    clip = read_clip(path, start_frame=2, max_frames=3)
    assert [square_column(frame) for frame in clip.frames] == [8, 12, 16]
    assert clip.original_frame_count == 8
    tail = read_clip(path, start_frame=6, max_frames=5)
    assert len(tail.frames) == 2
    with pytest.raises(InputError, match="has 8 frames"):
        read_clip(path, start_frame=8)


def test_start_frame_and_max_frames_trim_a_folder(tmp_path):
    write_video(tmp_path / "frames", moving_square(), 10)
    clip = read_clip(tmp_path / "frames", start_frame=5, max_frames=2)
    assert [square_column(frame) for frame in clip.frames] == [20, 24]
    with pytest.raises(InputError, match="has 8 frames"):
        read_clip(tmp_path / "frames", start_frame=9)


def test_bad_read_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="max_frames"):
        read_clip(tmp_path, max_frames=0)
    with pytest.raises(ConfigError, match="short_side"):
        read_clip(tmp_path, short_side=1)


def test_rotation_tag_is_applied_like_ffmpeg_does(tmp_path):
    path = tmp_path / "phone.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip("this PyAV cannot write a rotation tag (test_video_containers patches one)")
        stream.set_display_rotation(90)  # counterclockwise, as a phone held upright writes it
        for index, frame in enumerate(moving_square(frame_count=2)):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    clip = read_clip(path)
    assert clip.frames.shape == (2, 48, 32, 3) and clip.original_size == (48, 32)
    # The square at the top-left of the stored frame ends up bottom-left once turned.
    assert clip.frames[0, -8:, 8:16, 0].mean() > 200
    assert (probe_clip(path)["width"], probe_clip(path)["height"]) == (32, 48)


# --- probing -----------------------------------------------------------------------------------


def test_probe_reports_count_fps_size_and_kind(tmp_path):
    mp4 = write_video(tmp_path / "clip.mp4", moving_square(), Fraction(30000, 1001))
    info = probe_clip(mp4)
    assert (info["kind"], info["frames"], info["fps"]) == ("video", 8, Fraction(30000, 1001))
    assert (info["width"], info["height"], info["has_audio"]) == (48, 32, False)
    assert info["duration"] == pytest.approx(8 * 1001 / 30000, abs=0.02)
    mkv = write_video(tmp_path / "clip.mkv", moving_square(), 10)  # mkv states no frame count
    assert probe_clip(mkv)["frames"] == 8
    folder = write_video(tmp_path / "frames", moving_square(frame_count=4), None)
    assert (probe_clip(folder)["kind"], probe_clip(folder)["frames"]) == ("frames", 4)


# --- audio ---------------------------------------------------------------------------------------


def test_audio_is_copied_from_a_source_that_has_it(tmp_path):
    needs_shared_clips()
    clip = read_clip(BUNNY, short_side=64, max_frames=8)
    assert clip.has_audio and clip.frames.shape == (8, 64, 114, 3)
    assert clip.original_size == (360, 640) and clip.original_frame_count == 132
    path = write_video(tmp_path / "with_audio.mp4", clip.frames, clip.fps, audio_from=BUNNY)
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        assert container.streams.video[0].frames == 8
    assert read_clip(path).has_audio


def test_audio_from_a_silent_source_writes_video_only(tmp_path):
    silent = write_video(tmp_path / "silent.mp4", moving_square(), 10)
    path = write_video(tmp_path / "out.mp4", moving_square(), 10, audio_from=silent)
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 0 and len(container.streams.video) == 1


def test_truncated_video_returns_the_frames_that_decoded(tmp_path):
    needs_shared_clips()
    data = BUNNY.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    clip = read_clip(truncated, short_side=32)
    assert 0 < len(clip.frames) < 132


# --- errors --------------------------------------------------------------------------------------


def test_unreadable_inputs_raise_one_line_input_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    cases = {
        "missing.mp4": "no such file",
        "empty": "no image frames",
        "zero.mp4": "empty",
        "text.mp4": "not a video ffmpeg can decode",
    }
    for name, expected in cases.items():
        with pytest.raises(InputError, match=expected) as error:
            read_clip(tmp_path / name)
        assert "\n" not in str(error.value) and name in str(error.value)


def test_existing_output_is_left_untouched_without_overwrite(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"precious")
    with pytest.raises(OutputError, match="exists; pass overwrite=True"):
        write_video(path, moving_square(), 10)
    assert path.read_bytes() == b"precious"
    write_video(path, moving_square(), 10, overwrite=True)
    assert len(read_clip(path).frames) == 8
    assert leftovers(tmp_path) == ["clip.mp4"]


def test_overwriting_a_frame_folder_replaces_it_but_not_a_foreign_folder(tmp_path):
    folder = write_video(tmp_path / "frames", moving_square(frame_count=3), 10)
    write_video(folder, moving_square(frame_count=2), 10, overwrite=True)
    assert leftovers(folder) == ["0001.png", "0002.png"]
    assert leftovers(tmp_path) == ["frames"]
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="refusing to replace"):
        write_video(folder, moving_square(frame_count=2), 10, overwrite=True)
    assert (folder / "keep.txt").exists()


def test_unknown_extension_lists_the_supported_ones(tmp_path):
    with pytest.raises(OutputError, match=r"unknown extension '\.avi'.*\.mp4.*\.gif"):
        write_video(tmp_path / "clip.avi", moving_square(), 10)
    assert leftovers(tmp_path) == []


def test_bad_frames_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"\(T, H, W, 3\) uint8"):
        write_video(tmp_path / "clip.mp4", moving_square().astype(np.float32), 10)


@pytest.mark.parametrize("name", ["clip.mp4", "clip.gif", "frames"])
def test_a_failure_mid_write_leaves_nothing_behind(tmp_path, monkeypatch, name):
    calls = []
    real_pad, real_save = video._pad_to_even, video._save_image

    def fail_on_third_call(real):
        def wrapper(*args):
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("simulated crash")
            return real(*args)
        return wrapper

    monkeypatch.setattr(video, "_pad_to_even", fail_on_third_call(real_pad))
    monkeypatch.setattr(video, "_save_image", fail_on_third_call(real_save))
    monkeypatch.setattr(video.Image, "fromarray", fail_on_third_call(Image.fromarray))
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_video(tmp_path / name, moving_square(), 10)
    assert len(calls) == 3
    assert leftovers(tmp_path) == []


def test_outputs_get_normal_permissions_and_parents_are_created(tmp_path):
    path = write_video(tmp_path / "a" / "b" / "clip.mp4", moving_square(), 10)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
