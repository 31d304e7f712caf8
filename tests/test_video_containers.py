"""Real-world container facts, read as ffmpeg reads them: PyAV versions, display matrices,
anamorphic pixels, several video streams, cover art, raw streams, animated images, pipes."""

import struct
from fractions import Fraction

import av
import numpy as np
import pytest

from vgpnn import video
from vgpnn.errors import InputError
from vgpnn.video import probe_clip, read_clip, write_video


def pattern(frame_count=3, height=32, width=48):
    """Frames with a bright block in the top-left quarter and a ramp: every flip shows."""
    frames = np.zeros((frame_count, height, width, 3), np.uint8)
    frames[:, :, :, 1] = np.linspace(0, 120, width, dtype=np.uint8)[None, None, :]
    frames[:, :, :, 2] = np.linspace(0, 120, height, dtype=np.uint8)[None, :, None]
    frames[:, : height // 2, : width // 3, 0] = 255
    for index in range(frame_count):
        frames[index, -4:, 4 * index: 4 * index + 4] = 200
    return frames


# --- 1. PyAV 12 to 19 ---------------------------------------------------------------------------


def test_av_open_without_metadata_errors_keyword_like_pyav_19(tmp_path, monkeypatch):
    path = write_video(tmp_path / "clip.mp4", pattern(), 10)
    real_open = av.open

    def open_of_pyav_19(file, mode=None, format=None, options=None, container_options=None,
                        buffer_size=32768, timeout=None, io_open=None):
        return real_open(file, mode=mode, format=format, options=options,
                         container_options=container_options)

    monkeypatch.setattr(av, "open", open_of_pyav_19)
    if hasattr(video, "_open_options"):
        video._open_options.cache_clear()
    try:
        assert read_clip(path).frames.shape == (3, 32, 48, 3)
        assert probe_clip(path)["frames"] == 3
        out = write_video(tmp_path / "copy.mp4", pattern(), 10, audio_from=path)
        assert read_clip(out).frames.shape == (3, 32, 48, 3)
    finally:
        monkeypatch.undo()
        if hasattr(video, "_open_options"):
            video._open_options.cache_clear()


# --- 2. display matrices that mirror --------------------------------------------------------------


def encode(path, frames, rate=10, codec="libx264", format=None, sar=None):
    """Write ``frames`` with PyAV directly (not write_video), so tests control the stream."""
    with av.open(str(path), "w", format=format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if sar is not None:
            stream.codec_context.sample_aspect_ratio = sar
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    return path


def with_matrix(path, a, b, c, d, x=0, y=0):
    """Patch the display matrix of the (only) track header, ``tkhd``, of an mp4 in place.

    ISO 14496-12 stores a b u / c d v / x y w as 9 big-endian 32-bit fixed-point values: 16.16
    for a, b, c, d, x, y and 2.30 for u, v, w (0, 0, 1 here).
    """
    data = bytearray(path.read_bytes())
    at = data.index(b"tkhd") + 4
    version = data[at]
    matrix_at = at + 4 + (32 if version == 1 else 20) + 8 + 8
    values = [round(a * 65536), round(b * 65536), 0, round(c * 65536), round(d * 65536), 0,
              round(x * 65536), round(y * 65536), 1 << 30]
    assert struct.unpack(">9i", data[matrix_at:matrix_at + 36])[0] == 65536  # identity before
    data[matrix_at:matrix_at + 36] = struct.pack(">9i", *values)
    path.write_bytes(bytes(data))
    return path


def closest(decoded, candidates):
    """Name of the candidate (name -> frames) nearest to ``decoded`` by mean absolute error."""
    errors = {name: np.abs(decoded.astype(int) - frames.astype(int)).mean()
              for name, frames in candidates.items() if frames.shape == decoded.shape}
    return min(errors, key=errors.get), errors


ORIENTED = {
    "hflip": lambda f: np.flip(f, axis=2),
    "vflip": lambda f: np.flip(f, axis=1),
    "rotate180": lambda f: np.flip(f, axis=(1, 2)),
    "as stored": lambda f: f,
    "transpose": lambda f: f.swapaxes(1, 2),
    "antitranspose": lambda f: np.flip(f, axis=(1, 2)).swapaxes(1, 2),
    "clockwise": lambda f: np.rot90(f, -1, axes=(1, 2)),
    "counterclockwise": lambda f: np.rot90(f, 1, axes=(1, 2)),
}


@pytest.mark.parametrize("matrix, expected", [
    ((-1, 0, 0, 1), "hflip"),  # a mirror: ffmpeg's autorotate inserts hflip, not a half turn
    ((1, 0, 0, -1), "vflip"),
    ((-1, 0, 0, -1), "rotate180"),
    ((0, 1, 1, 0), "transpose"),  # 90 degrees with a mirror: transpose=cclock_flip
    ((0, -1, -1, 0), "antitranspose"),  # 270 degrees with a mirror: transpose=clock_flip
    ((0, 1, -1, 0), "clockwise"),  # a plain rotation (ffmpeg: transpose=clock)
    ((0, -1, 1, 0), "counterclockwise"),
])
def test_display_matrix_rotates_and_mirrors_like_ffmpeg_autorotate(tmp_path, matrix, expected):
    frames = pattern()
    path = with_matrix(encode(tmp_path / "clip.mp4", frames), *matrix)
    clip = read_clip(path)
    candidates = {name: orient(frames) for name, orient in ORIENTED.items()}
    name, errors = closest(clip.frames, candidates)
    assert name == expected, errors
    assert errors[expected] < 6  # lossy codec, but the pattern itself differs by far more
    probe = probe_clip(path)
    assert (probe["height"], probe["width"]) == clip.frames.shape[1:3] == clip.original_size


# --- 3. non-square pixels --------------------------------------------------------------------------


@pytest.mark.parametrize("sar, width", [(Fraction(2), 96), (Fraction(3, 4), 36)])
def test_anamorphic_pixels_are_resampled_to_square_keeping_the_height(tmp_path, sar, width):
    frames = pattern()
    path = encode(tmp_path / "anamorphic.mp4", frames, sar=sar)
    clip = read_clip(path)
    assert clip.frames.shape == (3, 32, width, 3) and clip.original_size == (32, width)
    # The picture is stretched, not padded or cropped: the bright block keeps its third.
    block = clip.frames[0, 4, :, 0] > 128
    assert abs(block.sum() - width / 3) <= 2
    probe = probe_clip(path)
    assert (probe["height"], probe["width"]) == (32, width)
    assert video.working_shape(probe) == clip.frames.shape[:3]
    assert video.working_shape(probe, short_side=16) == read_clip(path, short_side=16).frames.shape[:3]


# --- 4. several video streams, 5. cover art --------------------------------------------------------


def needs_disposition():
    if not hasattr(av.stream, "Disposition"):
        pytest.skip("this PyAV cannot write a stream disposition")


def set_disposition(stream, flag):
    try:
        stream.disposition = flag
    except TypeError:  # PyAV 14 to 17 take only the bits, as an int
        stream.disposition = flag.value


def test_the_default_video_stream_is_read_as_ffmpeg_picks_it(tmp_path):
    needs_disposition()
    path = tmp_path / "two.mkv"
    with av.open(str(path), "w") as container:
        first = container.add_stream("libx264", rate=10)
        second = container.add_stream("libx264", rate=10)
        (first.width, first.height), (second.width, second.height) = (48, 32), (32, 24)
        first.pix_fmt = second.pix_fmt = "yuv420p"
        # ffmpeg picks the largest picture unless another stream is marked default.
        set_disposition(first, av.stream.Disposition(0))
        set_disposition(second, av.stream.Disposition.default)
        for index in range(3):
            for stream, value in ((first, 30), (second, 220)):
                frame = av.VideoFrame.from_ndarray(
                    np.full((stream.height, stream.width, 3), value, np.uint8), format="rgb24")
                frame.pts = index
                container.mux(stream.encode(frame))
        container.mux(first.encode(None))
        container.mux(second.encode(None))
    clip = read_clip(path)
    assert clip.frames.shape == (3, 24, 32, 3)
    assert abs(int(clip.frames.mean()) - 220) < 8
    probe = probe_clip(path)
    assert (probe["width"], probe["height"], probe["frames"]) == (32, 24, 3)


def with_cover_art(path, format):
    """An audio file whose only video stream is a PNG marked as an attached picture."""
    with av.open(str(path), "w", format=format) as container:
        audio = container.add_stream("aac" if format == "mp4" else "libmp3lame", rate=22050)
        audio.layout = "mono"
        cover = container.add_stream("png")
        cover.width, cover.height, cover.pix_fmt = 48, 32, "rgb24"
        set_disposition(cover, av.stream.Disposition.attached_pic)
        picture = av.VideoFrame.from_ndarray(pattern(1)[0], format="rgb24")
        picture.pts = 0
        container.mux(cover.encode(picture))
        container.mux(cover.encode(None))
        for index in range(8):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.float32), format="fltp",
                                                 layout="mono")
            samples.sample_rate, samples.pts = 22050, index * 1152
            container.mux(audio.encode(samples))
        container.mux(audio.encode(None))
    return path


