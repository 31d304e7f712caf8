"""The CUDA path: the same algorithms as on the CPU, checked against the CPU and the oracle.

Skipped where torch sees no CUDA GPU (CI); run on a GPU machine with `python -m pytest tests/test_gpu.py`.
The algorithms themselves are covered on the CPU by the conformance and synthesis tests.
"""

import pytest
import torch
import torch.nn.functional as F

from vgpnn.config import SynthesisConfig
from vgpnn.nn import PatchMatch, SearchRequest, make_backend
from vgpnn.patches import unfold, vote
from conftest import plan_of

from vgpnn.synthesis import synthesize

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
PATCH = (3, 5, 5)


def smooth(shape, seed):
    noise = torch.rand((1, *shape), generator=torch.Generator().manual_seed(seed))
    return F.avg_pool3d(noise, 3, 1, 1)[0]


def oracle(queries, keys):
    key_rows = unfold(keys, PATCH).double()
    return torch.stack([torch.cdist(unfold(q, PATCH).double(), key_rows).argmin(1) for q in queries])


def test_exact_search_on_cuda_equals_the_oracle():
    keys, queries = smooth((3, 6, 24, 28), 0), torch.stack([smooth((3, 5, 20, 22), s) for s in (1, 2)])
    field = make_backend("exact").search(SearchRequest(queries.cuda(), keys.cuda(), PATCH))
    assert field.is_cuda
    assert torch.equal(field.cpu().reshape(2, -1), oracle(queries, keys))


def test_patchmatch_on_cuda_is_close_to_the_oracle():
    keys, queries = smooth((3, 6, 24, 28), 0), smooth((3, 5, 20, 22), 1)[None]
    field = make_backend("patchmatch").search(SearchRequest(queries.cuda(), keys.cuda(), PATCH, seeds=(0,)))
    key_rows, rows = unfold(keys, PATCH).double(), unfold(queries[0], PATCH).double()
    found = (rows - key_rows[field.cpu().reshape(-1)]).square().sum(1).mean()
    best = (rows - key_rows[oracle(queries, keys)[0]]).square().sum(1).mean()
    assert found <= 1.25 * best


@pytest.mark.parametrize("patch, with_valid", [((3, 5, 5), False), ((3, 7, 7), True), ((1, 3, 3), True)])
def test_patch_score_kernel_equals_the_torch_oracle(patch, with_valid):
    pytest.importorskip("triton")
    from vgpnn.nn.patch_scores import PatchScores
    from vgpnn.patches import grid_shape
    keys, queries = smooth((3, 6, 24, 28), 0), torch.stack([smooth((3, 5, 20, 22), s) for s in (1, 2)])
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
    for device, kernel in (("cpu", False), ("cuda", True)):
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
def test_fused_propagation_equals_the_torch_patchmatch_steps(with_valid):
    pytest.importorskip("triton")
    from vgpnn.kernels import patch_scores_triton
    from vgpnn.nn.patch_scores import PatchScores
    from vgpnn.nn.patchmatch import _State
    from vgpnn.patches import grid_shape
    keys, queries = smooth((3, 6, 24, 28), 0), torch.stack([smooth((3, 5, 20, 22), s) for s in (1, 2)])
    key_grid, query_grid = grid_shape(keys.shape, PATCH), grid_shape(queries.shape[1:], PATCH)
    key_count = key_grid[0] * key_grid[1] * key_grid[2]
    positions = query_grid[0] * query_grid[1] * query_grid[2]
    generator = torch.Generator().manual_seed(0)
    valid = (torch.rand(key_count, generator=generator) < 0.5) if with_valid else None
    start = torch.randint(0, key_count, (2, positions), generator=generator)
    steps = (4, 2, 1)
    fields = []
    for device in ("cpu", "cuda"):
        on = (lambda t: None if t is None else t.to(device))
        scores = PatchScores(queries.to(device), keys.to(device), PATCH, on(valid), use_kernel=device == "cuda")
        generators = [torch.Generator(device).manual_seed(s) for s in (0, 1)]
        state = _State(scores, on(valid), 2, query_grid, key_grid, generators, 2**18)  # one chunk: no chunk sees another's updates
        state.start(start.reshape(2, *query_grid).to(device))
        if device == "cpu":
            for step in steps:
                state.try_neighbours([(axis, sign * step, 0) for axis in range(3)
                                      if step < query_grid[axis] or step == 1 for sign in (1, -1)])
            fields.append(state.field)
        else:
            fields.append(patch_scores_triton.propagate_rounds(
                scores.queries, scores.keys, PATCH, state.field, state.best, on(valid), 1, steps, generators,
                jitter=False, random_key=False).cpu())
    assert not torch.equal(fields[0], start)
    assert torch.equal(fields[1], fields[0])


