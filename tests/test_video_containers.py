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
