"""Tests for vgpnn.kernels: the dispatch rule, and each compiled kernel against its torch oracle.

Tests taking ``device`` run on the CPU (numba kernels) and, where torch sees a GPU, on CUDA
(Triton kernels); a kernel missing there skips them. Tests taking ``triton_cuda`` compare a
Triton kernel with the CPU result and are skipped without a GPU or without triton.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vgpnn import kernels
from vgpnn.best_vote import matched_distances
from vgpnn.nn import SearchRequest, make_backend
from vgpnn.nn.patch_scores import PatchScores
from vgpnn.nn.patchmatch import _State
from vgpnn.patches import field_to_voxel_index, grid_shape, unfold, vote
from conftest import child_env, smooth_video

REPOSITORY = Path(__file__).resolve().parents[1]
PATCH = (3, 5, 5)
COMPILER = {"cpu": kernels.NUMBA, "cuda": kernels.TRITON}
VOTE_CASES = [
    ((3, 5, 5), (6, 20, 24), (6, 20, 24), 2),
    ((3, 7, 7), (5, 12, 13), (7, 15, 11), 1),  # output larger than the values
    ((2, 3, 4), (4, 9, 9), (5, 8, 10), 2),  # even counts everywhere, and at the borders
    ((1, 3, 3), (3, 8, 8), (2, 9, 7), 1),  # one frame per patch, as for images
]


def random_field(value_shape, output_shape, patch, batch, seed):
    key_grid = grid_shape(value_shape, patch)
    return torch.randint(0, key_grid[0] * key_grid[1] * key_grid[2], (batch, *grid_shape(output_shape, patch)),
                         generator=torch.Generator().manual_seed(seed))


def search_problem():
    """Keys (3, 6, 24, 28) and two unrelated query videos (2, 3, 5, 20, 22)."""
    keys = smooth_video((3, 6, 24, 28), 0)
    return keys, torch.stack([smooth_video((3, 5, 20, 22), seed) for seed in (1, 2)])


def exact_field(queries, keys):
    key_rows = unfold(keys, PATCH).double()
    return torch.stack([torch.cdist(unfold(q, PATCH).double(), key_rows).argmin(1) for q in queries])


# -- the dispatch rule ----------------------------------------------------------------------------

def test_the_dispatch_rule(device):
    expected = COMPILER[device] if kernels.available(COMPILER[device]) else None
    video = torch.zeros(3, 4, 6, 6, device=device)
    assert kernels.compiler_for(video) == expected
    assert kernels.compiler_for(video, video) == expected
    assert kernels.compiler_for(video.double()) is None
    assert kernels.compiler_for(video, video.half()) is None
    assert kernels.compiler_for(video, torch.zeros(1, device="meta")) is None
    assert kernels.compiler_for(torch.zeros(1, device="meta")) is None
    assert kernels.patchmatch_fused(video[None], video) == expected


def test_importing_vgpnn_imports_no_compiler_and_compiles_nothing():
    script = ("import sys, vgpnn, vgpnn.patches, vgpnn.best_vote, vgpnn.nn, vgpnn.synthesis, vgpnn.kernels;"
              "print(sorted(name for name in ('numba', 'triton') if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPOSITORY,
                          env=child_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- the vote -------------------------------------------------------------------------------------

@pytest.mark.parametrize("patch, value_shape, output_shape, batch", VOTE_CASES)
@pytest.mark.parametrize("reduce", ["median", "mean"])
def test_vote_kernel_equals_the_torch_vote(device, patch, value_shape, output_shape, batch, reduce, request):
    values = smooth_video((3, *value_shape), 6)
    field = random_field(value_shape, output_shape, patch, batch, 1)
    base = field_to_voxel_index(field, value_shape, patch)
    compiled = kernels.vote(values.to(device), base.to(device), patch, reduce, output_shape)
    if compiled is None:
        pytest.skip(f"no vote kernel on {device} here ({COMPILER[device]} is missing)")
    assert compiled.device.type == device
    request.getfixturevalue("torch_only")
    oracle = vote(values, field, output_shape, patch, reduce)
    if reduce == "median":  # both take the lower middle value
        assert torch.equal(compiled.cpu(), oracle)
    else:  # float64 sums in the kernels; torch's float32 sums may differ in the last bit
        assert torch.allclose(compiled.cpu(), oracle, atol=1e-6)


@pytest.mark.parametrize("reduce", ["median", "mean"])
def test_vote_kernel_on_coherent_fields_equals_the_torch_vote(device, reduce, request):
    """A finished level's field is mostly shifted copies: voxels whose covering patches name one
    source voxel, a few, or many (the kernel counts contributions by source voxel and has one
    way for each, and a shortcut for one shifted copy); all must give the torch vote's lower
    medians, and its means to rounding."""
    patch, value_shape, output_shape = (3, 5, 5), (6, 20, 24), (6, 18, 22)
    key_grid, grid = grid_shape(value_shape, patch), grid_shape(output_shape, patch)
    t, y, x = torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij")
    generator = torch.Generator().manual_seed(3)
    fields = []
    for shift in ((0, 0, 0), (0, 2, 1), (1, 0, 3)):  # whole copies, shifted
        fields.append(((t + shift[0]).clamp(max=key_grid[0] - 1) * key_grid[1]
                       + (y + shift[1]).clamp(max=key_grid[1] - 1)) * key_grid[2]
                      + (x + shift[2]).clamp(max=key_grid[2] - 1))
    pieces = fields[1].clone()
    pieces[:, :, grid[2] // 2:] = fields[2][:, :, grid[2] // 2:]  # two copies meeting at a seam
    noisy = fields[0].clone()
    scattered = torch.rand(grid, generator=generator) < 0.3  # a third of the patches anywhere
    noisy[scattered] = torch.randint(0, key_grid[0] * key_grid[1] * key_grid[2], (int(scattered.sum()),),
                                     generator=generator)
    anywhere = random_field(value_shape, output_shape, patch, 1, 4)[0]  # more sources than the kernel counts
    field = torch.stack([fields[0], pieces, noisy, anywhere])
    values = smooth_video((3, *value_shape), 7)
    base = field_to_voxel_index(field, value_shape, patch)
    compiled = kernels.vote(values.to(device), base.to(device), patch, reduce, output_shape)
    if compiled is None:
        pytest.skip(f"no vote kernel on {device} here ({COMPILER[device]} is missing)")
    request.getfixturevalue("torch_only")
    oracle = vote(values, field, output_shape, patch, reduce)
    if reduce == "median":
        assert torch.equal(compiled.cpu(), oracle)
    else:
        assert torch.allclose(compiled.cpu(), oracle, atol=1e-6)


@pytest.mark.parametrize("patch, value_shape, output_shape, batch", VOTE_CASES)
@pytest.mark.parametrize("reduce", ["median", "mean"])
def test_triton_vote_equals_the_cpu_vote_bit_for_bit(triton_cuda, patch, value_shape, output_shape, batch,
                                                     reduce):
    from vgpnn.kernels import vote_triton
    values = smooth_video((3, *value_shape), 6)
    field = random_field(value_shape, output_shape, patch, batch, 1)
    on_cpu = vote(values, field, output_shape, patch, reduce)
    base = field_to_voxel_index(field, value_shape, patch).to(triton_cuda)
    on_gpu = vote_triton.run_vote(values.to(triton_cuda), base, patch, reduce, output_shape)
    assert torch.equal(on_gpu.cpu(), on_cpu)
    assert torch.equal(vote(values.to(triton_cuda), field.to(triton_cuda), output_shape, patch, reduce).cpu(), on_cpu)


# -- the best-patch vote's distances --------------------------------------------------------------

def test_matched_distances_kernel_equals_the_torch_oracle(device, request):
    generator = torch.Generator().manual_seed(1)
    values, queries = torch.rand(3, 6, 9, 8, generator=generator), torch.rand(2, 3, 5, 7, 9, generator=generator)
    patch = (3, 3, 4)
    field = random_field(tuple(values.shape[1:]), tuple(queries.shape[2:]), patch, 2, 2)
    base = field_to_voxel_index(field, tuple(values.shape[1:]), patch)
    compiled = kernels.matched_distances(queries.to(device), values.to(device), base.to(device), patch)
    if device == "cuda":
        assert compiled is None  # no CUDA kernel: torch's gathers run there
        return
    if compiled is None:
        pytest.skip("numba is not installed")
    request.getfixturevalue("torch_only")
    assert torch.allclose(compiled, matched_distances(queries, values, field, patch), rtol=1e-5)


# -- PatchMatch's fused kernels -------------------------------------------------------------------

@pytest.mark.parametrize("patch, with_valid", [((3, 5, 5), False), ((3, 7, 7), True), ((1, 3, 3), True)])
def test_patch_score_kernel_equals_the_torch_oracle(triton_cuda, patch, with_valid):
    keys, queries = search_problem()
    key_count = grid_shape(keys.shape, patch)
    key_count = key_count[0] * key_count[1] * key_count[2]
    query_grid = grid_shape(queries.shape[1:], patch)
    positions = query_grid[0] * query_grid[1] * query_grid[2]
    generator = torch.Generator().manual_seed(0)
    valid = (torch.rand(key_count, generator=generator) < 0.5) if with_valid else None
    field = torch.randint(0, key_count, (2, positions), generator=generator)
    best = torch.rand(2, positions, generator=generator) * 5
    start, n = 7, positions - 20
    proposals = torch.randint(0, key_count, (6, 2, n), generator=generator)
    proposals[3] = proposals[1]  # equal proposals: the first is kept
    results = []
    for device, kernel in (("cpu", False), (triton_cuda, True)):
        on = (lambda t: None if t is None else t.to(device))
        scores = PatchScores(queries.to(device), keys.to(device), patch, on(valid), use_kernel=kernel)
        f, b = field.clone().to(device), best.clone().to(device)
        scores.improve(proposals.to(device), start, f, b)
        results.append((f.cpu(), b.cpu()))
    (cpu_field, cpu_best), (gpu_field, gpu_best) = results
    assert torch.allclose(gpu_best, cpu_best, rtol=1e-5)
    assert torch.equal(gpu_field, cpu_field)
    assert not torch.equal(cpu_field, field)  # something was improved, and only in [start, start + n)
    assert torch.equal(cpu_field[:, :start], field[:, :start]) and torch.equal(cpu_field[:, start + n:], field[:, start + n:])


@pytest.mark.parametrize("with_valid", [False, True])
def test_fused_propagation_equals_the_torch_patchmatch_steps(triton_cuda, with_valid):
    keys, queries = search_problem()
    key_grid, query_grid = grid_shape(keys.shape, PATCH), grid_shape(queries.shape[1:], PATCH)
    key_count = key_grid[0] * key_grid[1] * key_grid[2]
    positions = query_grid[0] * query_grid[1] * query_grid[2]
    generator = torch.Generator().manual_seed(0)
    valid = (torch.rand(key_count, generator=generator) < 0.5) if with_valid else None
    start = torch.randint(0, key_count, (2, positions), generator=generator)
    steps = (4, 2, 1)
    fields = []
    for device in ("cpu", triton_cuda):
        on = (lambda t: None if t is None else t.to(device))
        scores = PatchScores(queries.to(device), keys.to(device), PATCH, on(valid), use_kernel=device != "cpu")
        generators = [torch.Generator(device).manual_seed(s) for s in (0, 1)]
        state = _State(scores, on(valid), 2, query_grid, key_grid, generators, 2**18)  # one chunk: no chunk sees another's updates
        state.start(start.reshape(2, *query_grid).to(device))
        if device == "cpu":
            for step in steps:
                state.try_neighbours([(axis, sign * step, 0) for axis in range(3)
                                      if step < query_grid[axis] or step == 1 for sign in (1, -1)])
            fields.append(state.field)
        else:
            fields.append(kernels.patchmatch_propagate(
                scores.queries, scores.keys, PATCH, state.field, state.best, on(valid), 1, steps, generators,
                jitter=False, random_key=False).cpu())
    assert not torch.equal(fields[0], start)
    assert torch.equal(fields[1], fields[0])


def test_patchmatch_with_fused_kernels_nearly_reaches_the_oracle(triton_cuda):
    keys, queries = search_problem()
    queries = queries[:1]
    field = make_backend("patchmatch").search(SearchRequest(queries.to(triton_cuda), keys.to(triton_cuda), PATCH,
                                                            seeds=(0,)))
    key_rows, rows = unfold(keys, PATCH).double(), unfold(queries[0], PATCH).double()
    found = (rows - key_rows[field.cpu().reshape(-1)]).square().sum(1).mean()
    best = (rows - key_rows[exact_field(queries, keys)[0]]).square().sum(1).mean()
    assert found <= 1.05 * best  # whole patches, not descriptors: within a few percent



# -- PatchMatch on the CPU (numba) -----------------------------------------------------------------

@pytest.fixture()
def numba_cpu():
    if not kernels.available(kernels.NUMBA):
        pytest.skip("needs numba")
    return "cpu"


def true_distances(queries, keys, field):
    """(B, Nq) float64 distances of each query patch to the key patch ``field`` names."""
    key_rows = unfold(keys, PATCH).double()
    return torch.stack([(unfold(q, PATCH).double() - key_rows[f.reshape(-1)]).square().sum(1)
                        for q, f in zip(queries, field)])


def test_cpu_patchmatch_nearly_reaches_the_exact_search_and_never_beats_it(numba_cpu):
    keys, queries = search_problem()
    field = make_backend("patchmatch", rounds=8).search(SearchRequest(queries, keys, PATCH, seeds=(0, 1)))
    found = true_distances(queries, keys, field)
    best = true_distances(queries, keys, exact_field(queries, keys))
    assert bool((found >= best - 1e-6).all())  # a real key patch: never nearer than the nearest
    assert float(found.mean()) <= 1.05 * float(best.mean())  # whole patches: within a few percent


def test_cpu_patchmatch_is_deterministic_and_independent_of_the_thread_count(numba_cpu):
    import numba
    keys, queries = search_problem()
    search = make_backend("patchmatch", rounds=2)
    first = search.search(SearchRequest(queries, keys, PATCH, seeds=(3, 4)))
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        alone = search.search(SearchRequest(queries, keys, PATCH, seeds=(3, 4)))
    finally:
        numba.set_num_threads(threads)
    assert torch.equal(first, alone)
    assert torch.equal(first, search.search(SearchRequest(queries, keys, PATCH, seeds=(3, 4))))
    # a video's result depends on its own seed alone, not on the batch it is in
    assert torch.equal(first[1:], search.search(SearchRequest(queries[1:], keys, PATCH, seeds=(4,))))
    assert not torch.equal(first, search.search(SearchRequest(queries, keys, PATCH, seeds=(5, 6))))


def test_cpu_patchmatch_keeps_an_exact_start_and_respects_valid_keys(numba_cpu):
    keys, queries = search_problem()
    exact = exact_field(queries, keys)
    kept = make_backend("patchmatch").search(SearchRequest(queries, keys, PATCH, seeds=(0, 1),
                                                           initial_field=exact.reshape(2, *grid_shape(queries.shape, PATCH))))
    assert torch.equal(kept.reshape(2, -1), exact)  # nothing is strictly nearer than the nearest
    valid = torch.zeros(grid_shape(keys.shape, PATCH), dtype=torch.bool)
    valid[:, :, :8] = True  # only the left part of the keys
    field = make_backend("patchmatch").search(SearchRequest(queries, keys, PATCH, seeds=(0, 1), valid_keys=valid))
    assert bool(valid.reshape(-1)[field.reshape(-1)].all())


@pytest.mark.parametrize("patch", [(3, 7, 7), (3, 5, 5), (1, 3, 3), (2, 4, 6)])
def test_cpu_patch_distance_for_a_fixed_shape_equals_the_general_one(numba_cpu, patch):
    """The patch distance is compiled apart for the common patch shapes (unrolled loops): it must
    give the general loop's sums bit for bit, the true distance, and stop early the same way."""
    import numpy as np
    from vgpnn.kernels import patchmatch_numba
    pt, ph, pw = patch
    generator = np.random.default_rng(1)
    queries = generator.random((2, 6, 12, 14 * 3), dtype=np.float32)  # (B, T, H, W * C), channels last
    keys = generator.random((5, 11, 13 * 3), dtype=np.float32)
    for _ in range(20):
        b, qt, qy, qx = (int(generator.integers(0, n)) for n in (2, 6 - pt + 1, 12 - ph + 1, 14 - pw + 1))
        kt, ky, kx = (int(generator.integers(0, n)) for n in (5 - pt + 1, 11 - ph + 1, 13 - pw + 1))
        where = (queries, b, qt, qy, qx, keys, kt, ky, kx, pt, ph, 3, pw * 3)
        fast = patchmatch_numba._distance(*where, np.float32(np.inf))
        general = patchmatch_numba._distance_rows(*where, np.float32(np.inf))
        assert fast == general
        true = ((queries[b, qt:qt + pt, qy:qy + ph, qx * 3:(qx + pw) * 3].astype(np.float64)
                 - keys[kt:kt + pt, ky:ky + ph, kx * 3:(kx + pw) * 3]) ** 2).sum()
        assert abs(float(fast) - true) <= 1e-4 * true
        limit = np.float32(fast / 3)
        assert patchmatch_numba._distance(*where, limit) == patchmatch_numba._distance_rows(*where, limit) >= limit


