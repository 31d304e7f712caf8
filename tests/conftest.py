"""Shared pieces of the CLI tests: tiny synthetic clips and a way to run the command line."""

from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

from vgpnn.video import write_video

# One EM iteration at the clip's own size: a run takes a fraction of a second.
FAST = ("--iterations", "1", "--size", "native")


def smooth_frames(frames=8, height=32, width=48, seed=0):
    """Smooth random colour texture (T, H, W, 3) uint8: natural-ish patches, none alike."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((frames, height // 8 + 2, width // 8 + 2, 3))
    rows = np.linspace(0, coarse.shape[1] - 1, height)
    cols = np.linspace(0, coarse.shape[2] - 1, width)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    r1, c1 = np.minimum(r0 + 1, coarse.shape[1] - 1), np.minimum(c0 + 1, coarse.shape[2] - 1)
    fr, fc = (rows - r0)[None, :, None, None], (cols - c0)[None, None, :, None]
    top = coarse[:, r0][:, :, c0] * (1 - fc) + coarse[:, r0][:, :, c1] * fc
    bottom = coarse[:, r1][:, :, c0] * (1 - fc) + coarse[:, r1][:, :, c1] * fc
    return ((top * (1 - fr) + bottom * fr) * 255).round().astype(np.uint8)


def plan_of(source, target_shape, config, seeds, **target):
    """The plan of a plain run of the loop (imported here: the I/O tests need no torch)."""
    from vgpnn.plan import SynthesisPlan
    return SynthesisPlan.single(source, target_shape, config, seeds, **target)


@pytest.fixture()
def make_video():
    """make_video(path, frames=8, height=24, width=32, seed=0, fps=25) writes a clip, returns its path.
    At this size every pyramid level is searched exhaustively: fast and the same on any machine."""
    def make(path, frames=8, height=24, width=32, seed=0, fps=Fraction(25)):
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_video(path, smooth_frames(frames, height, width, seed), fps)
    return make


@pytest.fixture()
def cli():
    """cli(*args) runs ``vgpnn`` in-process; stdout and stderr stay apart in the result."""
    from vgpnn.cli import main  # imported here so that tests of the I/O layer need no torch

    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return run


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def files_under(folder) -> list[str]:
    """Every file and folder below ``folder``, hidden ones (partial writes) included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
