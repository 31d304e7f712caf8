"""Nearest-neighbour backends behind one interface, and the rule that picks one per level.

This package's top level imports no torch: the command line reads :data:`BACKENDS` and the
level schedule calls :func:`backend_for` before any work (``vgpnn --help`` must stay fast).
The backend classes and :class:`SearchRequest` are imported on first use (``from vgpnn.nn
import PatchMatch`` works as usual).
"""

from __future__ import annotations

import importlib

from .. import kernels

BACKENDS = ("auto", "exact", "patchmatch", "faiss")

# Exhaustive search is used while a search costs at most this many multiply-adds. On CUDA
# with Triton, PatchMatch compares whole patches in a fused kernel and lands within a few
# percent of exact matches far sooner than exhaustive search beyond small levels; on a CPU with
# numba its compiled twin does too (kernels/patchmatch_numba.py). Without a kernel PatchMatch
# compares descriptors and exhaustive search is worth its cost for longer.
EXACT_WORK_LIMIT = {"cpu": 4e9, "cuda": 5e11}
EXACT_WORK_LIMIT_FUSED = {"cpu": 4e9, "cuda": 2e10}  # where the device's PatchMatch kernel compiles

def patchmatch_rounds_from_previous(cpu_kernel: bool, quick: bool) -> int:
    """PatchMatch's rounds when it improves a previous field (nn/patchmatch.py says why): 1 with
    the CPU kernel or on a large level (``SearchRequest.quick``), 2 elsewhere. Here, free of
    torch, because the time estimate counts them too."""
    return 1 if cpu_kernel or quick else 2


# public name -> the module that defines it (imported on first use: they need torch)
_LAZY = {
    "NearestNeighbourBackend": "base", "SearchRequest": "base",
    "ExactSearch": "exact", "FaissSearch": "faiss_ivf", "PatchMatch": "patchmatch",
}

_faiss: list[bool] = []


def faiss_available() -> bool:
    """Whether faiss imports here (tried once per process, on first use)."""
    if not _faiss:
        try:
            import faiss  # noqa: F401
        except ImportError:
            _faiss.append(False)
        else:
            _faiss.append(True)
    return _faiss[0]


def fused_patchmatch(device_type: str) -> bool:
    """Whether PatchMatch on ``device_type`` compares whole patches in a compiled kernel
    (numba on a CPU, Triton on CUDA) rather than descriptors in torch."""
    compiler = {"cpu": kernels.NUMBA, "cuda": kernels.TRITON}.get(device_type)
    return compiler is not None and kernels.available(compiler)


def exact_work_limit(device_type: str) -> float:
    """Multiply-adds up to which exhaustive search is chosen on ``device_type``."""
    table = EXACT_WORK_LIMIT_FUSED if fused_patchmatch(device_type) else EXACT_WORK_LIMIT
    return table.get(device_type, table["cpu"])


def make_backend(name: str, **options):
    """The backend called ``name``; ``options`` are its constructor's keyword arguments (a
    TypeError names one it does not take)."""
    classes = {"exact": "ExactSearch", "patchmatch": "PatchMatch", "faiss": "FaissSearch"}
    if name not in classes:
        raise ValueError(f"unknown nearest-neighbour backend {name!r}; expected one of {BACKENDS}")
    return __getattr__(classes[name])(**options)


def backend_for(requested: str, work: float, device_type: str, wraps_time: bool = False) -> str:
    """The one rule that picks a backend: ``requested`` unless it is 'auto'; then exhaustive
    search while one output's search costs at most :func:`exact_work_limit` multiply-adds;
    beyond that PatchMatch where its compiled kernel runs (whole patches: on the 256x144x15
    example 3-4x faster than faiss on a CPU at a lower coherence), else faiss on a CPU (where
    installed) and PatchMatch on descriptors otherwise. A target whose time wraps (a loop) keeps
    faiss on a CPU: with the numba PatchMatch a sliding texture's loop kept 0.93 of its seam
    (tests/test_retarget.py), with faiss 0.70; why is not yet understood."""
    if requested != "auto":
        return requested
    if work <= exact_work_limit(device_type):
        return "exact"
    if device_type == "cpu" and (wraps_time or not fused_patchmatch("cpu")) and faiss_available():
        return "faiss"
    return "patchmatch"


def choose_backend(requested: str, request, wraps_time: bool = False) -> str:
    """:func:`backend_for` one search (a :class:`SearchRequest`)."""
    return backend_for(requested, request.work(), request.queries.device.type, wraps_time)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["BACKENDS", "NearestNeighbourBackend", "SearchRequest", "ExactSearch", "FaissSearch",
           "PatchMatch", "make_backend", "exact_work_limit", "backend_for", "choose_backend", "faiss_available",
           "fused_patchmatch"]