def test_patchmatch_compiled_ahead_is_the_kernel_a_real_search_then_loads(tmp_path):
    """A first CPU run has a second process compile PatchMatch's kernel into numba's on-disk
    cache (kernels.prepare): that must be the very signature a search calls, so the search
    loads it (a cache hit, no compile of its own)."""
    environment = child_env(NUMBA_CACHE_DIR=str(tmp_path))

    def run(script):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPOSITORY,
                              env=environment, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run("from vgpnn.kernels import patchmatch_numba as p\n"
               "print(p.cached()); p.compile_into_cache(); print(p.cached())") == ["False", "True"]
    hits, misses = run(
        "import torch\n"
        "from vgpnn import kernels\n"
        "from vgpnn.kernels import patchmatch_numba as p\n"
        "queries, keys = torch.rand(2, 3, 5, 12, 12), torch.rand(3, 5, 12, 12)\n"
        "kernels.patchmatch_search(queries, keys, (3, 7, 7), [1, 2], None, torch.ones(108, dtype=torch.bool), 2, (2, 1))\n"
        "kernels.patchmatch_search(queries, keys, (3, 5, 5), [3, 4], torch.zeros(2, 3 * 8 * 8, dtype=torch.int64), None, 1, (1,))\n"
        "print(sum(p._step.stats.cache_hits.values()), sum(p._step.stats.cache_misses.values()))")
    assert (int(hits), int(misses)) == (1, 0)