@pytest.mark.parametrize("name, format", [("song.m4a", "mp4"), ("song.mp3", "mp3")])
def test_cover_art_of_an_audio_file_is_not_a_video(tmp_path, name, format):
    needs_disposition()
    path = with_cover_art(tmp_path / name, format)
    for read in (read_clip, probe_clip):
        with pytest.raises(InputError) as caught:
            read(path)
        message = str(caught.value)
        assert "has no video stream, only cover art" in message and "expected a video" in message
        assert "\n" not in message and str(path) in message


# --- 6. raw elementary streams ----------------------------------------------------------------------


def test_raw_h264_stream_has_the_rate_ffmpeg_uses_and_is_read_without_seeking(tmp_path):
    frames = pattern(6)
    path = encode(tmp_path / "clip.h264", frames, rate=10, format="h264")
    # A raw stream has no timestamps. Its demuxer states 25 fps (avg_frame_rate, the default of
    # its -framerate option) and the field rate 20 (r_frame_rate); the ffmpeg command line reads
    # it at av_guess_frame_rate, which takes the 10 fps that x264 wrote into the SPS (VUI
    # timing). So does ffprobe's "10 fps" in its stream line.
    with av.open(str(path)) as container:
        assert container.streams.video[0].guessed_rate == 10
    clip = read_clip(path)
    assert clip.fps == 10 and clip.frames.shape == (6, 32, 48, 3)
    probe = probe_clip(path)
    assert (probe["fps"], probe["frames"], probe["width"], probe["height"]) == (10, 6, 48, 32)
    assert probe["duration"] == pytest.approx(0.6)
    trimmed = read_clip(path, start_frame=1, max_frames=2)
    assert trimmed.frames.shape[0] == 2 and trimmed.original_frame_count == 6


