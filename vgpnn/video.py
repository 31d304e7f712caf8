"""Read and write clips: video files, GIFs, folders of numbered frames and single images.

This is the only module that touches PyAV or Pillow; the rest of the package sees a clip as a
``(T, H, W, 3)`` uint8 RGB array plus the facts in :class:`Clip`.

Choices worth knowing (each measured: imageio's ffmpeg reader reports an unknown frame count
and pads odd sizes; only PyAV gives the exact rate; variable-rate files decode to different
frame counts through different readers):

- Videos and GIFs are decoded with PyAV, one frame at a time, and downscaled as they arrive, so
  a full-resolution clip is never held in memory. PyAV is also the only reader that gives the
  exact frame rate (``30000/1001`` stays a Fraction).
- Video and frame-folder clips always come out with even width and height, because H.264 in
  yuv420p cannot store odd sizes; a native odd size loses its last row or column.
- Every write goes to a hidden temporary next to the destination and is renamed into place at
  the end, so an interrupted or failed write never leaves a partial output behind. The
  temporary's name holds the writer's process id; a process killed outright (SIGKILL, power
  loss) cannot remove its temporary, so the next write of the same output removes those
  whose process is gone.

Container facts, read as the ffmpeg command line reads them:

- Video stream: the largest picture (width x height) wins, a stream marked default counting
  5 megapixels more; cover art (an attached picture) is never the video, and a file with
  nothing else (an .m4a or .mp3 with artwork) is refused as having no video stream.
- Orientation: the whole display matrix is applied like ffmpeg's autorotate: quarter turns,
  and the flips of a mirrored matrix (hflip, vflip, transpose, antitranspose). Other angles
  take the nearest quarter turn (ffmpeg turns by the exact angle and blackens the corners).
- Pixel shape: a non-square sample aspect ratio is resampled to square pixels by scaling the
  width, the height kept, so a clip looks as players show it; ``read_clip``, ``probe_clip``
  and ``working_shape`` all give that displayed size. Ratios beyond 1/10..10 are ignored.
- Frame rate: the average rate of the frames' timestamps; a raw elementary stream (.h264,
  .hevc), which has no timestamps, takes FFmpeg's guess from its own headers (the SPS timing),
  not the 25 its demuxer states; 25 when nothing says.
- Animated PNG and WebP are videos, read with Pillow as whole frames; their rate comes from
  the frame delays, exact when all are equal, the average rate otherwise (a 0 delay counts
  as 100 ms, as browsers show it). A still PNG or WebP is an image.
- Pipes: a FIFO, a pipe or a character device such as ``/dev/stdin`` is copied once, a chunk
  at a time in Python (so Ctrl-C and SIGTERM end a blocked wait), into a hidden temporary
  file in the temporary folder, which every later read uses and which is removed afterwards
  (:func:`seekable_input`); messages name the input as given. ``-`` is not read as stdin:
  name ``/dev/stdin``. Nothing is ever seeked back: a second pass reopens the file. A stream
  that goes on past ``STREAM_COPY_LIMIT`` bytes is refused (``/dev/zero``, a live feed) rather
  than filling the disk; a file has no such limit.
- Images: Pillow's decompression-bomb warning is silenced, since memory is checked from the
  working size; past Pillow's hard limit (twice ``Image.MAX_IMAGE_PIXELS``) an image is
  refused in one line.
- PyAV 12 to 19: differences are detected by feature (``metadata_errors``, side data,
  dispositions, rationals that may be PyAV 19's ``AVRational``), never by version number.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import secrets
import shutil
import stat
import struct
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vgpnn.errors import ConfigError, InputError, OutputError, VgpnnError

__all__ = ["Clip", "read_clip", "write_video", "probe_clip", "working_shape", "is_variable_frame_rate",
           "is_animated_image", "seekable_input"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_OUTPUT_EXTENSIONS = (".mp4", ".mov", ".mkv")
GIF_EXTENSION = ".gif"
DEFAULT_FRAMES_FPS = Fraction(10)
# Used when a file does not state its rate; 25 is ffmpeg's own fallback.
FALLBACK_VIDEO_FPS = Fraction(25)
H264_CRF = 18

_PILLOW_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
# Keyword arguments per format: results should not lose quality on the way out.
_PILLOW_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"lossless": True}}


@dataclass(frozen=True)
class Clip:
    """A decoded clip and what is known about the file it came from."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, C-contiguous
    fps: Fraction | None  # exact frame rate; None for a single image
    kind: str  # 'video' (GIF included), 'frames' (a folder of images) or 'image'
    path: Path  # what was read
    has_audio: bool  # the container has at least one audio stream
    original_size: tuple[int, int]  # (height, width) as displayed, before any downscale or crop
    original_frame_count: int  # frames in the file before start_frame / max_frames trimming
    stated_frame_count: int | None = None  # frames the container says it holds; more than
    # original_frame_count means the end of the file is missing or damaged


# --------------------------------------------------------------------------------------------
# Reading


def read_clip(
    path: str | os.PathLike,
    *,
    short_side: int | None = None,
    start_frame: int = 0,
    max_frames: int | None = None,
    frames_fps: Fraction = DEFAULT_FRAMES_FPS,
) -> Clip:
    """Read a video file, a folder of numbered image frames, or a single image.

    ``short_side`` downscales (never upscales) so the shorter side equals it; frames before
    ``start_frame`` are skipped and at most ``max_frames`` are kept. ``frames_fps`` is the
    rate given to a frame folder, which has none of its own. A video that is truncated part
    way returns the frames that decoded.
    """
    path = Path(path)
    _check_read_options(short_side, start_frame, max_frames, frames_fps)
    _check_exists(path)
    if _needs_copy(path):
        with seekable_input(path) as copy:
            clip = read_clip(copy, short_side=short_side, start_frame=start_frame,
                             max_frames=max_frames, frames_fps=frames_fps)
        return replace(clip, path=path)  # the copy is gone; what was read is the original
    if path.is_dir():
        fps = _as_fps(frames_fps, "frames_fps")
        return _read_frame_folder(path, short_side, start_frame, max_frames, fps)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        if is_animated_image(path):
            return _read_animated_image(path, short_side, start_frame, max_frames)
        return _read_single_image(path, short_side, start_frame)
    return _read_video_file(path, short_side, start_frame, max_frames)