class _FakeCompile:
    def __init__(self, command, **options):
        self.command, self.waited = command, False
        _FakeCompile.started.append(self)

    def wait(self, timeout=None):
        self.waited = True
        return 0


def test_a_cpu_job_compiles_patchmatch_ahead_once_and_only_where_it_is_not_cached(monkeypatch):
    from vgpnn.kernels import patchmatch_numba

    monkeypatch.setattr(kernels, "_compiling_ahead", None)
    monkeypatch.setattr(subprocess, "Popen", _FakeCompile)
    _FakeCompile.started = []
    monkeypatch.setattr(patchmatch_numba, "cached", lambda: True)
    kernels.prepare(torch.device("cpu"))
    assert _FakeCompile.started == []
    monkeypatch.setattr(patchmatch_numba, "cached", lambda: False)
    kernels.prepare(torch.device("cpu"))
    kernels.prepare(torch.device("cpu"))  # a second input of the same batch
    (compile_ahead,) = _FakeCompile.started
    assert compile_ahead.command[0] == sys.executable and "compile_into_cache()" in compile_ahead.command[-1]
    assert not compile_ahead.waited
    queries, keys = torch.rand(1, 3, 4, 9, 9), torch.rand(3, 4, 9, 9)
    kernels.patchmatch_search(queries, keys, (3, 3, 3), [0], None, None, 1, (1,))
    assert compile_ahead.waited  # the first search waits for it, then loads the kernel it compiled


