"""Every nearest-neighbour backend against a brute-force oracle written here (float64).

Tests taking ``device`` run on the CPU and again on CUDA where present (faiss only on the CPU);
on CUDA with triton, PatchMatch runs its fused kernels (compared with their torch oracle in
test_kernels.py)."""

import pytest
import torch

from vgpnn.nn import ExactSearch, FaissSearch, PatchMatch, SearchRequest, faiss_available, make_backend
from vgpnn.patches import grid_shape, unfold
from conftest import smooth_video

# faiss is CPU-only and may be absent (e.g. on a GPU machine): its cases are then skipped.
BACKENDS = ("exact", "patchmatch") + (("faiss",) if faiss_available() else ())
needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss is not installed")
PATCH = (3, 5, 5)


def distances(query: torch.Tensor, keys: torch.Tensor, patch_size=PATCH) -> torch.Tensor:
    """(query positions, key positions) squared patch distances, float64, by direct differences."""
    rows = unfold(query.double(), patch_size)
    key_rows = unfold(keys.double(), patch_size)
    return torch.cdist(rows, key_rows).square()


def oracle(queries, keys, patch_size=PATCH, valid_keys=None):
    """Exact field (B, grid) and the (B, Nq, Nk) distance matrices it came from."""
    matrices = torch.stack([distances(q, keys, patch_size) for q in queries])
    masked = matrices
    if valid_keys is not None:
        masked = matrices.masked_fill(~valid_keys.reshape(1, 1, -1), float("inf"))
    field = masked.argmin(-1).reshape(queries.shape[0], *grid_shape(queries.shape, patch_size))
    return field, matrices


def mean_distance(field, matrices):
    return matrices.gather(-1, field.reshape(field.shape[0], -1, 1)).mean().item()


@pytest.fixture(scope="module")
def problem():
    keys = smooth_video((3, 6, 20, 24), seed=0)
    independent = smooth_video((3, 5, 16, 20), seed=1)  # unrelated content of the same kind
    # Re-composed content: the keys' halves swapped and shifted, with a little noise.
    recomposed = torch.cat([keys[:, 1:, 2:18, 12:22], keys[:, 1:, 3:19, 0:10]], dim=3)
    recomposed = recomposed + 0.01 * torch.randn(recomposed.shape, generator=torch.Generator().manual_seed(2))
    queries = torch.stack([independent, recomposed])  # (2, 3, 5, 16, 20)
    field, matrices = oracle(queries, keys)
    return queries, keys, field, matrices


def request(queries, keys, seed=0, **extra):
    return SearchRequest(queries, keys, PATCH, seeds=(seed,) * queries.shape[0], **extra)


def skip_faiss_on_cuda(name, device):
    if name == "faiss" and device == "cuda":
        pytest.skip("faiss searches on the CPU")


@pytest.mark.parametrize("name", BACKENDS)
def test_conformance(name, problem, device):
    skip_faiss_on_cuda(name, device)
    queries, keys, expected, matrices = problem
    backend = make_backend(name)
    assert backend.name == name
    field = backend.search(request(queries.to(device), keys.to(device)))
    assert field.device.type == device
    field = field.cpu()
    key_count = matrices.shape[-1]
    assert field.dtype == torch.int64
    assert tuple(field.shape) == tuple(expected.shape) == (2, 3, 12, 16)
    assert field.min() >= 0 and field.max() < key_count
    if backend.exact:
        assert torch.equal(field, expected)
    else:
        for b in range(2):  # each query video on its own: neither may hide behind the other
            ratio = mean_distance(field[b:b + 1], matrices[b:b + 1]) / mean_distance(expected[b:b + 1], matrices[b:b + 1])
            assert 1.0 <= ratio <= 1.25, f"{name} sample {b}: distance ratio {ratio:.3f}"


