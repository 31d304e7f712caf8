"""Tests for vgpnn.pyramid: level counts, per-axis floors, images, pyramid shapes, minimum."""

import pytest
import torch

from vgpnn.pyramid import build_pyramid, pyramid_geometry
from conftest import smooth_video


def test_reference_clip_geometry():
    geometry = pyramid_geometry((15, 144, 256), 0.85, 3, 15)
    assert geometry.levels == 15
    assert geometry.level_shape((15, 144, 256), 0) == (15, 144, 256)
    assert geometry.level_shape((15, 144, 256), geometry.levels - 1) == (3, 15, 27)
    shapes = [geometry.level_shape((15, 144, 256), k) for k in range(geometry.levels)]
    for finer, coarser in zip(shapes, shapes[1:]):
        assert all(c <= f for c, f in zip(coarser, finer))
        assert coarser != finer


def test_each_axis_stops_at_its_own_minimum():
    geometry = pyramid_geometry((15, 144, 256), 0.85, 3, 15)
    shapes = [geometry.level_shape((15, 144, 256), k) for k in range(geometry.levels)]
    first_at_three = next(k for k, s in enumerate(shapes) if s[0] == 3)
    assert first_at_three < geometry.levels - 1  # time reaches 3 before the end...
    assert all(s[0] == 3 for s in shapes[first_at_three:])  # ...and stays there
    heights = [s[1] for s in shapes[first_at_three:]]
    assert all(b < a for a, b in zip(heights, heights[1:]))  # while space keeps shrinking
    assert min(s[1] for s in shapes) == 15


def test_single_image_keeps_one_frame():
    geometry = pyramid_geometry((1, 144, 256), 0.85, 3, 15)
    assert geometry.levels == 15
    for k in range(geometry.levels):
        assert geometry.level_shape((1, 144, 256), k)[0] == 1
    assert geometry.level_shape((1, 144, 256), geometry.levels - 1)[1:] == (15, 27)


def test_already_small_source_has_one_level():
    geometry = pyramid_geometry((3, 15, 20), 0.85, 3, 15)
    assert geometry.levels == 1


def test_build_pyramid_shapes_match_level_shape():
    video = smooth_video((3, 8, 32, 48))
    geometry = pyramid_geometry((8, 32, 48), 0.75, 3, 15)
    levels = build_pyramid(video, geometry)
    assert len(levels) == geometry.levels > 2
    assert torch.equal(levels[0], video)
    for k, level in enumerate(levels):
        assert tuple(level.shape) == (3, *geometry.level_shape((8, 32, 48), k))
    assert tuple(levels[-1].shape[1:]) == (3, 15, 22)


def test_minimum_is_honoured():
    geometry = pyramid_geometry((8, 32, 48), 0.75, 1, 4)
    minimum = (3, 7, 7)
    coarsest_free = geometry.level_shape((8, 32, 48), geometry.levels - 1)
    assert coarsest_free[0] < 3 and coarsest_free[1] < 7  # the minimum really bites
    for k in range(geometry.levels):
        shape = geometry.level_shape((8, 32, 48), k, minimum)
        assert all(s >= m for s, m in zip(shape, minimum))
    levels = build_pyramid(smooth_video(), geometry, minimum=minimum)
    assert tuple(levels[-1].shape[1:]) == geometry.level_shape((8, 32, 48), geometry.levels - 1, minimum)
    assert all(level.shape[1] >= 3 and level.shape[2] >= 7 for level in levels)


@pytest.mark.parametrize("factor", [0.5, 0.75, 0.9])
def test_coarsest_reaches_floors(factor):
    geometry = pyramid_geometry((20, 60, 80), factor, 3, 15)
    coarsest = geometry.level_shape((20, 60, 80), geometry.levels - 1)
    assert coarsest[0] == 3 and coarsest[1] == 15 and coarsest[2] == 20
    finest = geometry.level_shape((20, 60, 80), 0)
    assert finest == (20, 60, 80)


@pytest.mark.parametrize("shape, factor", [((8, 32, 48), 0.85), ((20, 60, 80), 0.9)])
def test_no_two_levels_have_the_same_shape(shape, factor):
    geometry = pyramid_geometry(shape, factor, 3, 15)
    shapes = [geometry.level_shape(shape, k) for k in range(geometry.levels)]
    assert len(set(shapes)) == len(shapes)
    assert min(shapes[-1][1:]) == 15