def test_planning_waits_for_tritons_import_only_and_a_launch_for_the_whole_cuda_set_up(monkeypatch):
    """The cost estimate's level schedule asks whether Triton imports while the set-up thread
    is still busy (CUDA context, Triton's cache key): it must get its answer as soon as the
    import is decided, while a Triton launch waits for the whole set-up."""
    import threading

    release, in_cuda_step = threading.Event(), threading.Event()

    class BlockedDevice:  # the set-up's CUDA step, held until released
        def __init__(self, device):
            in_cuda_step.set()
            release.wait(timeout=30)
            raise RuntimeError("no CUDA here")

    monkeypatch.setattr(torch.cuda, "device", BlockedDevice)
    monkeypatch.setattr(kernels, "_preparing", None)
    monkeypatch.setattr(kernels, "_triton_imported", threading.Event())
    monkeypatch.setattr(kernels, "_importable", {})
    kernels.prepare(torch.device("cuda"))
    assert in_cuda_step.wait(timeout=30)
    assert kernels.available(kernels.TRITON) == (importlib.util.find_spec("triton") is not None)
    launch = threading.Thread(target=kernels._wait_for_preparation)
    launch.start()
    launch.join(timeout=0.2)
    assert launch.is_alive()  # a launch is still waiting for the set-up
    release.set()
    launch.join(timeout=30)
    assert not launch.is_alive()
