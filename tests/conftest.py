"""Shared pieces of the tests: tiny synthetic clips and videos, the devices a test runs on, and a
way to run the command line. torch is imported only inside what needs it: the I/O tests run
without it."""

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vgpnn.video import write_video

REPOSITORY = Path(__file__).resolve().parents[1]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a test's child process: this checkout of vgpnn first on PYTHONPATH,
    whatever PYTHONPATH already holds after it (where the dependencies may live), and ``extra``."""
    path = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


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


def textured_clip(frames=6, height=32, width=48, seed=0):
    """Finer smooth random texture (T, H, W, 3) uint8, 4-pixel cells: the clip the retarget and
    inpainting tests' expectations were measured on."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((frames, 3, height // 4 + 1, width // 4 + 1))
    rows = np.interp(np.linspace(0, height // 4, height), np.arange(height // 4 + 1), np.arange(height // 4 + 1))
    fine = np.stack([[[np.interp(np.linspace(0, width // 4, width), np.arange(width // 4 + 1), line)
                       for line in plane[np.floor(rows).astype(int)]] for plane in frame] for frame in coarse])
    return (fine.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)


def smooth_video(shape=(3, 8, 32, 48), seed=0):
    """Smooth random video (C, T, H, W) float32 in [0, 1]: seeded noise averaged over 3 voxels
    along each axis (in space only for a single frame), so neighbouring voxels are alike and
    no two patches are."""
    import torch
    import torch.nn.functional as F
    noise = torch.rand((1, *shape), generator=torch.Generator().manual_seed(seed))
    kernel = (1 if shape[1] == 1 else 3, 3, 3)
    return F.avg_pool3d(noise, kernel, stride=1, padding=(kernel[0] // 2, 1, 1), count_include_pad=False)[0]


NO_GPU = "needs a CUDA GPU (torch.cuda.is_available() is False)"


def _skip_without_gpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip(NO_GPU)


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """A test that takes ``device`` runs on the CPU, and again on CUDA where torch sees a GPU."""
    if request.param == "cuda":
        _skip_without_gpu()
    return request.param


@pytest.fixture()
def cuda():
    """'cuda', for tests that compare a CUDA result with the CPU oracle; skipped without a GPU."""
    _skip_without_gpu()
    return "cuda"


@pytest.fixture()
def triton_cuda(cuda):
    """'cuda', for tests of the Triton kernels; skipped without a GPU or without triton."""
    from vgpnn import kernels
    if not kernels.available(kernels.TRITON):
        pytest.skip("needs triton")
    return cuda


@pytest.fixture()
def torch_only(monkeypatch):
    """No compiled kernel runs (vgpnn.kernels finds none for any tensor): the torch oracles do."""
    from vgpnn import kernels
    monkeypatch.setattr(kernels, "compiler_for", lambda *tensors: None)


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
