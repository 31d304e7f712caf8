"""The k-d tree search of low-dimensional points (nn/kd_leaves.py) against brute force, in
torch and by its compiled CPU twin (kernels/kd_numba.py)."""

import pytest
import torch

from vgpnn import kernels
from vgpnn.nn.kd_leaves import KdLeaves

# Each test runs the torch search and, where numba imports, the compiled one.
SEARCHES = ["torch", pytest.param("kernel", marks=pytest.mark.skipif(not kernels.available(kernels.NUMBA),
                                                                    reason="needs numba"))]


def tree(points, search, **options):
    built = KdLeaves(points, **options)
    built.use_kernel = search == "kernel"
    return built


def brute_force(points, queries, count):
    return torch.cdist(queries, points).topk(count, dim=1, largest=False).indices


def clustered(count, dims, seed):
    """Points in a few tight clusters and a spread: like a frame's appearance features."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.rand(6, dims, generator=generator)
    which = torch.randint(0, 6, (count,), generator=generator)
    spread = torch.where(torch.rand(count, 1, generator=generator) < 0.7, 0.02, 0.3)
    return centres[which] + spread * torch.randn(count, dims, generator=generator)


@pytest.mark.parametrize("search", SEARCHES)
def test_probing_every_leaf_is_an_exact_search(search):
    points, queries = clustered(3000, 6, seed=1), clustered(500, 6, seed=2)
    built = tree(points, search, leaf_size=32)
    leaves = built.leaves.shape[0]
    found = built.nearest(queries, 3, probes=leaves, beam=leaves)
    expected = brute_force(points, queries, 3)
    distance = lambda index: (queries[:, None] - points[index]).square().sum(2)
    assert torch.allclose(distance(found), distance(expected), atol=1e-6)


@pytest.mark.parametrize("search", SEARCHES)
def test_the_default_probes_find_the_nearest_for_nearly_every_query(search):
    points, queries = clustered(20000, 6, seed=3), clustered(2000, 6, seed=4)
    found = tree(points, search).nearest(queries, 1)[:, 0]
    truth = brute_force(points, queries, 1)[:, 0]
    got = (queries - points[found]).square().sum(1)
    best = (queries - points[truth]).square().sum(1)
    assert float((got <= best + 1e-9).float().mean()) > 0.95
    # Misses are few and near: the mean extra distance is a sliver of the mean distance.
    assert float(got.sqrt().sub(best.sqrt()).mean()) < 0.02 * float(best.sqrt().mean())


@pytest.mark.parametrize("search", SEARCHES)
def test_a_point_is_its_own_nearest_and_padding_is_never_returned(search):
    points = torch.rand(1000, 4, generator=torch.Generator().manual_seed(5))  # 1000 is no power of two
    built = tree(points, search, leaf_size=48)
    assert built.padding.any()  # the leaves are padded with repeats...
    found = built.nearest(points, 5)
    assert torch.equal(found[:, 0], torch.arange(1000))
    for row in found[:, :4]:  # ...which never show up as a second copy of one point
        assert len(set(row.tolist())) == 4


@pytest.mark.parametrize("search", SEARCHES)
def test_fewer_points_than_asked_for_repeat_the_nearest(search):
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    found = tree(points, search).nearest(torch.tensor([[0.9, 0.1]]), 5)
    assert found.tolist() == [[1, 0, 2, 1, 1]]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="points"):
        KdLeaves(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="queries"):
        KdLeaves(torch.rand(10, 3)).nearest(torch.rand(4, 2), 1)


@pytest.mark.skipif(not kernels.available(kernels.NUMBA), reason="needs numba")
def test_the_compiled_search_finds_what_the_torch_search_finds():
    points, queries = clustered(20000, 6, seed=8), clustered(3000, 6, seed=9)
    by_torch, by_kernel = tree(points, "torch").nearest(queries, 4), tree(points, "kernel").nearest(queries, 4)
    distance = lambda index: (queries[:, None] - points[index]).square().sum(2)
    assert torch.allclose(distance(by_torch), distance(by_kernel), atol=1e-6)
    assert float((by_torch == by_kernel).float().mean()) > 0.99  # the same points, but for ties


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_it_finds_what_it_finds_on_the_cpu():
    points, queries = clustered(20000, 6, seed=6), clustered(3000, 6, seed=7)
    on_cpu = KdLeaves(points).nearest(queries, 2)
    on_gpu = KdLeaves(points.cuda()).nearest(queries.cuda(), 2).cpu()
    distance = lambda index: (queries[:, None] - points[index]).square().sum(2)
    assert torch.allclose(distance(on_cpu), distance(on_gpu), atol=1e-5)
