"""Tests for vgpnn.patches: unfold rows, frame slices, the identity vote, one-patch votes, errors.

Vote tests taking ``device`` run on the CPU and on CUDA where present, through whichever
vote runs there (a kernel from vgpnn.kernels, or torch); the kernels themselves are compared
with the torch vote in test_kernels.py."""

import pytest
import torch

from vgpnn.patches import grid_shape, patch_rows, unfold, vote
from conftest import smooth_video

PATCH = (3, 5, 5)


def identity_field(shape, patch_size, batch=1):
    grid = grid_shape(shape, patch_size)
    count = grid[0] * grid[1] * grid[2]
    return torch.arange(count).reshape(1, *grid).repeat(batch, 1, 1, 1)


def test_grid_shape():
    assert grid_shape((3, 8, 32, 48), (3, 7, 7)) == (6, 26, 42)
    with pytest.raises(ValueError):
        grid_shape((8, 6, 48), (3, 7, 7))


def test_unfold_shape_and_rows():
    video = smooth_video((2, 6, 12, 14))
    rows = unfold(video, PATCH)
    grid = (4, 8, 10)
    assert tuple(rows.shape) == (4 * 8 * 10, 2 * 3 * 5 * 5)
    for t, y, x in [(0, 0, 0), (3, 7, 9), (2, 5, 1), (1, 0, 9)]:
        index = (t * grid[1] + y) * grid[2] + x
        expected = video[:, t:t + 3, y:y + 5, x:x + 5].reshape(-1)
        assert torch.equal(rows[index], expected)


def test_unfold_frame_slice_matches_full():
    video = smooth_video((2, 8, 12, 14))
    full = unfold(video, PATCH)
    per_frame = 8 * 10
    for start, stop in [(0, 1), (2, 5), (5, 6), (0, 6)]:
        part = unfold(video, PATCH, slice(start, stop))
        assert torch.equal(part, full[start * per_frame:stop * per_frame])


def test_patch_rows_are_unfolds_rows_at_the_given_positions():
    video = torch.rand(3, 6, 9, 11, generator=torch.Generator().manual_seed(0))
    patch = (3, 5, 4)
    rows = unfold(video, patch)
    positions = torch.tensor([0, 7, 41, rows.shape[0] - 1, 7])
    assert torch.equal(patch_rows(video, positions, patch), rows[positions])


@pytest.mark.parametrize("patch_size", [(3, 5, 5), (1, 3, 3), (2, 1, 4)])
def test_identity_vote_reproduces_video(patch_size, device):
    video = smooth_video((3, 6, 12, 14))
    field = identity_field(video.shape, patch_size, batch=2)
    median = vote(video.to(device), field.to(device), tuple(video.shape[1:]), patch_size, "median").cpu()
    assert tuple(median.shape) == (2, 3, 6, 12, 14)
    assert torch.equal(median[0], video) and torch.equal(median[1], video)
    mean = vote(video.to(device), field.to(device), tuple(video.shape[1:]), patch_size, "mean").cpu()
    assert (mean - video[None]).abs().max() < 1e-6


def test_identity_vote_in_chunks(torch_only):
    video = smooth_video((3, 6, 12, 14))
    field = identity_field(video.shape, PATCH, batch=2)
    out = vote(video, field, tuple(video.shape[1:]), PATCH, "median", max_elements=1)
    assert torch.equal(out[1], video)


@pytest.mark.parametrize("reduce", ["median", "mean"])
def test_vote_with_one_key_patch(reduce, device):
    values = smooth_video((2, 5, 10, 11))
    output_shape = (4, 9, 13)  # a different shape from the values
    key_grid = grid_shape(values.shape, PATCH)
    t, y, x = 1, 4, 3
    key = (t * key_grid[1] + y) * key_grid[2] + x
    field = torch.full((2, *grid_shape(output_shape, PATCH)), key)
    out = vote(values.to(device), field.to(device), output_shape, PATCH, reduce).cpu()
    assert tuple(out.shape) == (2, 2, *output_shape)
    patch = values[:, t:t + 3, y:y + 5, x:x + 5]
    allowed = patch.reshape(-1)
    if reduce == "median":
        # Each voxel takes one of the patch's values (of its own channel).
        for c in range(2):
            found = out[:, c].reshape(-1, 1)
            assert (found[:, None] == patch[c].reshape(1, -1)).any(-1).all()
    else:
        assert out.min() >= allowed.min() - 1e-6 and out.max() <= allowed.max() + 1e-6
    # The first voxel is covered only by the patch at (0, 0, 0), at offset (0, 0, 0).
    assert torch.equal(out[:, :, 0, 0, 0], patch[:, 0, 0, 0].expand(2, 2))
    # And the last voxel only by the last patch, at its last offset.
    assert torch.equal(out[:, :, -1, -1, -1], patch[:, -1, -1, -1].expand(2, 2))


def test_vote_gathers_the_right_offsets(device):
    """A field shifted by one column copies the values shifted by one column."""
    values = smooth_video((1, 5, 10, 12))
    output_shape = (5, 10, 11)
    grid = grid_shape(output_shape, PATCH)
    key_grid = grid_shape(values.shape, PATCH)
    t, y, x = torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij")
    field = ((t * key_grid[1] + y) * key_grid[2] + x + 1)[None]
    out = vote(values.to(device), field.to(device), output_shape, PATCH).cpu()
    assert torch.equal(out[0], values[:, :, :, 1:])


def test_vote_errors():
    values = smooth_video((1, 5, 10, 12))
    field = identity_field(values.shape, PATCH)
    with pytest.raises(ValueError, match="does not fit"):
        vote(values, field, (5, 11, 12), PATCH)
    with pytest.raises(ValueError, match="does not fit"):
        vote(values, field[:, :, :, :-1], (5, 10, 12), PATCH)
    with pytest.raises(ValueError):
        vote(values, field, (5, 10, 12), PATCH, reduce="max")


def test_unfold_with_an_open_ended_frame_slice_matches_the_full_unfold():
    video = torch.rand(2, 6, 9, 10, generator=torch.Generator().manual_seed(1))
    full = unfold(video, (3, 3, 3))
    per_frame = 7 * 8
    assert torch.equal(unfold(video, (3, 3, 3), slice(2, None)), full[2 * per_frame:])


def test_vote_on_cuda_equals_the_cpu_vote(cuda):
    values = smooth_video((3, 6, 20, 24), 3)
    field = torch.randint(0, 4 * 16 * 20, (2, 4, 16, 20), generator=torch.Generator().manual_seed(0))
    for reduce in ("median", "mean"):
        on_cpu = vote(values, field, (6, 20, 24), PATCH, reduce)
        on_gpu = vote(values.to(cuda), field.to(cuda), (6, 20, 24), PATCH, reduce)
        assert on_gpu.is_cuda
        assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-6)


def test_torch_vote_on_cuda_equals_the_torch_vote_on_the_cpu(cuda, torch_only):
    values = smooth_video((3, 6, 20, 24), 3)
    field = torch.randint(0, 4 * 16 * 20, (2, 4, 16, 20), generator=torch.Generator().manual_seed(0))
    on_gpu = vote(values.to(cuda), field.to(cuda), (6, 20, 24), PATCH).cpu()
    assert torch.equal(on_gpu, vote(values, field, (6, 20, 24), PATCH))
    on_gpu = vote(values.to(cuda), field.to(cuda), (6, 20, 24), PATCH, "mean").cpu()
    assert torch.allclose(on_gpu, vote(values, field, (6, 20, 24), PATCH, "mean"), atol=1e-6)
