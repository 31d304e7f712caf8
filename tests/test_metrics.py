"""Tests for vgpnn.metrics: coherence, completeness, diversity, nnf_div and the dominant-offset share on tiny videos."""

import pytest
import torch

from vgpnn.metrics import (border_step, coherence, completeness, diversity, dominant_offset_share, fill_detail,
                           nearest_offsets, nnf_div, ring_outside)
from conftest import smooth_video

SHAPE = (3, 6, 24, 32)


def noisy(video, sigma, seed=1):
    return video + sigma * torch.randn(video.shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def source():
    return smooth_video(SHAPE)


def test_source_against_itself_is_zero(source):
    assert coherence(source, source) == pytest.approx(0.0, abs=1e-9)
    assert completeness(source, source) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("metric", [coherence, completeness])
def test_grows_with_noise(source, metric):
    scores = [metric(noisy(source, sigma), source, sample=500) for sigma in (0.02, 0.05, 0.1)]
    assert scores[0] > 0
    assert scores[0] < scores[1] < scores[2]
    # Far from anything in the source, the error is near the noise variance (NN may pick a
    # patch that fits the noise a little, never more than the noise itself).
    assert 0.3 * 0.1**2 < scores[2] <= 1.1 * 0.1**2 + 1e-3


def test_completeness_sees_missing_content(source):
    """An output that repeats one half of the source is coherent but not complete."""
    half = source[:, :, :, :16]
    repeated = torch.cat([half, half], dim=3)
    # Only patches across the seam are new (measured 7.6e-4 vs 2.7e-3).
    assert completeness(repeated, source, sample=500) > 2.5 * coherence(repeated, source, sample=500)
    assert coherence(repeated, source, sample=500) < coherence(noisy(source, 0.05), source, sample=500)


def test_sampling_is_seeded(source):
    video = noisy(source, 0.05)
    assert coherence(video, source, sample=300, seed=4) == coherence(video, source, sample=300, seed=4)


def test_diversity(source):
    identical = torch.stack([source, source, source])
    assert diversity(identical, source) == pytest.approx(0.0, abs=1e-6)
    independent = torch.stack([smooth_video(SHAPE, seed=s) for s in (1, 2, 3)])
    assert diversity(independent, source) > 0.5
    slightly = torch.stack([source, noisy(source, 0.01)])
    assert 0 < diversity(slightly, source) < diversity(independent, source)
    with pytest.raises(ValueError):
        diversity(source[None], source)


def test_nnf_div_copies_compress_better_than_recompositions(source):
    shifted = source[:, 1:, 3:, 5:]  # a plain shift: every patch has the same offset
    blocks = source.unfold(2, 8, 8).unfold(3, 8, 8)  # (C, T, 3, 4, 8, 8)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    shuffled = blocks.reshape(3, 6, 12, 8, 8)[:, :, order].reshape(3, 6, 3, 4, 8, 8)
    shuffled = shuffled.permute(0, 1, 2, 4, 3, 5).reshape(3, 6, 24, 32)  # blocks in a new order
    assert torch.equal(shuffled.flatten().sort().values, source.flatten().sort().values)
    copy_score = nnf_div(source, source)
    shift_score = nnf_div(shifted, source)
    shuffle_score = nnf_div(shuffled, source)
    assert shift_score < shuffle_score
    assert copy_score < shuffle_score
    assert shuffle_score < nnf_div(smooth_video(SHAPE, seed=9), source)  # unrelated content: no structure


def test_dominant_offset_share_catches_a_shifted_copy(source):
    shifted = source[:, 1:, 3:, 5:]  # every patch sits at (1, 3, 5) from its original
    offsets = nearest_offsets(shifted, source)
    assert offsets.shape[0] == 3
    share = dominant_offset_share(shifted, source, offsets=offsets)
    assert share > 0.95
    assert torch.equal(torch.mode(offsets.reshape(3, -1), dim=1).values, torch.tensor([1, 3, 5]))
    blocks = source.unfold(2, 8, 8).unfold(3, 8, 8)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    shuffled = blocks.reshape(3, 6, 12, 8, 8)[:, :, order].reshape(3, 6, 3, 4, 8, 8)
    shuffled = shuffled.permute(0, 1, 2, 4, 3, 5).reshape(3, 6, 24, 32)
    assert dominant_offset_share(shuffled, source) < 0.5 * share  # re-composed from 12 places


def box_region(shape=SHAPE):
    region = torch.zeros(shape[1:], dtype=torch.bool)
    region[:, 8:16, 10:22] = True
    return region


def test_border_step_sees_a_brightness_offset(source):
    """The input itself continues across any border (about 1); the same content shifted in
    brightness inside the box has an edge only at the border."""
    region = box_region()
    assert border_step(source, region) == pytest.approx(1.0, abs=0.25)
    lighter = torch.where(region, source + 0.15, source)
    assert border_step(lighter, region) > 2.5
    assert border_step(torch.where(region, source - 0.15, source), region) > 2.5


def test_fill_detail_sees_a_flat_or_blurred_fill(source):
    region = box_region()
    assert fill_detail(source, region) == pytest.approx(1.0, abs=0.25)
    flat = torch.where(region, source[:, region].mean(1)[:, None, None, None], source)
    assert fill_detail(flat, region) == pytest.approx(0.0, abs=1e-6)
    # A copy of other content, with its own detail, scores like the input.
    copied = torch.where(region, smooth_video(SHAPE, seed=5), source)
    assert fill_detail(copied, region) == pytest.approx(1.0, abs=0.25)
    blurred = torch.nn.functional.avg_pool3d(source[None], (1, 5, 5), stride=1, padding=(0, 2, 2))[0]
    assert fill_detail(torch.where(region, blurred, source), region) < 0.6


def test_ring_outside_is_a_ring():
    region = box_region()
    ring = ring_outside(region, 2)
    assert not (ring & region).any()
    assert int(ring[0].sum()) == (8 + 4) * (12 + 4) - 8 * 12


def test_kept_share_is_the_weight_under_the_outputs_nearest_source_patches():
    from vgpnn.metrics import kept_share
    source = smooth_video((3, 6, 16, 24), seed=3)
    crop = source[:, :, :, :12]  # the left half: every patch is its own source patch
    left = torch.zeros(6, 16, 24)
    left[:, :, :12] = 1
    assert kept_share(crop, source, torch.ones(6, 16, 24)) == pytest.approx(0.5)
    assert kept_share(crop, source, left) == pytest.approx(1.0)
    assert kept_share(crop, source, 1 - left) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="weight"):
        kept_share(crop, source, torch.ones(6, 16, 12))
