"""Tests for vgpnn.resize: identity, constants, means, shapes, antialiasing, mirrored borders."""

import pytest
import torch

from vgpnn.resize import resize_axis, resize_matrix, resize_video
from conftest import smooth_video


def test_identity_when_sizes_match():
    video = smooth_video()
    assert torch.equal(resize_video(video, (8, 32, 48)), video)
    assert torch.equal(resize_matrix(17, 17, dtype=torch.float64), torch.eye(17, dtype=torch.float64))


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("factor", [0.4, 0.7, 1.6, 2.5])
def test_constant_stays_constant(axis, factor):
    video = torch.full((2, 8, 20, 24), 0.37)
    shape = list(video.shape[1:])
    shape[axis] = max(1, round(shape[axis] * factor))
    out = resize_video(video, tuple(shape))
    assert tuple(out.shape) == (2, *shape)
    assert (out - 0.37).abs().max() < 1e-6


@pytest.mark.parametrize("shape", [(4, 32, 48), (8, 16, 48), (8, 32, 20), (5, 13, 17)])
def test_mean_roughly_preserved_when_shrinking(shape):
    video = smooth_video()
    out = resize_video(video, shape)
    assert abs(out.mean() - video.mean()) < 0.01
    assert torch.allclose(out.mean(dim=(1, 2, 3)), video.mean(dim=(1, 2, 3)), atol=0.01)


@pytest.mark.parametrize("shape", [(3, 32, 48), (8, 11, 48), (8, 32, 97), (13, 40, 30), (1, 1, 1)])
def test_output_shape_for_every_axis(shape):
    video = smooth_video()
    assert tuple(resize_video(video, shape).shape) == (3, *shape)
    batched = torch.stack([video, video])
    assert tuple(resize_video(batched, shape).shape) == (2, 3, *shape)


@pytest.mark.parametrize("axis", [1, 2, 3])
def test_resize_axis_touches_only_its_axis(axis):
    video = smooth_video()
    out = resize_axis(video, axis, 10)
    expected = list(video.shape)
    expected[axis] = 10
    assert list(out.shape) == expected


@pytest.mark.parametrize("reduction", [4, 3])
def test_antialiasing_checkerboard(reduction):
    # At 4x the sample centres fall between pixels; at 3x they fall on pixels, where a cubic
    # without the widened kernel would return the pixel itself (0 or 1).
    y, x = torch.meshgrid(torch.arange(60), torch.arange(60), indexing="ij")
    board = ((y + x) % 2).float()  # highest frequency there is: mean 0.5
    video = board.expand(1, 4, 60, 60).clone()
    out = resize_video(video, (4, 60 // reduction, 60 // reduction))
    assert (out - 0.5).abs().max() < 0.05
    subsampled = video[..., ::reduction, ::reduction]
    assert (subsampled - 0.5).abs().min() > 0.4  # plain subsampling aliases to 0 or 1


def test_antialiasing_in_time():
    flicker = (torch.arange(30) % 2).float()[None, :, None, None].expand(1, 30, 4, 4)
    out = resize_video(flicker, (10, 4, 4))
    assert (out - 0.5).abs().max() < 0.05


@pytest.mark.parametrize("axis", [1, 2, 3])
def test_ramp_enlarged_has_no_dark_edges(axis):
    size = 9
    ramp = torch.linspace(0.2, 0.8, size)
    shape = [1, 5, 6, 7]
    shape[axis] = size
    view = [1, 1, 1, 1]
    view[axis] = size
    video = ramp.reshape(view).expand(shape).clone()
    target = list(video.shape[1:])
    target[axis - 1] = size * 4
    out = resize_video(video, tuple(target))
    assert out.min() >= 0.2 - 0.05
    assert out.max() <= 0.8 + 0.05
    # Edges are near the ramp's ends, not pulled towards 0 as zero padding would.
    line = out.movedim(axis, -1).reshape(-1, size * 4)[0]
    assert abs(line[0] - 0.2) < 0.05 and abs(line[-1] - 0.8) < 0.05
    inner = line[3:-3]  # away from the mirrored ends, the ramp stays a ramp
    assert torch.all(inner[1:] > inner[:-1])


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        resize_video(torch.zeros(8, 32, 48), (4, 16, 24))
    with pytest.raises(ValueError):
        resize_matrix(0, 4)
