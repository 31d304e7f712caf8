"""Every command through the installed ``vgpnn`` program, in a subprocess, on a tiny clip:
what a new user on this Python and this PyAV runs first (CI also runs it on the newest Python)."""

import json
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import smooth_frames

from vgpnn.video import read_clip, write_video

FAST = ("--iterations", "1", "--working-size", "native")


@pytest.fixture(scope="module")
def program():
    """The console script pip installed beside this Python, else ``python -m vgpnn``."""
    script = Path(sys.executable).with_name("vgpnn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "vgpnn"]


def run(program, *args, cwd):
    result = subprocess.run([*program, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    return write_video(folder / "clip.mp4", smooth_frames(8, 24, 32), Fraction(12))


def test_generate(program, clip, tmp_path):
    run(program, "generate", clip, "-n", "2", "--seed", "5", "-o", tmp_path, *FAST, "-q", cwd=tmp_path)
    for seed in (5, 6):
        out = read_clip(tmp_path / f"clip_{seed}.mp4")
        assert out.frames.shape == (8, 24, 32, 3) and out.fps == 12


def test_retarget(program, clip, tmp_path):
    run(program, "retarget", clip, "--width", "40", "--frames", "10", "-o", tmp_path / "wide.mp4", *FAST, "-q",
        cwd=tmp_path)
    assert read_clip(tmp_path / "wide.mp4").frames.shape == (10, 24, 40, 3)


def test_inpaint(program, clip, tmp_path):
    mask = np.zeros((24, 32, 3), np.uint8)
    mask[8:16, 10:20] = 255
    write_video(tmp_path / "mask.png", mask[None], None)
    run(program, "inpaint", clip, "--mask", tmp_path / "mask.png", "-o", tmp_path / "filled.mp4", *FAST, "-q",
        cwd=tmp_path)
    assert read_clip(tmp_path / "filled.mp4").frames.shape == (8, 24, 32, 3)


def test_analogy(program, clip, tmp_path):
    shutil.copy(clip, tmp_path / "look.mp4")
    write_video(tmp_path / "layout.mp4", smooth_frames(8, 24, 32, seed=3), Fraction(12))
    run(program, "analogy", tmp_path / "layout.mp4", tmp_path / "look.mp4", "-o", tmp_path / "a.mp4", *FAST,
        "-q", cwd=tmp_path)
    assert read_clip(tmp_path / "a.mp4").frames.shape == (8, 24, 32, 3)


def test_info(program, clip, tmp_path):
    entry, = json.loads(run(program, "info", clip, "--json", cwd=tmp_path).stdout)
    assert (entry["frames"], entry["width"], entry["height"], entry["fps"]) == (8, 32, 24, "12")
