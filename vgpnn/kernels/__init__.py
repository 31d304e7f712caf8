"""Compiled kernels, and the one rule that says when one runs instead of torch.

Each kernel is a faster twin of a torch implementation that lives with its algorithm. The
torch code is the oracle every kernel is tested against, and it runs wherever no kernel
applies (numba or Triton missing, another dtype, another device):

==========================  ==============================  ===========================================
what                        kernel (this package)           torch oracle
==========================  ==============================  ===========================================
median / mean vote          ``vote_numba`` (CPU),           :func:`vgpnn.patches.vote`
                            ``vote_triton`` (CUDA)
best-patch vote distances   ``best_vote_numba`` (CPU)       :func:`vgpnn.best_vote.matched_distances`
PatchMatch scoring and      ``patchmatch_numba`` (CPU),     :class:`vgpnn.nn.patch_scores.PatchScores`,
propagation                 ``patch_scores_triton`` (CUDA)  :class:`vgpnn.nn.patchmatch.PatchMatch`
k-d tree nearest points     ``kd_numba`` (CPU)              :meth:`vgpnn.nn.kd_leaves.KdLeaves.nearest`
propagation's window        ``window_numba`` (CPU)          ``_window_search_torch`` in
search                                                      :mod:`vgpnn.apps.guided_search`
==========================  ==============================  ===========================================

``numba_cache`` and ``triton_jit`` set the two compilers up (an on-disk cache where one can be
kept; one Triton variant per patch shape, not per video size).

Algorithm code calls the functions below and never imports a kernel module itself: ``vote``
and ``matched_distances`` return the kernel's result, or None where no kernel applies and the
caller's torch code runs; PatchMatch asks ``patchmatch_fused`` once per search, because the
fused kernels change how it searches (whole patches instead of descriptors), not only how
fast. numba and Triton are imported on the first call that could use them, so importing vgpnn
imports neither and compiles nothing; torch too is imported only where a tensor is looked at,
so the level schedule can ask :func:`available` before any work.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import threading
from pathlib import Path

NUMBA = "numba"
TRITON = "triton"

# The Triton kernels index a video with 32-bit integers.
_INT32_LIMIT = 2**31

_importable: dict[str, bool] = {}
_preparing: threading.Thread | None = None
_triton_imported = threading.Event()  # set by the set-up thread once Triton's import is decided
_compiling_ahead: subprocess.Popen | None = None
_COMPILE_AHEAD_WAIT = 300  # seconds the first PatchMatch search waits for it, at most


def prepare(device) -> None:
    """Start the one-time set-up a first launch would otherwise wait for, while the caller
    probes and decodes its input. Returns at once.

    On CUDA, in a background thread: Triton's import, the CUDA context and cuBLAS, and Triton's
    driver and cache key. That key hashes Triton's own library (about 400 MB) in every new
    process: 0.26 s of a 4-second command on an H200, and hashing releases the interpreter
    lock, so here it costs nothing. Planning (:func:`available`) waits only for the import;
    the first Triton launch waits for the whole thread, so Triton is only ever set up once.
    Before, the level schedule of the cost estimate waited for all of it (0.47 s on an H100)
    while the coarse levels, which need no Triton, could have run.

    On a CPU, where numba's on-disk cache holds no valid PatchMatch kernel yet (a first run on
    this machine, or after an upgrade): a second process compiles it into that cache. It is the
    largest kernel numba compiles (about 5 s on a 2-core machine) and a job first needs it only
    after the small levels' exhaustive searches, while this process compiles the vote it needs
    first; the first PatchMatch search waits for the second process, then loads the kernel
    from the cache. A first run of the README's main job on the 2-core machine: 39.3 and 37.5 s
    wall against 44.5 and 44.2 s without it (runs taken in turn). The second process is left
    to finish if this one ends first: the cache is then ready for the next run."""
    global _preparing
    if device.type == "cpu":
        _compile_patchmatch_ahead()
    if device.type != "cuda" or _preparing is not None:
        return
    _preparing = threading.Thread(target=_set_up_cuda, args=(device,), name="vgpnn-prepare", daemon=True)
    _preparing.start()


def _compile_patchmatch_ahead() -> None:
    global _compiling_ahead
    if _compiling_ahead is not None or not available(NUMBA):
        return
    from . import patchmatch_numba
    if patchmatch_numba.cached():
        return
    package_parent = str(Path(__file__).resolve().parents[2])  # this copy of vgpnn, whatever sys.path says
    code = (f"import sys; sys.path.insert(0, {package_parent!r}); "
            "from vgpnn.kernels import patchmatch_numba; patchmatch_numba.compile_into_cache()")
    try:
        _compiling_ahead = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:  # no interpreter to start: this process compiles the kernel itself, as before
        pass


def _wait_for_compile_ahead() -> None:
    global _compiling_ahead
    if _compiling_ahead is None:
        return
    try:
        _compiling_ahead.wait(timeout=_COMPILE_AHEAD_WAIT)
    except subprocess.TimeoutExpired:  # then numba compiles it here, as without a head start
        pass
    _compiling_ahead = None


def _set_up_cuda(device) -> None:
    try:
        _import(TRITON)
    finally:
        _triton_imported.set()
    try:
        import torch
        with torch.cuda.device(device):
            torch.ones(2, 2, device=device) @ torch.ones(2, 2, device=device)
            torch.cuda.synchronize()
        if _importable[TRITON]:
            import triton.runtime
            triton.runtime.driver.active.get_current_target()
            from triton.runtime.cache import triton_key  # not public API: absent in some versions
            triton_key()
    except Exception:  # noqa: BLE001 - only a head start: the real first use reports any failure
        pass


def _wait_for_preparation() -> None:
    if _preparing is not None and _preparing is not threading.current_thread():
        _preparing.join()


def available(compiler: str) -> bool:
    """Whether ``compiler`` (NUMBA or TRITON) imports here; tried once per process, on first use.
    Where the set-up thread is importing Triton, this waits for that import, not for the rest
    of the set-up (a launch waits for that: :func:`_wait_for_preparation`)."""
    if compiler == TRITON and _preparing is not None and _preparing is not threading.current_thread():
        _triton_imported.wait()
    return _import(compiler)


def _import(compiler: str) -> bool:
    if compiler not in _importable:
        try:
            importlib.import_module(compiler)
        except ImportError:
            _importable[compiler] = False
        else:
            _importable[compiler] = True
    return _importable[compiler]


def compiler_for(*tensors: torch.Tensor) -> str | None:
    """The dispatch rule: numba for float32 tensors on the CPU, Triton for float32 tensors on
    one CUDA device, each where it imports; None for anything else, so torch runs."""
    import torch

    device = tensors[0].device
    if any(tensor.dtype != torch.float32 or tensor.device != device for tensor in tensors):
        return None
    if device.type == "cpu":
        return NUMBA if available(NUMBA) else None
    if device.type == "cuda":
        return TRITON if available(TRITON) else None
    return None


def vote(values: torch.Tensor, base: torch.Tensor, patch_size: tuple[int, int, int], reduce: str,
         output_shape: tuple[int, int, int]) -> torch.Tensor | None:
    """:func:`vgpnn.patches.vote` by a kernel: values (C, Tv, Hv, Wv), base (B, T', H', W') flat
    voxel index of each chosen patch's first voxel; (B, C, T, H, W), or None without a kernel."""
    compiler = compiler_for(values)
    if compiler == NUMBA:
        import torch
        from . import vote_numba
        return torch.from_numpy(vote_numba.run_vote(values.numpy(), tuple(values.shape[1:]), base.numpy(),
                                                    patch_size, reduce, output_shape))
    if compiler == TRITON and values.numel() < _INT32_LIMIT:
        _wait_for_preparation()
        from . import vote_triton
        return vote_triton.run_vote(values, base, patch_size, reduce, output_shape)
    return None


def matched_distances(queries: torch.Tensor, values: torch.Tensor, base: torch.Tensor,
                      patch_size: tuple[int, int, int]) -> torch.Tensor | None:
    """:func:`vgpnn.best_vote.matched_distances` by a kernel: queries (B, C, T, H, W), values
    (C, Tv, Hv, Wv), base as for :func:`vote`; (B, T', H', W'), or None without a kernel.
    There is no CUDA kernel: there torch's gathers are not what a fill waits for."""
    if compiler_for(queries, values) == NUMBA:
        import torch
        from . import best_vote_numba
        return torch.from_numpy(best_vote_numba.matched_distances(queries.numpy(), values.numpy(), base.numpy(),
                                                                  patch_size))
    return None


def kd_nearest(tree, queries: torch.Tensor, count: int, probes: int, beam: int) -> torch.Tensor | None:
    """:meth:`vgpnn.nn.kd_leaves.KdLeaves.nearest` by a kernel: (Q, count) int64, or None
    without one. There is no CUDA kernel: there the torch search is a small part of a frame."""
    if compiler_for(queries, tree.points) == NUMBA:
        import torch
        from . import kd_numba
        return torch.from_numpy(kd_numba.nearest(queries.numpy(), *tree.kernel_arrays(), count, probes, beam))
    return None


def window_search(target: torch.Tensor, flat_key: torch.Tensor, prediction: torch.Tensor, fields,
                  tied_here: torch.Tensor | None, weight: float, patch: int) -> tuple | None:
    """:func:`vgpnn.apps.guided_search.window_search`'s scoring by a kernel: (best (H, W),
    matches (2, H, W)), or None without one. No CUDA kernel: there the torch passes are fast."""
    if compiler_for(target, flat_key, prediction) != NUMBA:
        return None
    import torch
    from . import window_numba
    best, matches = window_numba.window_search(
        target.numpy(), flat_key.numpy(), target.shape[0], prediction.numpy(),
        ((flat.numpy(), position.numpy()) for flat, position in fields),
        None if tied_here is None else tied_here.numpy(), weight, patch)
    return torch.from_numpy(best), torch.from_numpy(matches)


def patchmatch_fused(queries: torch.Tensor, keys: torch.Tensor) -> str | None:
    """The compiler (NUMBA or TRITON) whose fused PatchMatch can search ``queries`` (B, C, Tq,
    Hq, Wq) in ``keys`` (C, Tk, Hk, Wk): then it scores whole patches and runs its rounds inside
    the kernel. None: PatchMatch runs in torch."""
    compiler = compiler_for(queries, keys)
    if compiler == TRITON and not (queries[0].numel() < _INT32_LIMIT and keys.numel() < _INT32_LIMIT):
        return None
    return compiler


def patchmatch_search(queries, keys, patch_size, seeds, initial_field, valid, rounds, steps,
                      jitter: bool = True, random_key: bool = True) -> torch.Tensor:
    """A whole PatchMatch search by the CPU kernel (:func:`.patchmatch_numba.search`): queries
    (B, C, Tq, Hq, Wq), keys (C, Tk, Hk, Wk), one seed per query video, initial_field (B, Nq)
    or None, valid (Nk,) bool or None; returns the field (B, Nq). Only where
    :func:`patchmatch_fused` said NUMBA."""
    import torch
    from . import patchmatch_numba
    _wait_for_compile_ahead()
    field = patchmatch_numba.search(queries.numpy(), keys.numpy(), patch_size, seeds,
                                    None if initial_field is None else initial_field.numpy(),
                                    None if valid is None else valid.numpy(), rounds, steps,
                                    jitter=jitter, random_key=random_key)
    return torch.from_numpy(field)


def patchmatch_improve(queries, keys, patch_size, proposals, start, field, best, valid) -> None:
    """:meth:`vgpnn.nn.patch_scores.PatchScores.improve` by the fused kernel, in place; only
    where :func:`patchmatch_fused` said TRITON."""
    _wait_for_preparation()
    from . import patch_scores_triton
    patch_scores_triton.improve(queries, keys, patch_size, proposals, start, field, best, valid)


def patchmatch_propagate(queries, keys, patch_size, field, best, valid, rounds, steps, generators,
                         jitter: bool = True, random_key: bool = True) -> torch.Tensor:
    """PatchMatch's rounds by the fused kernel (:func:`.patch_scores_triton.propagate_rounds`);
    only where :func:`patchmatch_fused` said TRITON."""
    _wait_for_preparation()
    from . import patch_scores_triton
    return patch_scores_triton.propagate_rounds(queries, keys, patch_size, field, best, valid, rounds, steps,
                                                generators, jitter=jitter, random_key=random_key)


__all__ = ["NUMBA", "TRITON", "prepare", "available", "compiler_for", "vote", "matched_distances", "kd_nearest", "window_search", "patchmatch_fused",
           "patchmatch_search", "patchmatch_improve", "patchmatch_propagate"]
