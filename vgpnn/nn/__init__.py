"""Nearest-neighbour backends behind one interface, and the rule that picks one per level."""

from __future__ import annotations

import importlib.util

import torch

from .base import NearestNeighbourBackend, SearchRequest
from .exact import ExactSearch
from .faiss_ivf import FaissSearch, faiss_available
from .patchmatch import PatchMatch

BACKENDS = ("auto", "exact", "patchmatch", "faiss")

# Exhaustive search is used while a search costs at most this many multiply-adds. On CUDA
# with Triton, PatchMatch compares whole patches in a fused kernel and lands within a few
# percent of exact matches far sooner than exhaustive search beyond small levels; without
# it, PatchMatch compares descriptors and exhaustive search is worth its cost for longer.
EXACT_WORK_LIMIT = {"cpu": 4e9, "cuda": 2e10 if importlib.util.find_spec("triton") else 5e11}


def make_backend(name: str) -> NearestNeighbourBackend:
    if name == "exact":
        return ExactSearch()
    if name == "patchmatch":
        return PatchMatch()
    if name == "faiss":
        return FaissSearch()
    raise ValueError(f"unknown nearest-neighbour backend {name!r}; expected one of {BACKENDS}")


def backend_for(requested: str, work: float, device_type: str) -> str:
    """The one rule that picks a backend: ``requested`` unless it is 'auto'; then exhaustive
    search while one output's search costs at most ``EXACT_WORK_LIMIT`` multiply-adds, beyond
    that faiss on a CPU (where installed) and PatchMatch otherwise."""
    if requested != "auto":
        return requested
    if work <= EXACT_WORK_LIMIT.get(device_type, EXACT_WORK_LIMIT["cpu"]):
        return "exact"
    if device_type == "cpu" and faiss_available():
        return "faiss"
    return "patchmatch"


def choose_backend(requested: str, request: SearchRequest) -> str:
    """:func:`backend_for` one search."""
    return backend_for(requested, request.work(), request.queries.device.type)


__all__ = ["BACKENDS", "NearestNeighbourBackend", "SearchRequest", "ExactSearch", "FaissSearch",
           "PatchMatch", "make_backend", "backend_for", "choose_backend", "faiss_available"]