def test_fused_patchmatch_is_deterministic_and_independent_of_the_batch():
    pytest.importorskip("triton")
    keys, queries = smooth((3, 6, 24, 28), 0).cuda(), torch.stack([smooth((3, 5, 20, 22), s) for s in (1, 2)]).cuda()
    pair = make_backend("patchmatch").search(SearchRequest(queries, keys, PATCH, seeds=(3, 4)))
    again = make_backend("patchmatch").search(SearchRequest(queries, keys, PATCH, seeds=(3, 4)))
    alone = make_backend("patchmatch").search(SearchRequest(queries[1:], keys, PATCH, seeds=(4,)))
    one_round = PatchMatch(rounds=1, steps=(1,))  # far from converged, so the seed shows
    other = one_round.search(SearchRequest(queries[1:], keys, PATCH, seeds=(5,)))
    assert torch.equal(pair, again) and torch.equal(pair[1], alone[0])
    assert not torch.equal(one_round.search(SearchRequest(queries[1:], keys, PATCH, seeds=(4,))), other)


def test_patchmatch_on_cuda_uses_whole_patches_and_nearly_reaches_the_oracle():
    pytest.importorskip("triton")
    keys, queries = smooth((3, 6, 24, 28), 0), smooth((3, 5, 20, 22), 1)[None]
    field = make_backend("patchmatch").search(SearchRequest(queries.cuda(), keys.cuda(), PATCH, seeds=(0,)))
    key_rows, rows = unfold(keys, PATCH).double(), unfold(queries[0], PATCH).double()
    found = (rows - key_rows[field.cpu().reshape(-1)]).square().sum(1).mean()
    best = (rows - key_rows[oracle(queries, keys)[0]]).square().sum(1).mean()
    assert found <= 1.05 * best


def test_vote_on_cuda_equals_the_cpu_vote():
    values = smooth((3, 6, 20, 24), 3)
    grid = (4, 16, 20)
    field = torch.randint(0, 4 * 16 * 20, (2, *grid), generator=torch.Generator().manual_seed(0))
    for reduce in ("median", "mean"):
        cpu = vote(values, field, (6, 20, 24), PATCH, reduce)
        gpu = vote(values.cuda(), field.cuda(), (6, 20, 24), PATCH, reduce)
        assert torch.allclose(gpu.cpu(), cpu, atol=1e-6)


@pytest.mark.parametrize("patch, value_shape, output_shape, batch", [
    ((3, 5, 5), (6, 20, 24), (6, 20, 24), 2),
    ((3, 7, 7), (5, 12, 13), (7, 15, 11), 1),  # output larger than the values
    ((2, 3, 4), (4, 9, 9), (5, 8, 10), 2),  # even counts everywhere, and at the borders
    ((1, 3, 3), (3, 8, 8), (2, 9, 7), 1),  # one frame per patch, as for images
])
@pytest.mark.parametrize("reduce", ["median", "mean"])
def test_triton_vote_equals_the_cpu_vote_bit_for_bit(patch, value_shape, output_shape, batch, reduce):
    pytest.importorskip("triton")
    from vgpnn.kernels import vote_triton
    from vgpnn.patches import field_to_voxel_index, grid_shape
    values = smooth((3, *value_shape), 6)
    key_grid = grid_shape(value_shape, patch)
    field = torch.randint(0, key_grid[0] * key_grid[1] * key_grid[2], (batch, *grid_shape(output_shape, patch)),
                          generator=torch.Generator().manual_seed(1))
    cpu = vote(values, field, output_shape, patch, reduce)
    base = field_to_voxel_index(field, value_shape, patch).cuda()
    gpu = vote_triton.run_vote(values.cuda(), base, patch, reduce, output_shape)
    assert torch.equal(gpu.cpu(), cpu)
    assert torch.equal(vote(values.cuda(), field.cuda(), output_shape, patch, reduce).cpu(), cpu)


def test_torch_vote_on_cuda_without_triton_equals_the_cpu_vote(monkeypatch):
    from vgpnn import kernels
    monkeypatch.setattr(kernels, "compiler_for", lambda *tensors: None)
    values = smooth((3, 6, 20, 24), 3)
    field = torch.randint(0, 4 * 16 * 20, (2, 4, 16, 20), generator=torch.Generator().manual_seed(0))
    assert torch.equal(vote(values.cuda(), field.cuda(), (6, 20, 24), PATCH).cpu(), vote(values, field, (6, 20, 24), PATCH))
    gpu = vote(values.cuda(), field.cuda(), (6, 20, 24), PATCH, "mean").cpu()
    assert torch.allclose(gpu, vote(values, field, (6, 20, 24), PATCH, "mean"), atol=1e-6)


def test_noise_free_synthesis_on_cuda_reproduces_the_source():
    source = smooth((3, 8, 32, 40), 4)
    result = synthesize(plan_of(source.cuda(), (8, 32, 40), SynthesisConfig(noise_sigma=0, iterations=1), [0]))
    assert result.videos.is_cuda
    assert (result.videos[0].cpu() - source).abs().max() < 1e-4


def test_a_seed_gives_the_same_noise_on_cuda_and_cpu():
    from vgpnn.synthesis import draw_noise
    assert torch.equal(draw_noise((3, 2, 4, 4), [5], 2.5), draw_noise((3, 2, 4, 4), [5], 2.5))
    source = smooth((3, 8, 32, 40), 5)
    config = SynthesisConfig(iterations=1, backend="exact")
    gpu = synthesize(plan_of(source.cuda(), (8, 32, 40), config, [9])).videos[0].cpu()
    cpu = synthesize(plan_of(source, (8, 32, 40), config, [9])).videos[0]
    assert (gpu - cpu).abs().mean() < 0.02  # same seed, same noise: near-identical results
