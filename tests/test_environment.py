"""vgpnn in unfriendly environments: read-only installs and homes, a closed or vanishing stdout and stderr."""

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import vgpnn
from vgpnn.video import read_clip
from conftest import REPOSITORY, child_env

KERNEL_CALLS = textwrap.dedent("""
    import numpy as np
    from vgpnn import kernels
    assert kernels.available(kernels.NUMBA)
    from vgpnn.kernels import best_vote_numba, vote_numba
    values = np.random.default_rng(0).random((3, 4, 6, 6)).astype(np.float32)
    base = np.zeros((1, 2, 4, 4), dtype=np.int64)
    voted = vote_numba.run_vote(values, (4, 6, 6), base, (3, 3, 3), "median", (4, 6, 6))
    queries = np.random.default_rng(1).random((1, 3, 4, 6, 6)).astype(np.float32)
    distances = best_vote_numba.matched_distances(queries, values, base, (3, 3, 3))
    assert voted.shape == (1, 3, 4, 6, 6) and distances.shape == (1, 2, 4, 4)
    print("kernels ran from", vote_numba.__file__)
""")


def _read_only(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True) + [folder]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_numba_kernels_import_and_run_with_no_writable_cache_folder(tmp_path):
    # The package copied to a read-only folder, as a system install is. A regular file named
    # __pycache__ in each package folder and ~/.cache stop even root (which ignores permissions)
    # from creating a cache folder there.
    installed = tmp_path / "site"
    shutil.copytree(Path(vgpnn.__file__).parent, installed / "vgpnn",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    for folder in [installed / "vgpnn", *(p for p in (installed / "vgpnn").rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_text("not a folder")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("not a folder")
    _read_only(installed)
    _read_only(home)
    env = {key: value for key, value in os.environ.items()
           if key not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), PYTHONPATH=str(installed), PYTHONDONTWRITEBYTECODE="1")
    try:
        done = subprocess.run([sys.executable, "-c", KERNEL_CALLS], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=300)
    finally:
        for path in [installed, *installed.rglob("*"), home, *home.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"kernels ran from {installed}" in done.stdout


def test_a_reader_that_closes_stdout_early_stops_the_listing_not_the_batch(tmp_path, make_video):
    # ``vgpnn generate clip.mp4 -n 3 | head -1``: the first path is read, then the pipe closes.
    source = make_video(tmp_path / "clip.mp4", frames=4, height=16, width=16)
    env = child_env()
    process = subprocess.Popen(
        [sys.executable, "-m", "vgpnn", "generate", source, "-n", "3", "--seed", "0", "-o", tmp_path / "out",
         "--iterations", "1", "--size", "native"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    first = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, stderr
    assert first.decode().strip() == str(tmp_path / "out" / "clip_0.mp4")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip_0.mp4", "clip_1.mp4", "clip_2.mp4"]
    for noise in ("Traceback", "BrokenPipe", "Exception ignored", "internal error", "error:"):
        assert noise not in stderr, stderr


def _driver_threads(besides=()):
    import threading
    return [thread for thread in threading.enumerate()
            if thread.name == "vgpnn-cuda-driver" and thread not in besides]


class _FakeDriver:
    """libcuda's three calls, recording the device asked for; ``status`` is cuInit's answer."""

    def __init__(self, status):
        self.status, self.devices = status, []

    def cuInit(self, flags):
        return self.status

    def cuDeviceGet(self, device, ordinal):
        self.devices.append(ordinal)
        return 0

    def cuDevicePrimaryCtxRetain(self, context, device):
        return 0


def test_the_cuda_drivers_head_start_asks_for_the_chosen_device_and_never_fails_a_command(monkeypatch):
    """The command line starts the CUDA driver in a thread while torch imports: for the device
    the user named, nothing for 'cpu', a name it does not know or a CPU build of torch, and
    quietly nothing where there is no driver or it refuses (torch reports that itself later)."""
    import ctypes
    import threading
    from vgpnn import device

    errors = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    drivers = []

    def load(name):
        if not drivers:
            raise OSError(f"{name}: cannot open shared object file")
        return drivers[-1]

    monkeypatch.setattr(ctypes, "CDLL", load)
    earlier = _driver_threads()  # a command run before this test, on a machine with a GPU
    monkeypatch.setattr(device, "_torch_has_cuda", lambda: False)
    device.start_cuda_driver("cuda")  # a CPU build of torch: no context to hold GPU memory for nothing
    assert _driver_threads(besides=earlier) == []
    monkeypatch.setattr(device, "_torch_has_cuda", lambda: True)

    def start(name):
        device.start_cuda_driver(name)
        for thread in _driver_threads(besides=earlier):
            thread.join(30)

    for name in ("cpu", "cuda:x", "mps"):
        device.start_cuda_driver(name)
        assert _driver_threads(besides=earlier) == []
    start("auto")  # no driver at all
    drivers.append(_FakeDriver(status=100))  # CUDA_ERROR_NO_DEVICE
    start("cuda")
    assert drivers[-1].devices == []
    drivers.append(_FakeDriver(status=0))
    start("cuda:1")
    start("auto")
    assert drivers[-1].devices == [1, 0]
    assert errors == []


def test_a_cuda_build_of_torch_is_told_from_its_files_without_importing_it():
    import torch
    from vgpnn.device import _torch_has_cuda

    assert _torch_has_cuda() == (torch.version.cuda is not None)


@pytest.mark.parametrize("closed", [(1,), (2,), (0, 1, 2)])
def test_a_command_started_with_standard_streams_closed_runs_and_its_output_is_clean(tmp_path, make_video, closed):
    """``vgpnn generate clip.mp4 -o out.mp4 >&- 2>&-`` (cron, some daemons): what would be printed
    goes nowhere, and no output file takes the descriptor of a closed stream."""
    source = make_video(tmp_path / "clip.mp4", frames=4, height=16, width=16)
    out = tmp_path / "out.mp4"
    process = subprocess.run(
        [sys.executable, "-m", "vgpnn", "generate", source, "--seed", "0", "-o", out, "--iterations", "1",
         "--size", "native"], env=child_env(), cwd=tmp_path, timeout=300,
        preexec_fn=lambda: [os.close(descriptor) for descriptor in closed])
    assert process.returncode == 0
    clip = read_clip(out)
    assert clip.frames.shape == (4, 16, 16, 3) and clip.fps == 25
