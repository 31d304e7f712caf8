"""The time model of vgpnn/estimate.py: its pyramid walk is the synthesis's, its figures scale."""

import pytest
import torch
from conftest import smooth_frames, plan_of

from vgpnn.clip_tensor import frames_to_tensor
from vgpnn.config import SynthesisConfig
from vgpnn.estimate import estimate_seconds, plan_levels, reference_seconds
from vgpnn.synthesis import synthesize


@pytest.mark.parametrize("config", [
    SynthesisConfig(iterations=2),
    SynthesisConfig(iterations=1, backend="patchmatch"),
    SynthesisConfig(iterations=2, large_level_voxels=4000),  # the finest levels: 1 iteration, 3x5x5
    SynthesisConfig(iterations=1, patch_size=(3, 5, 5), pyramid_factor=0.7),
])
def test_planned_levels_are_the_levels_synthesis_runs(config):
    source = frames_to_tensor(smooth_frames(8, 24, 32))
    shape = tuple(source.shape[1:])
    ran = synthesize(plan_of(source, shape, config, [0])).levels
    planned = plan_levels(shape, shape, config, "cpu")
    assert [(p.source_shape, p.target_shape, p.patch_size, p.iterations) for p in planned] == \
        [(r.source_shape, r.target_shape, r.patch_size, r.iterations) for r in ran]
    assert [p.backend for p in planned] == [r.backends[0] for r in ran]


def test_estimate_grows_with_the_clip_and_shrinks_with_a_faster_machine():
    config = SynthesisConfig()
    small = plan_levels((15, 72, 128), (15, 72, 128), config, "cpu")
    large = plan_levels((30, 144, 256), (30, 144, 256), config, "cpu")
    assert reference_seconds(large, "cpu") > 4 * reference_seconds(small, "cpu")
    device = torch.device("cpu")
    assert estimate_seconds(large, device, rate=1e11) == pytest.approx(estimate_seconds(large, device, rate=5e10) / 2)


def test_estimate_of_the_default_job_is_near_the_measured_time_on_the_reference_cpu():
    # Measured on the development machine (README, CPU table): 41.8 s and 54.5 s per variation.
    for shape, measured in (((20, 144, 256), 41.8), ((30, 144, 192), 54.5)):
        estimate = reference_seconds(plan_levels(shape, shape, SynthesisConfig(), "cpu"), "cpu")
        assert 0.7 * measured < estimate < 1.3 * measured
