"""Nearest-neighbour backends behind one interface, and the rule that picks one per level."""

from __future__ import annotations

import torch

from .. import kernels
from .base import NearestNeighbourBackend, SearchRequest
from .exact import ExactSearch
from .faiss_ivf import FaissSearch, faiss_available
from .patchmatch import PatchMatch

BACKENDS = ("auto", "exact", "patchmatch", "faiss")

# Exhaustive search is used while a search costs at most this many multiply-adds. On CUDA
# with Triton, PatchMatch compares whole patches in a fused kernel and lands within a few
# percent of exact matches far sooner than exhaustive search beyond small levels; without
# it, PatchMatch compares descriptors and exhaustive search is worth its cost for longer.
EXACT_WORK_LIMIT = {"cpu": 4e9, "cuda": 5e11}
EXACT_WORK_LIMIT_FUSED = 2e10  # on CUDA where Triton imports


def exact_work_limit(device_type: str) -> float:
    """Multiply-adds up to which exhaustive search is chosen on ``device_type``."""
    if device_type == "cuda" and kernels.available(kernels.TRITON):
        return EXACT_WORK_LIMIT_FUSED
    return EXACT_WORK_LIMIT.get(device_type, EXACT_WORK_LIMIT["cpu"])


def make_backend(name: str, **options) -> NearestNeighbourBackend:
    """The backend called ``name``; ``options`` are its constructor's keyword arguments (a
    TypeError names one it does not take)."""
    if name == "exact":
        return ExactSearch(**options)
    if name == "patchmatch":
        return PatchMatch(**options)
    if name == "faiss":
        return FaissSearch(**options)
    raise ValueError(f"unknown nearest-neighbour backend {name!r}; expected one of {BACKENDS}")


def backend_for(requested: str, work: float, device_type: str) -> str:
    """The one rule that picks a backend: ``requested`` unless it is 'auto'; then exhaustive
    search while one output's search costs at most :func:`exact_work_limit` multiply-adds, beyond
    that faiss on a CPU (where installed) and PatchMatch otherwise."""
    if requested != "auto":
        return requested
    if work <= exact_work_limit(device_type):
        return "exact"
    if device_type == "cpu" and faiss_available():
        return "faiss"
    return "patchmatch"


def choose_backend(requested: str, request: SearchRequest) -> str:
    """:func:`backend_for` one search."""
    return backend_for(requested, request.work(), request.queries.device.type)


__all__ = ["BACKENDS", "NearestNeighbourBackend", "SearchRequest", "ExactSearch", "FaissSearch",
           "PatchMatch", "make_backend", "exact_work_limit", "backend_for", "choose_backend", "faiss_available"]
