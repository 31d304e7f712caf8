"""Dense optical flow: OpenCV's DIS between frames, warping along a flow, occlusion."""

import pytest
import torch
import torch.nn.functional as F

from vgpnn.flow import DIS_PRESETS, dis_flow, dis_safe_shape, frame_flows, occlusion, warp


def _texture(height=64, width=80, seed=0):
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 1, height, width, generator=generator)
    return F.avg_pool2d(noise, 3, 1, 1)[0, 0]


@pytest.mark.parametrize("preset", list(DIS_PRESETS))
def test_dis_recovers_a_known_shift(preset):
    first = _texture()
    second = torch.roll(first, shifts=(-2, 3), dims=(0, 1))  # content moves 3 right, 2 up
    flow = dis_flow(first, second, preset)
    assert flow.shape == (2, 64, 80)
    middle = flow[:, 10:-10, 10:-10].mean((1, 2))
    assert torch.allclose(middle, torch.tensor([3.0, -2.0]), atol=0.25)


@pytest.mark.parametrize("scale", [1.5, 3.0])
def test_a_flow_solved_on_enlarged_frames_is_in_the_frames_own_pixels(scale):
    first = _texture()
    second = torch.roll(first, shifts=(-2, 3), dims=(0, 1))
    flow = dis_flow(first, second, scale=scale)
    assert flow.shape == (2, 64, 80)
    middle = flow[:, 10:-10, 10:-10].mean((1, 2))
    assert torch.allclose(middle, torch.tensor([3.0, -2.0]), atol=0.25)


@pytest.mark.parametrize("preset", list(DIS_PRESETS))
@pytest.mark.parametrize("height, width", [(2, 2), (5, 11), (3, 40), (40, 3), (12, 40), (12, 48), (16, 100),
                                           (28, 100), (28, 1000)])
def test_dis_takes_tiny_and_thin_frames(height, width, preset):
    """OpenCV's DIS refuses frames with a side under 12 pixels, and crashed the process on thin
    ones such as 12x48 and 28x100: every frame gets a flow of its own size."""
    first = _texture(height, width)
    flow = dis_flow(first, torch.roll(first, 1, dims=1), preset)
    assert flow.shape == (2, height, width) and torch.isfinite(flow).all()


def test_the_safe_shape_pads_only_what_dis_needs():
    assert dis_safe_shape(144, 256) == (144, 256)
    assert dis_safe_shape(6, 64) == (32, 64) and dis_safe_shape(64, 6) == (64, 32)
    assert dis_safe_shape(2, 2) == (12, 12) and dis_safe_shape(12, 20) == (20, 20)


def test_warp_along_an_integer_flow_is_exact_inside():
    image = _texture()[None, None].repeat(1, 3, 1, 1)
    flow = torch.zeros(1, 2, 64, 80)
    flow[:, 0], flow[:, 1] = 3, -2
    moved, inside = warp(image, flow)
    expected = torch.roll(image, shifts=(2, -3), dims=(2, 3))
    assert torch.allclose(moved[..., 2:, :-3], expected[..., 2:, :-3], atol=1e-5)
    assert not inside[0, 0, 0] and not inside[0, 10, -1] and inside[0, 10, 10]


def test_occlusion_finds_what_a_moving_square_uncovers():
    background = _texture(seed=1) * 0.4
    square = 0.5 + _texture(seed=2) * 0.5  # brighter than the background, so DIS locks on
    first, second = background.clone(), background.clone()
    first[20:40, 20:40] = square[20:40, 20:40]
    second[20:40, 28:48] = square[20:40, 20:40]  # the square moves 8 to the right
    gray = torch.stack([first, second])
    forward, backward = frame_flows(gray, [(0, 1), (1, 0)])
    hidden = occlusion(backward[None], forward[None])[0]  # pixels of the second frame not in the first
    uncovered = torch.zeros(64, 80, dtype=torch.bool)
    uncovered[22:38, 22:26] = True  # background that the square covered in the first frame
    assert hidden[uncovered].float().mean() > 0.5
    assert hidden[5:15, 5:75].float().mean() < 0.1  # still background far from the square


def test_bad_flow_inputs_are_refused():
    with pytest.raises(ValueError, match="grayscale frames"):
        dis_flow(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="unknown DIS preset"):
        dis_flow(torch.zeros(8, 8), torch.zeros(8, 8), "slow")
    with pytest.raises(ValueError, match="enlarged"):
        dis_flow(torch.zeros(8, 8), torch.zeros(8, 8), scale=0.5)
    with pytest.raises(ValueError, match="flow"):
        warp(torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 8, 9))
