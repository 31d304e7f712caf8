"""Choosing the torch device a job runs on, and starting the CUDA driver before torch is imported."""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from pathlib import Path

from .errors import CPU_DEVICE, ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when a GPU is usable, else the CPU; 'cuda' without a GPU is an error."""
    import torch  # here, not at the top: the command line reads DEVICES before it needs torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but this torch build sees no CUDA GPU "
                              f"(torch {torch.__version__}); use {CPU_DEVICE}")
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r}; expected one of {', '.join(DEVICES)}")


def start_cuda_driver(name: str) -> None:
    """Start the CUDA driver for device ``name`` in a background thread, before torch is imported.

    The driver's start-up (cuInit, then the device's primary context, which torch adopts as its
    own) is about 0.2 s of a 3-second command on an H200, and a foreign call releases the
    interpreter lock, so it runs while the import of torch (0.75 s) holds it. Only a head
    start: any failure (no driver, no such device, another system) is left for torch to report
    when it starts CUDA itself. Returns at once; does nothing for 'cpu', nor where the torch
    installed is a CPU build (a context would hold GPU memory for nothing).
    """
    if not (name in ("auto", "cuda") or name.startswith("cuda:")):
        return
    index = name.partition(":")[2]
    if (index and not index.isdigit()) or not _torch_has_cuda():
        return
    threading.Thread(target=_retain_primary_context, args=(int(index or 0),), name="vgpnn-cuda-driver",
                     daemon=True).start()


def _torch_has_cuda() -> bool:
    """Whether the torch installed is a CUDA build, from its files: importing it is what the
    head start runs beside."""
    spec = importlib.util.find_spec("torch")
    folders = spec.submodule_search_locations if spec is not None else None
    return bool(folders) and any(any((Path(folder) / "lib").glob("libtorch_cuda*")) for folder in folders)


def _retain_primary_context(index: int) -> None:
    try:
        driver = ctypes.CDLL("libcuda.so.1")  # CDLL, not PyDLL: its calls release the interpreter lock
        device, context = ctypes.c_int(), ctypes.c_void_p()
        if driver.cuInit(0) == 0 and driver.cuDeviceGet(ctypes.byref(device), index) == 0:
            driver.cuDevicePrimaryCtxRetain(ctypes.byref(context), device)  # kept for the process's life
    except (OSError, AttributeError):  # no NVIDIA driver on this machine
        pass