def probe_clip(path: str | os.PathLike, *, frames_fps: Fraction = DEFAULT_FRAMES_FPS) -> dict:
    """Describe a clip cheaply, for listing: no more is decoded than the file leaves unsaid.

    Returns ``kind``, ``path``, ``frames``, ``fps`` (Fraction or None), ``width``, ``height``
    (upright as displayed, before any even-size crop), ``duration`` (seconds or None) and
    ``has_audio``. A video's first frame is decoded for its rotation tag; all frames are
    decoded only to count them when the container does not state the count (mkv, webm).
    """
    path = Path(path)
    _check_exists(path)
    if _needs_copy(path):
        with seekable_input(path) as copy:
            return probe_clip(copy, frames_fps=frames_fps) | {"path": path}
    if path.is_dir():
        frame_paths = _list_frame_files(path)
        width, height = _image_header_size(frame_paths[0])
        fps = _as_fps(frames_fps, "frames_fps")
        return _probe_result(path, "frames", len(frame_paths), fps, width, height,
                             float(len(frame_paths) / fps), False)
    if path.suffix.lower() in IMAGE_EXTENSIONS and is_animated_image(path):
        durations = _animation_durations(path)
        fps = _animation_fps(durations)
        width, height = _image_header_size(path)
        return _probe_result(path, "video", len(durations), fps, width, height,
                             float(sum(durations) / 1000), False)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        width, height = _image_header_size(path)
        return _probe_result(path, "image", 1, None, width, height, None, False)

    with _open_video(path) as (container, stream):
        fps = _stream_fps(container, stream)
        height, width = _probe_displayed_size(path, container, stream)
        stated_frames = stream.frames
        if stream.duration is not None and _rational(stream.time_base):
            duration = float(stream.duration * _rational(stream.time_base))
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = None
        has_audio = len(container.streams.audio) > 0
    # Counted on a fresh opening: a raw stream or a pipe copy cannot seek back to the start.
    frame_count = stated_frames or _count_decoded_frames(path)
    if duration is None:
        duration = float(frame_count / fps)
    return _probe_result(path, "video", frame_count, fps, width, height, duration, has_audio)


def _check_exists(path: Path) -> None:
    """One line for an input that is not there; a link says why it leads nowhere."""
    if path.exists():
        return
    if path.is_symlink():
        try:
            os.stat(path)
        except OSError as error:  # ELOOP for a loop of links, ENOENT for a dangling one
            reason = "a symbolic link to nothing" if isinstance(error, FileNotFoundError) else _reason(error)
            raise InputError(f"cannot read '{path}': {reason}") from error
    raise InputError(f"cannot read '{path}': no such file or folder")


def working_shape(probe: dict, *, short_side: int | None = None, start_frame: int = 0,
                  max_frames: int | None = None) -> tuple[int, int, int]:
    """(frames, height, width) that :func:`read_clip` with these options returns for the clip
    that :func:`probe_clip` described, without decoding it."""
    _check_read_options(short_side, start_frame, max_frames, DEFAULT_FRAMES_FPS)
    height, width = _scaled_size(probe["height"], probe["width"], short_side,
                                 even=probe["kind"] != "image", path=probe["path"])
    frames = max(0, probe["frames"] - start_frame)
    return (frames if max_frames is None else min(frames, max_frames)), height, width