# --- 7. animated PNG and WebP -----------------------------------------------------------------------


def animated(path, frames, durations, **options):
    from PIL import Image
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0,
                   **options)
    return path


@pytest.mark.parametrize("name, options", [("clip.png", {}), ("clip.webp", {"lossless": True})])
def test_animated_png_and_webp_are_videos(tmp_path, name, options):
    from PIL import features
    if name.endswith(".webp") and not features.check("webp"):
        pytest.skip("Pillow without WebP")
    frames = pattern(4)
    path = animated(tmp_path / name, frames, [40] * 4, **options)
    clip = read_clip(path)
    assert (clip.kind, clip.fps, clip.original_frame_count) == ("video", 25, 4)
    assert clip.frames.shape == (4, 32, 48, 3)
    assert np.array_equal(clip.frames, frames)  # whole frames, lossless
    probe = probe_clip(path)
    assert (probe["kind"], probe["frames"], probe["fps"], probe["width"], probe["height"]) == (
        "video", 4, 25, 48, 32)
    assert probe["duration"] == pytest.approx(0.16)
    assert not video.is_variable_frame_rate(path)
    from vgpnn.inputs import input_kind
    assert input_kind(path) == "video"  # so the CLI names its outputs .mp4, not one image
    part = read_clip(path, start_frame=1, max_frames=2, short_side=16)
    assert part.frames.shape == (2, 16, 24, 3) and part.original_frame_count == 4
    assert video.working_shape(probe, start_frame=1, max_frames=2, short_side=16) == (2, 16, 24)
    # Unequal delays give the average rate, like a variable-frame-rate video.
    uneven = animated(tmp_path / ("uneven" + path.suffix), frames, [100, 100, 100, 300], **options)
    assert read_clip(uneven).fps == Fraction(20, 3) == probe_clip(uneven)["fps"]
    assert video.is_variable_frame_rate(uneven)


