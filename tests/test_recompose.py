"""Samples that settle on a shifted copy of the source start again from fresh noise (recompose.py)."""

import pytest
import torch

from vgpnn import synthesis
from vgpnn.config import SynthesisConfig
from vgpnn.errors import ConfigError
from vgpnn.patches import unfold
from vgpnn.recompose import CHECK_AFTER, copy_share, retry_seed, retry_sigma, start_error
from vgpnn.synthesis import synthesize
from conftest import plan_of, smooth_video

SHAPE = (6, 24, 32)  # 6 pyramid levels: more than CHECK_AFTER, so the check runs
KEY_GRID = (4, 8, 10)


def flat(t, y, x):
    return (t * KEY_GRID[1] + y) * KEY_GRID[2] + x


def test_copy_share_is_one_for_a_shifted_copy_and_counts_offsets_exactly():
    t, y, x = torch.meshgrid(torch.arange(2), torch.arange(5), torch.arange(6), indexing="ij")
    shifted = flat(t + 1, y + 2, x + 3)
    identity = flat(t, y, x)
    mixed = identity.clone()
    mixed[:, :, :2] = flat(t, y, x + 4)[:, :, :2]  # a third of the positions at offset (0, 0, 4)
    shares = copy_share(torch.stack([shifted, identity, mixed]), KEY_GRID)
    assert shares.tolist() == pytest.approx([1.0, 1.0, 40 / 60])


def test_start_error_is_the_mean_squared_patch_difference_to_the_chosen_keys():
    generator = torch.Generator().manual_seed(0)
    keys = torch.rand(3, 6, 10, 12, generator=generator)
    patch = (3, 5, 5)
    key_rows = unfold(keys, patch)  # grid (4, 6, 8)
    output = torch.rand(2, 3, 5, 9, 11, generator=generator)  # grid (3, 5, 7)
    field = torch.randint(0, key_rows.shape[0], (2, 3, 5, 7), generator=generator)
    expected = [(unfold(sample, patch) - key_rows[chosen.reshape(-1)]).square().mean().item()
                for sample, chosen in zip(output, field)]
    assert start_error(output, keys, field, patch).tolist() == pytest.approx(expected, rel=1e-5)
    # Sampled: every 4th position or so, still near the whole mean; a copy scores 0.
    assert start_error(output, keys, field, patch, samples=40).tolist() == pytest.approx(expected, rel=0.2)
    copy = keys[None, :, 1:6, 2:9, 3:12]  # grid (3, 3, 5) ... taken at offset (1, 2, 3)
    t, y, x = torch.meshgrid(torch.arange(3), torch.arange(3), torch.arange(5), indexing="ij")
    at = ((t + 1) * 6 + (y + 2)) * 8 + (x + 3)
    assert start_error(copy, keys, at[None], patch).item() == 0


def test_of_starts_under_the_limit_the_more_coherent_is_kept_else_the_smaller_share():
    better = synthesis._better_start
    assert better(0.35, (0.2, 1.0), (0.3, 2.0)) and not better(0.35, (0.2, 3.0), (0.3, 2.0))
    assert better(0.35, (0.3, 9.0), (0.5, 1.0))  # under the limit beats over it, whatever the error
    assert not better(0.35, (0.5, 1.0), (0.3, 9.0))
    assert better(0.35, (0.4, 9.0), (0.5, 1.0)) and not better(0.35, (0.6, 1.0), (0.5, 9.0))


def test_copy_share_of_a_field_pointing_everywhere_is_its_largest_offset_group():
    field = torch.arange(60).flip(0).reshape(1, 2, 5, 6) % (KEY_GRID[0] * KEY_GRID[1] * KEY_GRID[2])
    offsets = {}
    for index, key in enumerate(field.reshape(-1).tolist()):
        query = (index // 30, index // 6 % 5, index % 6)
        keyt = (key // 80, key // 10 % 8, key % 10)
        offset = tuple(k - q for k, q in zip(keyt, query))
        offsets[offset] = offsets.get(offset, 0) + 1
    assert copy_share(field, KEY_GRID).item() == pytest.approx(max(offsets.values()) / 60)


def test_retry_seeds_keep_the_first_start_and_differ_between_starts():
    assert retry_seed(7, 0) == 7
    seeds = {retry_seed(seed, attempt) for seed in range(5) for attempt in range(8)}
    assert len(seeds) == 40
    # Each new start draws more noise than the one before: the first keeps the plan's own.
    sigmas = [retry_sigma(2.5, attempt) for attempt in range(8)]
    assert sigmas[0] == 2.5 and sigmas[4] == pytest.approx(5.0) and sigmas == sorted(set(sigmas))


@pytest.mark.parametrize("bad", [dict(max_copy_share=0.0), dict(max_copy_share=1.5), dict(recompose_tries=0)])
def test_bad_recompose_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        SynthesisConfig(**bad)


def spy_on_copy_share(monkeypatch):
    calls = []

    def spy(field, key_grid):
        shares = copy_share(field, key_grid)
        calls.append(shares)
        return shares

    monkeypatch.setattr(synthesis, "copy_share", spy)
    return calls


def test_a_sample_over_the_limit_starts_again_and_keeps_its_least_copied_start(monkeypatch):
    source = smooth_video((3, *SHAPE))
    calls = spy_on_copy_share(monkeypatch)
    # A limit no field meets: every start is tried and the best one kept.
    strict = SynthesisConfig(iterations=1, max_copy_share=1e-6, recompose_tries=3)
    kept = synthesize(plan_of(source, SHAPE, strict, [2])).videos
    assert len(calls) == 3
    monkeypatch.undo()
    plain = synthesize(plan_of(source, SHAPE, SynthesisConfig(iterations=1, max_copy_share=1.0), [2])).videos
    first_start = float(calls[0][0])
    best = min(float(shares[0]) for shares in calls)
    # The first start is kept only when it was the least copied; otherwise the output changed.
    assert torch.equal(kept, plain) == (best == first_start)


def test_recomposed_samples_are_the_same_in_any_batch_and_under_a_seed():
    source = smooth_video((3, *SHAPE))
    config = SynthesisConfig(iterations=1, max_copy_share=0.05, recompose_tries=3)
    pair = synthesize(plan_of(source, SHAPE, config, [0, 1])).videos
    again = synthesize(plan_of(source, SHAPE, config, [0, 1])).videos
    alone = synthesize(plan_of(source, SHAPE, config, [1])).videos
    assert torch.equal(pair, again)
    assert torch.equal(pair[1], alone[0])


def test_no_restart_without_noise_or_with_fixed_voxels(monkeypatch):
    source = smooth_video((3, *SHAPE))
    calls = spy_on_copy_share(monkeypatch)
    strict = SynthesisConfig(iterations=1, max_copy_share=1e-6, recompose_tries=3)
    synthesize(plan_of(source, SHAPE, SynthesisConfig(iterations=1, noise_sigma=0, max_copy_share=1e-6), [0]))
    fixed_mask = torch.ones(SHAPE, dtype=torch.bool)
    fixed_mask[:, 8:16, 10:20] = False
    synthesize(plan_of(source, SHAPE, strict, [0], fixed=source, fixed_mask=fixed_mask))
    assert calls == []
    synthesize(plan_of(source, SHAPE, strict, [0]))
    assert len(calls) == 3 and CHECK_AFTER < 6
