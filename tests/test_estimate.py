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


def test_the_estimate_counts_one_patchmatch_round_on_a_gpu_s_large_levels():
    # Schedule rule 3: a large level's PatchMatch makes one round from the coarser level's field
    # (the CPU kernel makes one on every level), so its search counts half on a GPU only.
    shape, config = (8, 40, 64), SynthesisConfig(iterations=2, backend="patchmatch", large_level_voxels=8000)
    for device_type, share in (("cuda", 0.5), ("cpu", 1.0)):
        finest_large = plan_levels(shape, shape, config, device_type)[-1]
        assert finest_large.iterations == 1 and finest_large.backend == "patchmatch"
        queries = (8 - 2) * (40 - 4) * (64 - 4)  # 3x5x5 patches on the large level
        assert finest_large.approx == pytest.approx(queries * share)


def test_estimate_of_the_default_job_is_near_the_measured_time_on_the_reference_cpu():
    # The development machine's figure (vgpnn/estimate.py: 29.6 CPU seconds, 15.8 s of wall time).
    for shape, measured in (((15, 144, 256), 15.8),):
        estimate = reference_seconds(plan_levels(shape, shape, SynthesisConfig(), "cpu"), "cpu")
        assert 0.7 * measured < estimate < 1.3 * measured


def test_the_automatic_working_size_follows_the_device_speed_and_the_job():
    from vgpnn.estimate import DEFAULT_SHORT_SIDE, REFERENCE_MATMUL_RATE, automatic_short_side

    def shape_at(frames, native):
        def shape(side):
            side = native if side is None else side
            return (frames, side, round(side * 16 / 9))
        return shape

    device, config = torch.device("cpu"), SynthesisConfig()
    reference = REFERENCE_MATMUL_RATE["cpu"]
    asked = []

    def rate(value):
        return lambda: asked.append(value) or value

    # never upscaled, and nothing to estimate for an input at or below the default size
    assert automatic_short_side(120, shape_at(30, 120), config, device, rate(reference)) is None and not asked
    # a slow machine: the default size; a far faster one: the input's own size
    assert automatic_short_side(720, shape_at(30, 720), config, device, rate(reference / 100)) == DEFAULT_SHORT_SIDE
    assert automatic_short_side(720, shape_at(30, 720), config, device, rate(reference * 1000)) is None
    # in between, a size between the two; and a still image keeps more of its size than a clip
    middle = automatic_short_side(720, shape_at(30, 720), config, device, rate(reference))
    assert DEFAULT_SHORT_SIDE < middle < 720
    image = automatic_short_side(720, shape_at(1, 720), config, device, rate(reference))
    assert image is None or image > middle