def test_apng_frames_are_composited_whole(tmp_path):
    from PIL import Image, PngImagePlugin
    base = Image.new("RGBA", (48, 32), (0, 0, 255, 255))
    patch = Image.new("RGBA", (48, 32), (0, 0, 0, 0))  # transparent except one square
    patch.paste((255, 0, 0, 255), (0, 0, 8, 8))
    path = tmp_path / "blend.png"
    base.save(path, save_all=True, append_images=[patch], duration=100,
              blend=PngImagePlugin.Blend.OP_OVER, disposal=PngImagePlugin.Disposal.OP_NONE)
    clip = read_clip(path)
    assert clip.frames.shape == (2, 32, 48, 3)
    assert tuple(clip.frames[1, 20, 20]) == (0, 0, 255)  # the first frame shows through
    assert tuple(clip.frames[1, 2, 2]) == (255, 0, 0)


def test_a_still_webp_or_png_stays_an_image(tmp_path):
    from PIL import Image
    for name in ("still.png", "still.webp"):
        Image.fromarray(pattern(1)[0]).save(tmp_path / name)
        assert read_clip(tmp_path / name).kind == probe_clip(tmp_path / name)["kind"] == "image"


# --- 8. pipes and FIFOs ------------------------------------------------------------------------------


def fifo_fed_with(tmp_path, data, name="pipe.mp4"):
    """A FIFO and a thread that writes ``data`` into it once (each reader connects once)."""
    import os
    import threading
    fifo = tmp_path / name
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as writer:  # blocks until the reader opens its end
            writer.write(data)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return fifo, thread


@pytest.fixture()
def private_tmp(tmp_path, monkeypatch):
    """Temporary copies go to a folder of the test's own, to check that none is left behind."""
    import tempfile
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_fifo_is_read_once_through_a_hidden_copy(tmp_path, private_tmp):
    source = write_video(tmp_path / "clip.mp4", pattern(4), 10)
    fifo, thread = fifo_fed_with(tmp_path, source.read_bytes())
    clip = read_clip(fifo)
    thread.join(5)
    assert clip.frames.shape == (4, 32, 48, 3) and clip.fps == 10 and clip.path == fifo
    # Matroska states no frame count: probing decodes once for the size, again to count, and
    # noise makes the file too big for FFmpeg's read buffer to fake a seek back on the pipe.
    noise = np.random.default_rng(0).integers(0, 256, (4, 96, 128, 3), dtype=np.uint8)
    mkv = write_video(tmp_path / "clip.mkv", noise, 10)
    fifo, thread = fifo_fed_with(tmp_path, mkv.read_bytes(), "probe.mkv")
    probe = probe_clip(fifo)
    thread.join(5)
    assert (probe["frames"], probe["width"], probe["path"]) == (4, 128, fifo)
    fifo, thread = fifo_fed_with(tmp_path, mkv.read_bytes(), "vfr.mkv")
    assert video.is_variable_frame_rate(fifo) is False
    thread.join(5)
    assert list(private_tmp.iterdir()) == []


def test_a_raw_stream_on_a_pipe_and_errors_name_the_pipe(tmp_path, private_tmp):
    raw = encode(tmp_path / "clip.h264", pattern(6), rate=10, format="h264")
    fifo, thread = fifo_fed_with(tmp_path, raw.read_bytes(), "raw.h264")
    clip = read_clip(fifo)
    thread.join(5)
    assert clip.fps == 10 and clip.frames.shape[0] == 6
    fifo, thread = fifo_fed_with(tmp_path, b"", "empty.mp4")
    with pytest.raises(InputError) as caught:
        read_clip(fifo)
    thread.join(5)
    assert f"'{fifo}'" in str(caught.value) and "empty" in str(caught.value)
    assert list(private_tmp.iterdir()) == []