@contextmanager
def seekable_input(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a path that can be opened again and again: ``path`` itself for a regular file, a
    folder or a missing name (reported by the reader); for a pipe, a FIFO or a character device
    such as ``/dev/stdin``, a hidden temporary copy (see "Container facts"), removed on exit.
    Errors raised inside name ``path``, not the copy.
    """
    path = Path(path)
    if not _needs_copy(path):
        yield path
        return
    copy = _copy_stream(path)
    try:
        yield copy
    except VgpnnError as error:
        if str(copy) not in str(error):
            raise
        raise type(error)(str(error).replace(str(copy), str(path))) from error
    finally:
        copy.unlink(missing_ok=True)


def _needs_copy(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


_COPY_CHUNK = 1 << 20
# Bytes of a streamed input copied at most. Far above any short clip's file (a minute of 1080p
# at 50 Mbit/s is under 400 MB), and it stops an endless stream (``/dev/zero``, a live feed)
# long before a disk fills.
STREAM_COPY_LIMIT = 2 << 30


def _copy_stream(path: Path) -> Path:
    """Copy a pipe's bytes into a hidden temporary file (same extension) and return its path.

    Done in Python, a chunk at a time, so that signal handlers run while it waits: opening a
    FIFO blocks until a writer connects, and a read blocks until data comes; both return to
    Python on a signal (PEP 475), where a handler that raises (Ctrl-C, the CLI's SIGTERM)
    ends the wait.
    """
    try:
        handle, name = tempfile.mkstemp(prefix=".vgpnn-input-", suffix=path.suffix.lower())
    except OSError as error:
        raise InputError(f"cannot read '{path}': no room for a copy of the stream "
                         f"({_reason(error)}); expected a writable temporary folder") from error
    copy = Path(name)
    try:
        with open(handle, "wb") as destination:
            try:
                source = os.open(path, os.O_RDONLY)
            except OSError as error:
                raise InputError(f"cannot read '{path}': {_reason(error)}") from error
            copied = 0
            try:
                while True:
                    try:
                        chunk = os.read(source, _COPY_CHUNK)
                    except OSError as error:
                        raise InputError(f"cannot read '{path}': {_reason(error)}") from error
                    if not chunk:
                        break
                    copied += len(chunk)
                    if copied > STREAM_COPY_LIMIT:
                        raise InputError(f"cannot read '{path}': the stream went on past "
                                         f"{STREAM_COPY_LIMIT >> 30} GiB without ending; expected a "
                                         f"finite video (save a longer one to a file and give its path)")
                    try:
                        destination.write(chunk)
                    except OSError as error:
                        raise InputError(f"cannot read '{path}': no room for a copy of the "
                                         f"stream ({_reason(error)}); expected free space in "
                                         f"'{copy.parent}'") from error
            finally:
                os.close(source)
    except BaseException:
        copy.unlink(missing_ok=True)
        raise
    return copy


def _probe_result(path, kind, frames, fps, width, height, duration, has_audio) -> dict:
    return {"path": path, "kind": kind, "frames": frames, "fps": fps, "width": width,
            "height": height, "duration": duration, "has_audio": has_audio}


def _check_read_options(short_side, start_frame, max_frames, frames_fps) -> None:
    if short_side is not None and (not _is_int(short_side) or short_side < 2):
        raise ConfigError(f"short_side must be an integer >= 2 or None, got {short_side!r}")
    if not _is_int(start_frame) or start_frame < 0:
        raise ConfigError(f"start_frame must be an integer >= 0, got {start_frame!r}")
    if max_frames is not None and (not _is_int(max_frames) or max_frames < 1):
        raise ConfigError(f"max_frames must be an integer >= 1 or None, got {max_frames!r}")
    _as_fps(frames_fps, "frames_fps")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _read_video_file(path: Path, short_side, start_frame, max_frames) -> Clip:
    with _open_video(path) as (container, stream):
        stated_frames = stream.frames or None
        fps = _stream_fps(container, stream)
        has_audio = len(container.streams.audio) > 0
        sample_aspect = _sample_aspect_ratio(stream)
        # The container's count is only a hint here: it sizes the buffer, it is not trusted.
        expected = max(stream.frames - start_frame, 1)
        if max_frames is not None:
            expected = min(expected, max_frames)
        collected = _FrameStack(expected)
        output_size = None
        seen = 0  # frames out of the decoder, kept or skipped
        reached_end = True
        demuxed = [0]
        for frame in _decode_frames(stream, container, demuxed):
            orientation = _orientation(frame)
            frame_size = _displayed_size(frame, orientation, sample_aspect)
            if output_size is None:
                original_size = frame_size
                output_size = _scaled_size(*frame_size, short_side, even=True, path=path)
            elif frame_size != original_size:
                raise InputError(
                    f"cannot read '{path}': frame {seen} is {frame_size[0]}x{frame_size[1]} but "
                    f"the first frame is {original_size[0]}x{original_size[1]}; "
                    "size changes within a video are not supported")
            seen += 1
            if seen <= start_frame:
                continue
            collected.append(_video_frame_to_rgb(frame, orientation, output_size))
            if max_frames is not None and len(collected) == max_frames:
                reached_end = False
                break
        if reached_end:
            original_frame_count = seen
        elif stream.frames:
            original_frame_count = stream.frames
        else:
            original_frame_count = max(seen, demuxed[0]) + _count_remaining_packets(container, stream)

    if seen == 0:
        raise _no_frame_decoded(path, stated_frames)
    if len(collected) == 0:
        raise InputError(f"cannot read '{path}': start_frame {start_frame} is past the end; "
                         f"the clip has {seen} frames (0 to {seen - 1})")
    return Clip(collected.result(), fps, "video", path, has_audio, original_size,
                original_frame_count, stated_frames)


@contextmanager
def _open_video(path: Path) -> Iterator[tuple]:
    """Open ``path`` with PyAV and yield (container, first video stream)."""
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"cannot read '{path}': the file is empty (0 bytes); {_EXPECTED_INPUT}")
    try:
        # Damaged metadata must not stop the frames from being read: PyAV decodes it strictly.
        container = _av_open(path)
    except av.FFmpegError as error:
        raise InputError(f"cannot read '{path}': " + _undecodable(path).replace("{}", _reason(error))) from error
    except OSError as error:
        raise InputError(f"cannot read '{path}': {_reason(error)}") from error
    try:
        stream = _pick_video_stream(path, container)
        stream.thread_type = "AUTO"
        yield container, stream
    finally:
        container.close()


# AVStream disposition bits (libavformat/avformat.h).
_DISPOSITION_DEFAULT = 0x0001
_DISPOSITION_ATTACHED_PIC = 0x0400
# Codecs of the still pictures that audio files carry as cover art.
_PICTURE_CODECS = ("mjpeg", "png", "bmp", "gif", "webp", "tiff", "jpeg2000")


def _pick_video_stream(path: Path, container):
    """The video stream the ffmpeg command line picks: the largest picture (width x height),
    with a bonus worth a 5-megapixel picture for the stream marked default; cover art (an
    attached picture) is never the video. Ties go to the first."""
    streams = list(container.streams.video)
    if not streams:
        raise InputError(f"cannot read '{path}': the file has no video stream (audio only?); "
                         f"{_EXPECTED_INPUT}")
    videos = [stream for stream in streams if not _is_attached_picture(stream)]
    if not videos:
        raise InputError(f"cannot read '{path}': the file has no video stream, only cover art (a "
                         f"still picture attached to audio); {_EXPECTED_INPUT}")

    def score(stream) -> int:
        context = stream.codec_context  # None for a codec FFmpeg does not know
        area = (getattr(context, "width", 0) or 0) * (getattr(context, "height", 0) or 0)
        return area + 5_000_000 * bool(_disposition(stream) & _DISPOSITION_DEFAULT)

    return max(videos, key=score)


def _disposition(stream) -> int:
    """The stream's disposition bits; 0 where PyAV does not expose them (before 14). PyAV 18
    gives an ``enum.Flag``; 14 to 17 their own flag type, which ``int()`` refuses but whose
    ``value`` is the bits."""
    flags = getattr(stream, "disposition", 0)
    try:
        return int(getattr(flags, "value", flags) or 0)
    except (TypeError, ValueError):
        return 0


def _is_attached_picture(stream) -> bool:
    if hasattr(stream, "disposition"):
        return bool(_disposition(stream) & _DISPOSITION_ATTACHED_PIC)
    # PyAV 12 and 13 hide the disposition: a single still picture with no frame rate of its
    # own (its 90000 is only the time base guessed as a rate) is what an attached picture is.
    return (getattr(stream.codec_context, "name", None) in _PICTURE_CODECS and (stream.frames or 0) <= 1
            and not _rational(stream.average_rate))


_EXPECTED_INPUT = "expected a video file, a folder of numbered frames or an image"
# Leading bytes of the containers people feed us: a file that starts like one but does not
# open was cut short or damaged, which is more useful to say than "invalid data".
_CONTAINER_SIGNATURES = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"GIF8"))


def _undecodable(path: Path) -> str:
    """What is wrong and what was expected, with ``{}`` where ffmpeg's reason goes."""
    try:
        with open(path, "rb") as file:
            head = file.read(12)
    except OSError:
        head = b""
    if any(head[offset:offset + len(magic)] == magic for offset, magic in _CONTAINER_SIGNATURES):
        return "the video is truncated or damaged (ffmpeg: {}); expected a complete video file"
    return "not a video ffmpeg can decode ({}); " + _EXPECTED_INPUT


def is_variable_frame_rate(path: str | os.PathLike) -> bool:
    """True when a video's frames are not evenly spaced in time (read from packet timestamps,
    nothing is decoded). Such clips are read frame by frame and written at their average rate."""
    path = Path(path)
    if _needs_copy(path):
        with seekable_input(path) as copy:
            return is_variable_frame_rate(copy)
    if path.suffix.lower() in IMAGE_EXTENSIONS and is_animated_image(path):
        return len(set(_animation_durations(path))) > 1
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS:
        return False
    with _open_video(path) as (container, stream):
        times = []
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    times.append(packet.pts)
        except av.FFmpegError:
            pass
    steps = np.diff(np.unique(times))
    # One tick of slack: timestamps of a constant rate are rounded to the time base.
    return bool(len(steps) > 1 and steps.max() - steps.min() > 1)


def _decode_frames(stream, container, demuxed: list[int] | None = None) -> Iterator[av.VideoFrame]:
    """Decode frame by frame, stopping quietly where a truncated or damaged file gives out.

    A packet the decoder rejects is skipped, as the ffmpeg command line does, so one bad packet
    in the middle does not lose the rest of the clip. ``demuxed[0]`` counts the packets taken
    from the file, which run ahead of the frames out of a (threaded, reordering) decoder.
    """
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError:
            # The demuxer has hit the damaged end; drain what the decoder still holds.
            packet = None
        if demuxed is not None and packet is not None and packet.size > 0:
            demuxed[0] += 1
        try:
            yield from stream.decode(packet)
        except av.FFmpegError:
            pass
        if packet is None:
            return


def _count_remaining_packets(container, stream) -> int:
    """Frames left after an early stop, counted from packets so nothing more is decoded."""
    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size > 0:
                count += 1
    except av.FFmpegError:
        pass
    return count


def _probe_displayed_size(path: Path, container, stream) -> tuple[int, int]:
    """(height, width) as displayed; the display matrix is only visible on a decoded frame."""
    for frame in _decode_frames(stream, container):
        return _displayed_size(frame, _orientation(frame), _sample_aspect_ratio(stream))
    raise _no_frame_decoded(path, stream.frames)


def _no_frame_decoded(path: Path, stated_frames: int | None) -> InputError:
    if stated_frames:
        return InputError(f"cannot read '{path}': the video is truncated or damaged: none of the "
                          f"{stated_frames} frames it lists could be decoded; expected a complete video file")
    return InputError(f"cannot read '{path}': no video frame could be decoded; "
                      "expected a video with at least one intact frame")


def _count_decoded_frames(path: Path) -> int:
    with _open_video(path) as (container, stream):
        count = sum(1 for _ in _decode_frames(stream, container))
    if count == 0:
        raise InputError(f"cannot read '{path}': no video frame could be decoded; "
                         "expected a video with at least one intact frame")
    return count


def _stream_fps(container, stream) -> Fraction:
    """The clip's frame rate. A container that times its frames gives their average rate. A raw
    elementary stream (.h264, .hevc, ...) has no timestamps: its demuxer states a made-up 25, and
    the ffmpeg command line takes FFmpeg's guess instead (av_guess_frame_rate: the rate in the
    stream's own headers, such as H.264 VUI timing), so we do too. 25 when nothing says."""
    guessed = _rational(stream.guessed_rate)
    if _has_no_timestamps(container.format) and guessed:
        return guessed
    return _rational(stream.average_rate) or guessed or FALLBACK_VIDEO_FPS


_AVFMT_NOTIMESTAMPS = 0x0100


def _has_no_timestamps(container_format) -> bool:
    flag = getattr(container_format, "no_timestamps", None)  # PyAV 12 and 13
    if flag is not None:
        return bool(flag)
    try:
        return bool(int(container_format.flags) & _AVFMT_NOTIMESTAMPS)
    except (AttributeError, TypeError, ValueError):
        return False


def _orientation(frame: av.VideoFrame) -> str:
    """How to show the frame upright, from its display matrix, as ffmpeg's autorotate does.

    One of '' (as stored), 'hflip', 'vflip', 'rotate180', 'clockwise', 'counterclockwise',
    'transpose' (turn counterclockwise, then flip upside down) and 'antitranspose' (turn
    clockwise, then flip upside down). Phone videos are stored sideways with a rotation;
    a mirrored matrix (a front camera, an editor's flip) adds a flip.
    """
    matrix = _display_matrix(frame)
    if matrix is None:
        return ""
    # ffmpeg rounds the angle to whole degrees, counts it clockwise, in [0, 360).
    theta = -round(_matrix_rotation(matrix))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    c, d = matrix[3], matrix[4]
    if abs(theta - 90) < 1:
        return "transpose" if c > 0 else "clockwise"
    if abs(theta - 180) < 1:
        return {(True, True): "rotate180", (True, False): "hflip",
                (False, True): "vflip", (False, False): ""}[(matrix[0] < 0, d < 0)]
    if abs(theta - 270) < 1:
        return "antitranspose" if c < 0 else "counterclockwise"
    if abs(theta) < 1:
        return "vflip" if d < 0 else ""
    # ffmpeg turns by any other angle inside the stored frame, blacking the corners; a clip
    # for synthesis is better served by the nearest quarter turn.
    return ("", "clockwise", "rotate180", "counterclockwise")[round(theta / 90) % 4]


_ORIENT = {
    "": lambda pixels: pixels,
    "hflip": lambda pixels: pixels[:, ::-1],
    "vflip": lambda pixels: pixels[::-1],
    "rotate180": lambda pixels: pixels[::-1, ::-1],
    "clockwise": lambda pixels: np.rot90(pixels, -1),
    "counterclockwise": lambda pixels: np.rot90(pixels, 1),
    "transpose": lambda pixels: pixels.swapaxes(0, 1),
    "antitranspose": lambda pixels: pixels[::-1, ::-1].swapaxes(0, 1),
}
_SWAPS_SIDES = ("clockwise", "counterclockwise", "transpose", "antitranspose")


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    """The frame's 3x3 display matrix (9 native-endian int32, a b u c d v x y w), or None.

    Read from the frame's side data, which every PyAV from 12 on exposes by position with a
    ``type`` whose name is DISPLAYMATRIX (``frame.rotation`` exists only from PyAV 14).
    """
    side_data = getattr(frame, "side_data", None)
    if side_data is None:
        return None
    for index in range(len(side_data)):
        entry = side_data[index]
        if getattr(entry.type, "name", str(entry.type).rpartition(".")[2]) != "DISPLAYMATRIX":
            continue
        raw = bytes(entry)
        if len(raw) < 36:
            return None
        return struct.unpack("=9i", raw[:36])
    return None


def _matrix_rotation(matrix: tuple[int, ...]) -> float:
    """Counterclockwise degrees of the matrix, as FFmpeg's av_display_rotation_get defines them."""
    a, b, _, c, d = (value / 65536 for value in matrix[:5])
    scale_x, scale_y = math.hypot(a, c), math.hypot(b, d)
    if scale_x == 0 or scale_y == 0:
        return 0.0
    return -math.degrees(math.atan2(b / scale_y, a / scale_x))


def _displayed_size(frame: av.VideoFrame, orientation: str,
                    sample_aspect: Fraction = Fraction(1)) -> tuple[int, int]:
    """(height, width) as a player shows the frame: square pixels, then upright."""
    height, width = frame.height, _square_pixel_width(frame.width, sample_aspect)
    if orientation in _SWAPS_SIDES:
        return width, height
    return height, width


def _sample_aspect_ratio(stream) -> Fraction:
    """Width of a stored pixel over its height: FFmpeg's guess from the container (mp4 ``pasp``,
    Matroska display size) or else the codec (H.264 VUI). Unset, or beyond 1/10 to 10, which
    only a damaged header states, counts as square."""
    sar = _rational(getattr(stream, "sample_aspect_ratio", None))
    if sar is None or not Fraction(1, 10) <= sar <= 10:
        return Fraction(1)
    return sar


def _square_pixel_width(width: int, sample_aspect: Fraction) -> int:
    """Anamorphic pixels are resampled to square ones by scaling the width, height kept."""
    return max(1, round(width * sample_aspect))


def _video_frame_to_rgb(frame: av.VideoFrame, orientation: str,
                        output_size: tuple[int, int]) -> np.ndarray:
    pixels = _ORIENT[orientation](frame.to_ndarray(format="rgb24"))
    height, width = output_size
    if pixels.shape[:2] == output_size:
        return pixels
    if 0 <= pixels.shape[0] - height <= 1 and 0 <= pixels.shape[1] - width <= 1:
        # Only the even-size crop: one row or column, not worth a resample.
        return pixels[:height, :width]
    return np.asarray(_resize(Image.fromarray(np.ascontiguousarray(pixels)), output_size))


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    height, width = size
    # reducing_gap first shrinks by an integer box filter, which is fast and, at 3.0, no
    # different to the eye from a full bicubic resample.
    return image.resize((width, height), Image.Resampling.BICUBIC, reducing_gap=3.0)


def _scaled_size(height: int, width: int, short_side: int | None, *, even: bool,
                 path: Path) -> tuple[int, int]:
    """Output (height, width): shorter side at most ``short_side``, aspect ratio kept.

    With ``even`` both sides are made even for H.264: a downscaled side is rounded to the
    nearest even number, a native one loses its odd row or column.
    """
    if even and (height < 2 or width < 2):
        raise InputError(f"cannot read '{path}': frames are {height}x{width}; "
                         "expected at least 2x2 pixels")
    shorter = min(height, width)
    if short_side is None or shorter <= short_side:
        if even:
            return height - height % 2, width - width % 2
        return height, width
    scale = short_side / shorter
    exact = (height * scale, width * scale)
    if even:
        rounded = [max(2, 2 * round(side / 2)) for side in exact]
    else:
        rounded = [max(1, round(side)) for side in exact]
    return rounded[0], rounded[1]


class _FrameStack:
    """Frames gathered into one preallocated array, sized from the container's frame count.

    Unlike a list and ``np.stack``, this does not hold the clip twice when the count is right.
    """

    def __init__(self, expected: int):
        self._expected = max(expected, 1)
        self._array: np.ndarray | None = None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, frame: np.ndarray) -> None:
        if self._array is None:
            self._array = np.empty((self._expected, *frame.shape), dtype=np.uint8)
        elif self._count == len(self._array):
            grown = np.empty((len(self._array) * 3 // 2 + 1, *frame.shape), dtype=np.uint8)
            grown[: self._count] = self._array
            self._array = grown
        self._array[self._count] = frame
        self._count += 1

    def result(self) -> np.ndarray:
        assert self._array is not None
        if self._count == len(self._array):
            return self._array
        return self._array[: self._count].copy()


def _read_single_image(path: Path, short_side, start_frame) -> Clip:
    if start_frame != 0:
        raise InputError(f"cannot read '{path}': start_frame {start_frame} is past the end; "
                         "a single image has 1 frame (0)")
    image = _load_rgb_image(path)
    original_size = (image.height, image.width)
    output_size = _scaled_size(*original_size, short_side, even=False, path=path)
    if output_size != original_size:
        image = _resize(image, output_size)
    frames = np.ascontiguousarray(np.asarray(image)[None])
    return Clip(frames, None, "image", path, False, original_size, 1)


def is_animated_image(path: str | os.PathLike) -> bool:
    """True for an image file with more than one frame (animated PNG or WebP): a video."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
        return False
    try:
        with _open_image(path) as image:
            return bool(getattr(image, "is_animated", False)) and getattr(image, "n_frames", 1) > 1
    except (OSError, Image.DecompressionBombError):
        return False  # reported when it is read, as an image


# A frame with no delay (0 ms) is shown for 100 ms, as browsers show it.
_NO_DELAY_MS = Fraction(100)


def _animation_durations(path: Path) -> list[Fraction]:
    """Each frame's delay in milliseconds."""
    try:
        with _open_image(path) as image:
            durations = []
            for index in range(image.n_frames):
                image.seek(index)
                image.load()  # WebP states a frame's delay only once the frame is loaded
                durations.append(_delay_ms(image.info.get("duration")))
            return durations
    except (OSError, EOFError, Image.DecompressionBombError) as error:
        raise _pillow_error(path, error) from error


def _delay_ms(value) -> Fraction:
    if not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        return _NO_DELAY_MS
    # APNG states delays as fractions of a second, which Pillow gives as float milliseconds.
    return Fraction(value).limit_denominator(1000)


def _animation_fps(durations: list[Fraction]) -> Fraction:
    """Frames per second: exact when every delay is the same (40 ms -> 25), otherwise the
    average rate, as for a variable-frame-rate video."""
    return len(durations) * 1000 / sum(durations)


def _read_animated_image(path: Path, short_side, start_frame, max_frames) -> Clip:
    """An animated PNG or WebP, read with Pillow, whose seek gives whole composited frames."""
    try:
        with _open_image(path) as image:
            frame_count = image.n_frames
            if start_frame >= frame_count:
                raise InputError(f"cannot read '{path}': start_frame {start_frame} is past the "
                                 f"end; the clip has {frame_count} frames (0 to {frame_count - 1})")
            stop = frame_count if max_frames is None else min(frame_count, start_frame + max_frames)
            original_size = (image.height, image.width)
            output_size = _scaled_size(*original_size, short_side, even=True, path=path)
            collected = _FrameStack(stop - start_frame)
            durations = []
            for index in range(frame_count):
                image.seek(index)
                image.load()  # WebP states a frame's delay only once the frame is loaded
                durations.append(_delay_ms(image.info.get("duration")))
                if start_frame <= index < stop:
                    frame = _to_rgb8(image)
                    if output_size[0] < frame.height - 1 or output_size[1] < frame.width - 1:
                        frame = _resize(frame, output_size)
                    collected.append(np.asarray(frame)[: output_size[0], : output_size[1]])
    except (OSError, EOFError, Image.DecompressionBombError) as error:
        raise _pillow_error(path, error) from error
    return Clip(collected.result(), _animation_fps(durations), "video", path, False,
                original_size, frame_count)


def _read_frame_folder(path: Path, short_side, start_frame, max_frames, fps: Fraction) -> Clip:
    frame_paths = _list_frame_files(path)
    first_width, first_height = _image_header_size(frame_paths[0])
    # Headers are cheap to read, so sizes are checked for the whole folder, not just the slice.
    for frame_path in frame_paths[1:]:
        width, height = _image_header_size(frame_path)
        if (width, height) != (first_width, first_height):
            raise InputError(
                f"cannot read '{path}': '{frame_path.name}' is {height}x{width} but "
                f"'{frame_paths[0].name}' is {first_height}x{first_width}; "
                "all frames must have the same size")
    if start_frame >= len(frame_paths):
        raise InputError(f"cannot read '{path}': start_frame {start_frame} is past the end; "
                         f"the folder has {len(frame_paths)} frames (0 to {len(frame_paths) - 1})")
    stop = len(frame_paths) if max_frames is None else start_frame + max_frames
    selected = frame_paths[start_frame:stop]
    collected = _FrameStack(len(selected))
    original_size = output_size = None
    for frame_path in selected:
        image = _load_rgb_image(frame_path)
        if original_size is None:
            # Taken after EXIF rotation, which the header sizes above do not include.
            original_size = (image.height, image.width)
            output_size = _scaled_size(*original_size, short_side, even=True, path=path)
        elif (image.height, image.width) != original_size:
            raise InputError(
                f"cannot read '{path}': '{frame_path.name}' is {image.height}x{image.width} "
                f"after EXIF rotation but '{selected[0].name}' is "
                f"{original_size[0]}x{original_size[1]}; all frames must have the same size")
        if output_size[0] < image.height - 1 or output_size[1] < image.width - 1:
            image = _resize(image, output_size)
        collected.append(np.asarray(image)[: output_size[0], : output_size[1]])
    return Clip(collected.result(), fps, "frames", path, False, original_size, len(frame_paths))


def _list_frame_files(folder: Path) -> list[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError as error:
        raise InputError(f"cannot read folder '{folder}': {_reason(error)}") from error
    # Hidden files are skipped: macOS litters folders with '._1.png' resource forks.
    frames = [entry for entry in entries
              if entry.suffix.lower() in IMAGE_EXTENSIONS and not entry.name.startswith(".")
              and entry.is_file()]
    if not frames:
        raise InputError(f"cannot read folder '{folder}': it has no image frames "
                         f"(expected files ending in {', '.join(IMAGE_EXTENSIONS)})")
    return sorted(frames, key=_natural_key)


def _natural_key(path: Path) -> tuple:
    # re.split with a group alternates text and digits, so ints and strings never meet
    # at the same position and the comparison is well defined.
    parts = re.split(r"(\d+)", path.name.lower())
    return [int(part) if part.isdigit() else part for part in parts], path.name


def _image_header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding pixels."""
    try:
        with _open_image(path) as image:
            return image.size
    except (OSError, Image.DecompressionBombError) as error:
        raise _pillow_error(path, error) from error


def _load_rgb_image(path: Path) -> Image.Image:
    """Open any image as 8-bit RGB, upright according to its EXIF orientation."""
    try:
        with _open_image(path) as image:
            image = ImageOps.exif_transpose(image)
            return _to_rgb8(image)
    except (OSError, Image.DecompressionBombError) as error:
        raise _pillow_error(path, error) from error


@contextmanager
def _open_image(path: Path) -> Iterator[Image.Image]:
    """``Image.open`` without Pillow's DecompressionBombWarning: vgpnn checks memory itself,
    from the working size, and a library never prints. Beyond twice Pillow's limit
    (``Image.MAX_IMAGE_PIXELS``, 179 megapixels by default) Pillow still refuses with
    DecompressionBombError, which :func:`_pillow_error` turns into one line: decoding such an
    image takes over half a gigabyte before any downscale, and a header claiming that many
    pixels is how decompression bombs look. A library user can raise the limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            yield image


def _pillow_error(path: Path, error: Exception) -> InputError:
    if isinstance(error, Image.DecompressionBombError):
        return InputError(f"cannot read '{path}': the image is too big to decode safely "
                          f"({_pillow_reason(error).rstrip('.')}); expected an image of at most "
                          f"{2 * Image.MAX_IMAGE_PIXELS} pixels")
    return InputError(f"cannot read '{path}': not an image Pillow can decode "
                      f"({_pillow_reason(error)}); expected an intact image file")


def _pillow_reason(error: Exception) -> str:
    if isinstance(error, UnidentifiedImageError):
        return "unrecognised image data"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[0].lower() + text[1:]


def _to_rgb8(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I;16") or image.mode == "I":
        # Pillow's own convert clips 16-bit values at 255; scale the full range instead.
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    # Alpha is dropped, not composited: the colour under a transparent pixel is kept as is.
    return image.convert("RGB")


# --------------------------------------------------------------------------------------------
# Writing


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: Fraction | None,
    *,
    overwrite: bool = False,
    audio_from: str | os.PathLike | None = None,
) -> Path:
    """Write ``frames`` (T, H, W, 3) uint8 RGB to ``path`` and return the final path.

    The extension picks the format: ``.mp4``/``.mov``/``.mkv`` H.264 (yuv420p, crf 18, the
    exact ``fps`` as stream rate; an odd width or height is padded to even by repeating the
    last column or row); ``.gif`` an endlessly looping Pillow GIF (GIF stores delays in 1/100 s,
    so delays are rounded but the total duration is kept, and Pillow merges identical
    consecutive frames into one longer frame); an image extension a single image (needs T == 1);
    no extension or a trailing '/' a folder of PNG frames 0001.png, 0002.png, ...

    ``fps`` None means :data:`DEFAULT_FRAMES_FPS`. ``audio_from``: the audio stream of that file,
    if it has one, is copied without re-encoding into a ``.mp4``/``.mov``/``.mkv`` output, cut
    at the end of the video; other formats cannot carry audio and ignore it.

    Missing parent folders are created. The output appears complete or not at all.
    """
    target, output_format = _output_target(path)
    check_output_name(target)
    frames = _check_frames(frames)
    fps = DEFAULT_FRAMES_FPS if fps is None else _as_fps(fps)
    if output_format == "image" and len(frames) != 1:
        raise ConfigError(f"cannot write {len(frames)} frames to the single image '{target}'; "
                          "expected 1 frame (use .mp4, .gif or a folder for more)")
    audio_path = Path(audio_from) if audio_from is not None else None
    if audio_path is not None and not audio_path.is_file():
        raise InputError(f"cannot read audio from '{audio_path}': no such file")
    _refuse_existing(target, output_format, overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create folder '{target.parent}': "
                          f"{_reason(error)}") from error
    _remove_stale_partials(target)

    if output_format == "folder":
        _write_frame_folder(target, frames)
    elif output_format == "h264":
        with _partial_file(target) as partial:
            _write_h264(partial, target, frames, fps, audio_path)
    elif output_format == "gif":
        with _partial_file(target) as partial:
            _write_gif(partial, target, frames, fps)
    else:
        with _partial_file(target) as partial:
            _save_image(partial, target, frames[0])
    return target


def _output_target(path) -> tuple[Path, str]:
    """The final path and one of 'h264', 'gif', 'image', 'folder'."""
    text = os.fspath(path)
    target = Path(text)
    if text.endswith(("/", os.sep)) or target.suffix == "":
        return target, "folder"
    suffix = target.suffix.lower()
    if suffix in VIDEO_OUTPUT_EXTENSIONS:
        return target, "h264"
    if suffix == GIF_EXTENSION:
        return target, "gif"
    if suffix in IMAGE_EXTENSIONS:
        return target, "image"
    supported = ", ".join((*VIDEO_OUTPUT_EXTENSIONS, GIF_EXTENSION, *IMAGE_EXTENSIONS))
    raise OutputError(f"cannot write '{target}': unknown extension '{target.suffix}'; "
                      f"expected one of {supported}, or no extension for a folder of PNG frames")


def _check_frames(frames) -> np.ndarray:
    if not isinstance(frames, np.ndarray):
        raise ConfigError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or 0 in frames.shape:
        raise ConfigError(f"frames must be a non-empty (T, H, W, 3) uint8 array, got shape "
                          f"{frames.shape} dtype {frames.dtype}")
    return frames


def _as_fps(value, name: str = "fps") -> Fraction:
    if isinstance(value, float) and np.isfinite(value):
        # A float such as 29.97 is a decimal approximation; keep the decimal that was meant.
        value = Fraction(value).limit_denominator(1001 * 100)
    if not isinstance(value, (int, Fraction, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive Fraction, int or float, got {value!r}")
    return Fraction(value)


def _refuse_existing(target: Path, output_format: str, overwrite: bool) -> None:
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        # Worded with errors.OVERWRITE, which the command line replaces with its own flag.
        raise OutputError(f"'{target}' exists; pass overwrite=True to replace it")
    if output_format != "folder" and target.is_dir():
        raise OutputError(f"cannot write '{target}': it is a folder; expected a file path")
    if output_format == "folder" and target.is_dir():
        strangers = [entry.name for entry in target.iterdir() if not _is_our_frame_name(entry)]
        if strangers:
            # Replacing a folder deletes it; only do that to a folder this module wrote.
            raise OutputError(f"refusing to replace folder '{target}': it holds files other "
                              f"than numbered PNG frames (e.g. '{strangers[0]}')")


def _is_our_frame_name(entry: Path) -> bool:
    return entry.is_file() and re.fullmatch(r"\d+\.png", entry.name) is not None


def name_limit(folder: Path) -> int:
    """The longest file name, in bytes, that ``folder`` (or its nearest existing ancestor) takes."""
    folder = Path(os.path.abspath(folder))
    while not os.path.isdir(folder) and folder != folder.parent:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no stated limit
        return _DEFAULT_NAME_MAX


def check_output_name(path: str | os.PathLike) -> None:
    """Refuse, before any work, an output whose name is longer than its folder's file system allows."""
    target = Path(path)
    length = len(os.fsencode(target.name))
    limit = name_limit(target.parent)
    if length > limit:
        raise OutputError(f"cannot write '{target}': its name is {length} bytes, longer than the {limit} "
                          f"bytes a file name may have there; expected a name of at most {limit} bytes")


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary beside it, as outputs are: the file holds
    the old text or the new, never a mix, and never a partial file left behind."""
    target = Path(path)
    _remove_stale_partials(target)
    with _partial_file(target) as partial:
        try:
            partial.write_text(text)
        except OSError as error:
            raise OutputError(f"cannot write '{target}': {_reason(error)}") from error


# A temporary's name is the target's prefix (below) then ".partial-{pid}-{8 hex}" and a suffix.
_DEFAULT_NAME_MAX = 255
_PARTIAL_TAIL_BYTES = len(".partial-") + len(str(2**32)) + 1 + 8
_HASH_CHARACTERS = 16


def _partial_prefix(target: Path) -> str:
    """'.' and ``target``'s stem; when a temporary with the whole stem could be longer than the
    folder allows (an output name near the limit), the stem's start, '~' and a hash of the
    whole name instead. It depends on ``target`` alone, so the stale-partial cleanup finds
    every temporary of ``target`` and no other's."""
    prefix = f".{target.stem}"
    suffix_bytes = max(len(os.fsencode(target.suffix)), len(".old"))
    room = name_limit(target.parent) - _PARTIAL_TAIL_BYTES - suffix_bytes
    if len(os.fsencode(prefix)) <= room:
        return prefix
    import hashlib
    import sys

    digest = "~" + hashlib.sha256(os.fsencode(target.name)).hexdigest()[:_HASH_CHARACTERS]
    kept = os.fsencode(prefix)[:max(1, room - len(digest))]
    # Dropping what does not decode drops a multi-byte character cut in half (never a whole one).
    return kept.decode(sys.getfilesystemencoding(), errors="ignore") + digest


def _partial_name(target: Path, suffix: str) -> Path:
    # The real extension stays last so muxers and Pillow pick the format from the name.
    return target.with_name(f"{_partial_prefix(target)}.partial-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def remove_partials(target: str | os.PathLike) -> None:
    """Delete every temporary of ``target``, whether its writer runs or not. Only for a caller
    that knows nothing writes ``target`` any more: a cluster's driver once the task that wrote
    it has ended, where a process id from another machine says nothing about this one's."""
    _remove_stale_partials(Path(target), any_writer=True)


def _remove_stale_partials(target: Path, any_writer: bool = False) -> None:
    """Delete temporaries of ``target`` left by writers that no longer run (see module notes)."""
    if os.name != "posix" and not any_writer:
        return
    pattern = re.compile(rf"{re.escape(_partial_prefix(target))}\.partial-(\d+)-[0-9a-f]{{8}}")
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or (not any_writer and _process_exists(int(match.group(1)))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            try:
                entry.unlink()
            except OSError:
                pass


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or not a pid at all: leave the file alone
    return True


@contextmanager
def _partial_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it into place only on success."""
    try:
        partial = _partial_name(target, target.suffix)
        # Created by hand, not with mkstemp, so the file gets normal permissions (umask), not 0600.
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as error:
        raise OutputError(f"cannot write '{target}': {_reason(error)}") from error
    try:
        yield partial
        try:
            os.replace(partial, target)
        except OSError as error:
            raise OutputError(f"cannot write '{target}': {_reason(error)}") from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _write_frame_folder(target: Path, frames: np.ndarray) -> None:
    try:
        partial = _partial_name(target, "")
        partial.mkdir()
    except OSError as error:
        raise OutputError(f"cannot write '{target}': {_reason(error)}") from error
    digits = max(4, len(str(len(frames))))
    try:
        for index, frame in enumerate(frames, start=1):
            _save_image(partial / f"{index:0{digits}d}.png", target, frame)
        try:
            _swap_in_folder(partial, target)
        except OSError as error:
            raise OutputError(f"cannot write '{target}': {_reason(error)}") from error
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _swap_in_folder(partial: Path, target: Path) -> None:
    """Rename ``partial`` to ``target``; an old ``target`` is deleted only after that worked."""
    if not (target.exists() or target.is_symlink()):
        os.replace(partial, target)
        return
    old = _partial_name(target, ".old")
    os.replace(target, old)
    try:
        os.replace(partial, target)
    except BaseException:
        os.replace(old, target)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


def _save_image(destination: Path, target: Path, frame: np.ndarray) -> None:
    """Save one RGB frame; the Pillow format comes from ``target``'s extension (PNG if none)."""
    pillow_format = _PILLOW_FORMATS.get(target.suffix.lower(), "PNG")
    options = _PILLOW_SAVE_OPTIONS.get(pillow_format, {})
    try:
        Image.fromarray(frame).save(destination, format=pillow_format, **options)
    except OSError as error:
        raise OutputError(f"cannot write '{target}': {_reason(error)}") from error


def _write_gif(partial: Path, target: Path, frames: np.ndarray, fps: Fraction) -> None:
    images = [Image.fromarray(frame) for frame in frames]
    # Delays are whole centiseconds; rounding each frame's end time instead of its length keeps
    # the total duration right (30 fps becomes 30, 40, 30 ms ... rather than 30 ms each).
    ends_ms = [round(index * 1000 / fps, -1) for index in range(len(frames) + 1)]
    durations = [max(int(end - start), 10) for start, end in zip(ends_ms, ends_ms[1:])]
    try:
        images[0].save(partial, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations if len(images) > 1 else durations[0], loop=0)
    except OSError as error:
        raise OutputError(f"cannot write '{target}': {_reason(error)}") from error


def _write_h264(partial: Path, target: Path, frames: np.ndarray, fps: Fraction,
                audio_path: Path | None) -> None:
    height, width = frames.shape[1:3]
    audio_source = _open_audio_source(audio_path) if audio_path is not None else None
    try:
        container = av.open(str(partial), mode="w")
    except (av.FFmpegError, OSError) as error:
        _close(audio_source)
        raise OutputError(f"cannot write '{target}': {_reason(error)}") from error
    try:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = width + width % 2, height + height % 2
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(H264_CRF)}
        audio = None
        if audio_source is not None:
            audio = _add_stream_like(container, audio_source.streams.audio[0])
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(_pad_to_even(frame), format="rgb24")
            video_frame.pts = index
            container.mux(video.encode(video_frame))
        container.mux(video.encode(None))
        if audio is not None:
            _copy_audio(audio_source, container, audio, video_seconds=len(frames) / fps)
        # Closing writes the trailer, which can fail too (a full disk), so it is inside the try.
        container.close()
    except (av.FFmpegError, OSError) as error:
        raise OutputError(f"cannot write '{target}': {_reason(error)}") from error
    finally:
        _close(container)
        _close(audio_source)


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Repeat the last row / column so yuv420p, which subsamples 2x2, can hold the frame."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _open_audio_source(audio_path: Path):
    """The opened container if ``audio_path`` has an audio stream, else None."""
    try:
        source = _av_open(audio_path)
    except (av.FFmpegError, OSError) as error:
        raise InputError(f"cannot read audio from '{audio_path}': "
                         f"{_reason(error)}") from error
    if not source.streams.audio:
        source.close()
        return None
    return source


def _copy_audio(source, container, audio_stream, *, video_seconds: Fraction) -> None:
    """Remux audio packets (no re-encode), dropping those that start after the video ends."""
    source_stream = source.streams.audio[0]
    for packet in source.demux(source_stream):
        if packet.dts is None:  # the flush packet that demux yields at the end
            continue
        time_base = _rational(packet.time_base) or _rational(source_stream.time_base)
        if packet.pts is not None and time_base and packet.pts * time_base >= video_seconds:
            break
        # mux rescales timestamps from the input stream's time base to the output's.
        packet.stream = audio_stream
        container.mux(packet)


def _close(container) -> None:
    if container is not None:
        container.close()


# --------------------------------------------------------------------------------------------
# PyAV 12 to 19: what differs is detected by feature, never by version number.


def _av_open(path: Path):
    return av.open(str(path), **_open_options())


@functools.cache
def _open_options() -> dict:
    """Damaged metadata must not stop the frames from being read: PyAV up to 18 decodes it
    strictly unless told ``metadata_errors="replace"``; PyAV 19 dropped that keyword (it reads
    metadata leniently itself) and rejects it with TypeError before opening anything."""
    try:
        av.open(io.BytesIO(), metadata_errors="replace").close()
    except TypeError:
        return {}
    except Exception:  # the empty input is refused: the keyword itself was accepted
        pass
    return {"metadata_errors": "replace"}


def _rational(value) -> Fraction | None:
    """A positive PyAV rate or time base as a Fraction, else None. PyAV up to 18 gives a
    Fraction or None; PyAV 19 an ``AVRational`` that is falsy (0/1) when unset."""
    numerator = getattr(value, "numerator", None)
    denominator = getattr(value, "denominator", None)
    if not numerator or not denominator or numerator <= 0 or denominator <= 0:
        return None
    return Fraction(int(numerator), int(denominator))


def _add_stream_like(container, template):
    """An output stream with ``template``'s codec parameters, for copying packets."""
    add = getattr(container, "add_stream_from_template", None)  # PyAV 13.1 and later
    if add is not None:
        return add(template)
    return container.add_stream(template=template)  # PyAV 12 and 13.0


def _reason(error: Exception) -> str:
    """The OS or ffmpeg reason alone, lower-case, to follow a colon in our one-line messages."""
    reason = getattr(error, "strerror", None) or str(error)
    return reason[0].lower() + reason[1:] if reason else type(error).__name__