@pytest.mark.parametrize("name", BACKENDS)
def test_valid_keys_respected(name, problem, device):
    skip_faiss_on_cuda(name, device)
    queries, keys, _, matrices = problem
    key_grid = grid_shape(keys.shape, PATCH)
    valid = torch.zeros(key_grid, dtype=torch.bool)
    valid[..., key_grid[2] // 2:] = True  # the left half of the key positions is forbidden
    valid[1::2] ^= True  # ...on odd frames the right half instead
    assert valid.sum() * 2 == valid.numel()
    expected, _ = oracle(queries, keys, valid_keys=valid)
    field = make_backend(name).search(request(queries.to(device), keys.to(device), valid_keys=valid.to(device))).cpu()
    assert valid.reshape(-1)[field.reshape(-1)].all(), f"{name} returned forbidden keys"
    if name == "exact":
        assert torch.equal(field, expected)
    else:
        ratio = mean_distance(field, matrices) / mean_distance(expected, matrices)
        assert ratio <= 1.25


@needs_faiss
def test_full_faiss_is_exact(problem):
    queries, keys, expected, _ = problem
    dims = 3 * 3 * 5 * 5
    field = FaissSearch(dims=dims, probes=10**6).search(request(queries, keys))
    assert torch.equal(field, expected)


@needs_faiss
def test_faiss_with_few_probes_stays_close():
    """Many cells, few probed: the inverted file really prunes and still finds near keys."""
    keys = smooth_video((3, 6, 20, 24), seed=3)
    queries = smooth_video((3, 5, 16, 20), seed=4)[None]
    expected, matrices = oracle(queries, keys)
    field = FaissSearch(probes=2, keys_per_list=16).search(request(queries, keys))
    assert field.min() >= 0 and field.max() < matrices.shape[-1]
    assert mean_distance(field, matrices) <= 1.3 * mean_distance(expected, matrices)


def test_patchmatch_converges_on_tiny_input():
    keys = smooth_video((3, 4, 12, 14), seed=5)
    queries = smooth_video((3, 4, 10, 12), seed=6)[None]
    expected, _ = oracle(queries, keys)
    # descriptors as long as the patch (the compiled kernels compare whole patches: tested in test_kernels.py)
    field = PatchMatch(rounds=12, dims=3 * 3 * 5 * 5, distances="descriptors").search(request(queries, keys))
    agreement = (field == expected).double().mean().item()
    assert agreement >= 0.95


def test_batch_matches_single_queries(problem):
    queries, keys, expected, matrices = problem
    for name in BACKENDS:
        single = make_backend(name).search(request(queries[1:], keys))
        assert tuple(single.shape) == (1, 3, 12, 16)
        if name == "exact":
            assert torch.equal(single[0], expected[1])
        else:
            ratio = mean_distance(single, matrices[1:]) / mean_distance(expected[1:], matrices[1:])
            assert ratio <= 1.25


def test_exact_search_answers_the_same_in_one_product_or_video_by_video(problem, device):
    """Small levels search every video's rows in one product; larger ones video by video, in
    chunks. Both must give the oracle's answer."""
    queries, keys, expected, _ = problem
    rows = 3 * 12 * 16  # one video's query positions
    key_count = grid_shape(keys.shape, PATCH)
    key_count = key_count[0] * key_count[1] * key_count[2]
    for max_scores in (None, rows * key_count, 7 * key_count):  # all at once, a video at a time, 7 rows
        field = ExactSearch(max_scores=max_scores).search(request(queries.to(device), keys.to(device))).cpu()
        assert torch.equal(field, expected), max_scores


@pytest.mark.parametrize("name", BACKENDS)
def test_deterministic_for_a_seed(name, problem, device):
    skip_faiss_on_cuda(name, device)
    queries, keys = (video.to(device) for video in problem[:2])
    first = make_backend(name).search(request(queries, keys, seed=7))
    second = make_backend(name).search(request(queries, keys, seed=7))
    assert torch.equal(first, second)


def test_patchmatch_result_depends_on_its_own_seed_alone(device):
    keys = smooth_video((3, 6, 24, 28), 0).to(device)
    queries = torch.stack([smooth_video((3, 5, 20, 22), seed) for seed in (1, 2)]).to(device)
    pair = make_backend("patchmatch").search(SearchRequest(queries, keys, PATCH, seeds=(3, 4)))
    again = make_backend("patchmatch").search(SearchRequest(queries, keys, PATCH, seeds=(3, 4)))
    alone = make_backend("patchmatch").search(SearchRequest(queries[1:], keys, PATCH, seeds=(4,)))
    assert torch.equal(pair, again) and torch.equal(pair[1], alone[0])
    one_round = PatchMatch(rounds=1, steps=(1,))  # far from converged, so the seed shows
    other = one_round.search(SearchRequest(queries[1:], keys, PATCH, seeds=(5,)))
    assert not torch.equal(one_round.search(SearchRequest(queries[1:], keys, PATCH, seeds=(4,))), other)


def test_patchmatch_seed_matters(problem):
    queries, keys, _, _ = problem
    first = make_backend("patchmatch").search(request(queries, keys, seed=7))
    second = make_backend("patchmatch").search(request(queries, keys, seed=8))
    assert not torch.equal(first, second)


def test_patchmatch_uses_initial_field(problem):
    queries, keys, expected, matrices = problem
    frozen = PatchMatch(rounds_from_previous=0).search(request(queries, keys, initial_field=expected.clone()))
    assert torch.equal(frozen, expected)
    # With full descriptors nothing beats the exact answer, so improving on it keeps it.
    kept = PatchMatch(dims=3 * 3 * 5 * 5).search(request(queries, keys, initial_field=expected.clone()))
    assert (kept == expected).double().mean() >= 0.99
    # A random start with the same (zero) number of rounds is far worse.
    fresh = PatchMatch(rounds=0).search(request(queries, keys))
    assert mean_distance(fresh, matrices) > 1.5 * mean_distance(expected, matrices)


def test_patchmatch_never_keeps_a_forbidden_starting_match():
    keys = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    valid = torch.zeros(2, 6, 6, dtype=torch.bool)
    valid[:, :, 3:] = True
    start = torch.zeros(1, 2, 6, 6, dtype=torch.int64)  # key 0 is forbidden
    request = SearchRequest(keys[None], keys, (3, 3, 3), valid_keys=valid, initial_field=start)
    field = PatchMatch(rounds_from_previous=1).search(request)
    assert valid.reshape(-1)[field.reshape(-1)].all()


def test_patch_scores_give_the_oracle_distances(problem):
    from vgpnn.nn.patch_scores import PatchScores
    queries, keys, _, matrices = problem
    proposals = torch.randint(0, matrices.shape[-1], (5, 2, 40), generator=torch.Generator().manual_seed(3))
    start = 17
    found = PatchScores(queries, keys, PATCH, None, use_kernel=False)._distance(proposals, start)
    rows = torch.arange(start, start + 40)
    expected = torch.stack([matrices[b][rows, proposals[:, b]] for b in range(2)], 1)  # (5, 2, 40)
    assert torch.allclose(found.double(), expected, rtol=1e-5, atol=1e-6)


def test_patchmatch_on_whole_patches_converges_to_the_oracle():
    keys = smooth_video((3, 4, 12, 14), seed=5)
    queries = smooth_video((3, 4, 10, 12), seed=6)[None]
    expected, _ = oracle(queries, keys)
    field = PatchMatch(rounds=12, distances="patches").search(request(queries, keys))
    assert (field == expected).double().mean().item() >= 0.95


def test_patchmatch_on_whole_patches_keeps_an_exact_start_and_respects_valid_keys(problem):
    queries, keys, expected, _ = problem
    kept = PatchMatch(distances="patches").search(request(queries, keys, initial_field=expected.clone()))
    assert torch.equal(kept, expected)  # nothing is strictly nearer than the nearest
    valid = torch.rand(grid_shape(keys.shape, PATCH), generator=torch.Generator().manual_seed(4)) < 0.3
    field = PatchMatch(distances="patches").search(request(queries, keys, valid_keys=valid))
    assert valid.reshape(-1)[field.reshape(-1)].all()


def test_patchmatch_rejects_an_unknown_distance():
    with pytest.raises(ValueError, match="distances"):
        PatchMatch(distances="cosine")


def test_a_quick_search_makes_one_round_from_its_start(problem):
    # SearchRequest.quick (a large level, schedule rule 3): one PatchMatch round from the start,
    # where the torch path otherwise makes two.
    queries, keys, _, _ = problem
    start = PatchMatch(rounds=1, steps=(1,), distances="descriptors").search(request(queries, keys))

    def search(backend, **extra):
        return backend.search(request(queries, keys, initial_field=start.clone(), **extra))
    quick = search(PatchMatch(distances="descriptors"), quick=True)
    assert torch.equal(quick, search(PatchMatch(rounds_from_previous=1, distances="descriptors")))
    assert not torch.equal(quick, search(PatchMatch(distances="descriptors")))