def test_an_endless_stream_is_refused_past_the_copy_limit_and_leaves_no_copy(tmp_path, private_tmp, monkeypatch):
    """``vgpnn generate /dev/zero`` or a live feed: the copy stops at the limit, not at a full disk."""
    import os
    import threading
    monkeypatch.setattr(video, "STREAM_COPY_LIMIT", 3 << 20)
    fifo = tmp_path / "live.mp4"
    os.mkfifo(fifo)

    def feed_forever():
        try:
            with open(fifo, "wb") as writer:
                while True:
                    writer.write(bytes(1 << 16))
        except BrokenPipeError:  # the reader gave up: what is expected
            pass

    thread = threading.Thread(target=feed_forever, daemon=True)
    thread.start()
    with pytest.raises(InputError) as caught:
        read_clip(fifo)
    thread.join(5)
    assert f"cannot read '{fifo}'" in str(caught.value) and "without ending" in str(caught.value)
    assert list(private_tmp.iterdir()) == []


def test_cli_generate_and_info_read_a_fifo(tmp_path, private_tmp):
    pytest.importorskip("torch", reason="the command line synthesises with torch; CI runs this again with it")
    from click.testing import CliRunner

    from vgpnn.cli import main
    source = write_video(tmp_path / "clip.mp4", pattern(4), 10)
    fifo, thread = fifo_fed_with(tmp_path, source.read_bytes())
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(main, ["generate", str(fifo), "-o", str(out), "--seed", "1",
                                       "--iterations", "1", "--size", "native", "-q"],
                                catch_exceptions=False)
    thread.join(5)
    assert result.exit_code == 0, result.output
    assert read_clip(out).frames.shape == (4, 32, 48, 3)
    fifo2, thread = fifo_fed_with(tmp_path, source.read_bytes(), "info.mp4")
    result = CliRunner().invoke(main, ["info", str(fifo2), "--json"], catch_exceptions=False)
    thread.join(5)
    assert result.exit_code == 0, result.output
    import json
    entry = json.loads(result.stdout)[0]
    assert (entry["input"], entry["frames"], entry["fps"]) == (str(fifo2), 4, "10")
    assert list(private_tmp.iterdir()) == []


def test_sigterm_ends_generate_blocked_on_a_fifo_with_no_writer(tmp_path):
    pytest.importorskip("torch", reason="the command line synthesises with torch; CI runs this again with it")
    import os
    import signal
    import subprocess
    import sys
    import time
    fifo = tmp_path / "never.mp4"
    os.mkfifo(fifo)
    private = tmp_path / "tmp"
    private.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "vgpnn", "generate", str(fifo), "-o",
                                str(tmp_path / "out.mp4"), "--size", "native"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "TMPDIR": str(private)},
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        # The hidden copy is created just before the FIFO is opened, which then blocks for good
        # (no writer ever comes). Wait for it: torch takes a while to import.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None and not any(private.iterdir()):
            time.sleep(0.05)
        if process.poll() is not None or not any(private.iterdir()):
            process.kill()
            pytest.fail("the command never started copying the FIFO: "
                        + process.communicate(timeout=5)[1].decode()[-500:])
        time.sleep(0.5)
        assert process.poll() is None  # still blocked
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, stderr.decode()
    assert b"interrupted" in stderr and b"Traceback" not in stderr
    assert list(private.iterdir()) == []  # the copy is removed


# --- 9. Pillow's decompression-bomb warning ----------------------------------------------------------


def test_a_large_photo_reads_without_a_pillow_warning_and_a_bomb_is_one_line(tmp_path, monkeypatch):
    import warnings

    from PIL import Image
    path = tmp_path / "photo.png"
    Image.fromarray(pattern(1)[0]).save(path)  # 48 x 32 = 1536 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # over the limit, under twice it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        assert read_clip(path).frames.shape == (1, 32, 48, 3)
        assert probe_clip(path)["width"] == 48
        assert read_clip(path, short_side=16).frames.shape == (1, 16, 24, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # over twice the limit: Pillow refuses
    with pytest.raises(InputError) as caught:
        read_clip(path)
    message = str(caught.value)
    assert "too big to decode safely" in message and "\n" not in message and str(path) in message


def test_a_link_that_leads_nowhere_says_why(tmp_path):
    (tmp_path / "a.mp4").symlink_to(tmp_path / "b.mp4")
    (tmp_path / "b.mp4").symlink_to(tmp_path / "a.mp4")
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    for read in (read_clip, probe_clip):
        with pytest.raises(InputError, match="too many levels of symbolic links"):
            read(tmp_path / "a.mp4")
        with pytest.raises(InputError, match="a symbolic link to nothing"):
            read(tmp_path / "dangling.mp4")
