"""Tests for vgpnn.synthesis and SynthesisConfig: reconstruction, seeds, shapes, images, records.

Tests taking ``device`` run on the CPU and again on CUDA where present (faiss only on the CPU)."""

import pytest
import torch

from vgpnn.config import SynthesisConfig
from vgpnn.errors import ConfigError
from vgpnn.nn import faiss_available, make_backend
from vgpnn.pyramid import pyramid_geometry
from vgpnn.synthesis import synthesize
from conftest import plan_of, smooth_video

SHAPE = (6, 24, 32)  # frames, height, width of the tiny source: 6 pyramid levels


@pytest.fixture(scope="module")
def source():
    return smooth_video((3, *SHAPE))


def skip_faiss_on_cuda(backend, device):
    if backend == "faiss" and device == "cuda":
        pytest.skip("faiss searches on the CPU")


@pytest.mark.parametrize("backend", ["auto", "patchmatch"] + (["faiss"] if faiss_available() else []))
def test_noise_free_synthesis_reproduces_source(source, backend, device):
    skip_faiss_on_cuda(backend, device)
    config = SynthesisConfig(noise_sigma=0, backend=backend, iterations=2)
    result = synthesize(plan_of(source.to(device), SHAPE, config, [0]))
    assert tuple(result.videos.shape) == (1, 3, *SHAPE)
    assert result.videos.device.type == device
    # Every level's queries equal its keys, so each patch finds itself: the source comes back.
    # (Measured: exactly 0 for every backend.)
    assert (result.videos[0].cpu() - source).abs().max() < 1e-4


def test_same_seeds_same_output_different_seeds_differ(source):
    config = SynthesisConfig(iterations=2)
    first = synthesize(plan_of(source, SHAPE, config, [3])).videos
    second = synthesize(plan_of(source, SHAPE, config, [3])).videos
    other = synthesize(plan_of(source, SHAPE, config, [4])).videos
    assert torch.equal(first, second)
    assert (first - other).abs().max() > 0.05
    assert 0 <= first.min() and first.max() <= 1


def test_noise_changes_the_output(source):
    noisy = synthesize(plan_of(source, SHAPE, SynthesisConfig(iterations=2), [3])).videos[0]
    assert (noisy - source).abs().mean() > 0.01  # a variation, not a copy


@pytest.mark.parametrize("backend", ["auto", "patchmatch"] + (["faiss"] if faiss_available() else []))
def test_a_seed_gives_the_same_video_in_any_batch(source, backend, device):
    skip_faiss_on_cuda(backend, device)
    config = SynthesisConfig(iterations=1, backend=backend)
    pair = synthesize(plan_of(source.to(device), SHAPE, config, [5, 6])).videos
    alone = synthesize(plan_of(source.to(device), SHAPE, config, [6])).videos
    assert tuple(pair.shape) == (2, 3, *SHAPE)
    assert torch.equal(pair[1], alone[0])
    assert not torch.equal(pair[0], pair[1])


def test_retarget_shape_is_exact(source):
    target = (8, 24, 44)  # longer and wider
    result = synthesize(plan_of(source, target, SynthesisConfig(noise_sigma=0, iterations=1), [0]))
    assert tuple(result.videos.shape) == (1, 3, *target)
    assert result.levels[-1].target_shape == target
    assert 0 <= result.videos.min() and result.videos.max() <= 1


@pytest.mark.parametrize("target", [(6, 6, 32), (6, 24, 5), (0, 24, 32)])
def test_target_smaller_than_patch_raises(source, target):
    with pytest.raises(ConfigError, match="patch"):
        synthesize(plan_of(source, target, SynthesisConfig(), [0]))


def test_a_target_shorter_than_the_patch_gets_shorter_patches(source):
    # One rule for every application: in time the patch shrinks to the shorter clip, as for a
    # still image made from a video.
    result = synthesize(plan_of(source, (2, 24, 32), SynthesisConfig(iterations=1), [0]))
    assert tuple(result.videos.shape) == (1, 3, 2, 24, 32)
    assert all(record.patch_size == (2, 7, 7) for record in result.levels)


def test_single_image_source():
    image = smooth_video((3, 1, 24, 32), seed=1)
    result = synthesize(plan_of(image, (1, 24, 36), SynthesisConfig(iterations=2), [0]))
    assert tuple(result.videos.shape) == (1, 3, 1, 24, 36)
    assert all(record.patch_size == (1, 7, 7) for record in result.levels)
    assert all(record.target_shape[0] == 1 for record in result.levels)
    copy = synthesize(plan_of(image, (1, 24, 32), SynthesisConfig(noise_sigma=0, iterations=1), [0]))
    assert (copy.videos[0] - image).abs().max() < 1e-4


def test_level_records_and_progress(source):
    calls = []
    config = SynthesisConfig(iterations=2)
    result = synthesize(plan_of(source, SHAPE, config, [0]), progress=lambda done, total: calls.append((done, total)))
    total = len(result.levels)
    assert total == pyramid_geometry(SHAPE, 0.85, 3, 15).levels
    assert calls == [(done, total) for done in range(1, total + 1)]
    assert result.levels[-1].target_shape == SHAPE  # coarsest first, finest last
    assert result.levels[0].iterations == 1
    for record in result.levels:
        assert len(record.backends) == record.iterations >= 1
        assert all(name in ("exact", "patchmatch", "faiss") for name in record.backends)
        assert record.seconds >= 0


@pytest.mark.parametrize("bad", [
    dict(iterations=0),
    dict(pyramid_factor=1.2),
    dict(pyramid_factor=1.0),
    dict(backend="annoy"),
    dict(noise_sigma=-1.0),
    dict(vote="max"),
    dict(patch_size=(3, 0, 7)),
    dict(patch_size=(3, 7)),
    dict(coarsest_frames=0),
    dict(backend_options={"chunk": 97}),  # options for 'auto': which backend would take them?
    dict(backend="patchmatch", backend_options={"probes": 2}),
    dict(backend="patchmatch", backend_options={"distances": "nearest"}),
    dict(backend="exact", backend_options=5),
])
def test_config_validation(bad):
    with pytest.raises(ConfigError):
        SynthesisConfig(**bad)


def test_config_defaults_are_valid():
    config = SynthesisConfig()
    assert config.patch_size == (3, 7, 7) and config.iterations == 5 and config.vote == "median"


def test_backend_options_reach_the_backend_and_keep_the_config_hashable():
    config = SynthesisConfig(backend="patchmatch", backend_options={"steps": (2, 1), "chunk": 97})
    assert config.backend_options == (("chunk", 97), ("steps", (2, 1)))
    assert hash(config) == hash(SynthesisConfig(backend="patchmatch", backend_options={"chunk": 97, "steps": (2, 1)}))
    backend = make_backend(config.backend, **dict(config.backend_options))
    assert backend.chunk == 97 and backend.steps == (2, 1)


@pytest.mark.parametrize("distances", ["descriptors", "patches"])
def test_patchmatch_in_chunks_gives_the_same_video_in_any_batch(source, distances):
    # Several chunks of positions: the chunking and its random draws must not depend on the batch.
    config = SynthesisConfig(iterations=2, backend="patchmatch", backend_options={"chunk": 97, "distances": distances})
    pair = synthesize(plan_of(source, SHAPE, config, [5, 6])).videos
    alone = synthesize(plan_of(source, SHAPE, config, [6])).videos
    assert torch.equal(pair[1], alone[0])


def test_a_seed_gives_the_same_noise_and_nearly_the_same_video_on_cuda_and_cpu(cuda):
    from vgpnn.synthesis import draw_noise
    assert torch.equal(draw_noise((3, 2, 4, 4), [5], 2.5), draw_noise((3, 2, 4, 4), [5], 2.5))
    source = smooth_video((3, 8, 32, 40), 5)
    config = SynthesisConfig(iterations=1, backend="exact")
    on_gpu = synthesize(plan_of(source.to(cuda), (8, 32, 40), config, [9])).videos[0].cpu()
    on_cpu = synthesize(plan_of(source, (8, 32, 40), config, [9])).videos[0]
    assert (on_gpu - on_cpu).abs().mean() < 0.02  # same seed, same noise: near-identical results


def test_several_sources_are_searched_together_and_masks_and_seams_are_respected():
    from vgpnn.plan import Source, SynthesisPlan, Target
    shape = (3, 24, 32)  # as long as a patch: one time position per source
    dark, bright = torch.full((3, *shape), 0.3), torch.full((3, *shape), 0.9)
    config = SynthesisConfig(noise_sigma=0, iterations=1, coarsest_frames=3, backend="exact")

    def run(sources, start_frames):
        def start(coarsest, source, target_shape, patch_size):
            return torch.tensor(start_frames)[None, :, None, None].expand(3, -1, *target_shape[1:]).clone()
        return synthesize(SynthesisPlan(sources, Target(shape, start=start), (0,), config)).videos[0]

    # Dark frames then a bright one is exactly the patch that would straddle the seam between the
    # two sources; it must never be chosen, so the nearest whole-source patch (dark) is.
    assert torch.allclose(run((Source(dark), Source(bright)), [0.3, 0.3, 0.9]), dark)
    # With the dark source unusable, everything comes from the bright one.
    nothing = torch.zeros(shape, dtype=torch.bool)
    assert torch.allclose(run((Source(dark, usable=nothing), Source(bright)), [0.3, 0.3, 0.3]), bright)


def test_sources_of_different_shapes_or_guides_are_refused(source):
    from vgpnn.plan import Source, SynthesisPlan, Target
    with pytest.raises(ConfigError, match="one shape"):
        SynthesisPlan((Source(source), Source(source[:, :4])), Target((6, 24, 32)), (0,))
    with pytest.raises(ValueError, match="guide channels"):
        SynthesisPlan((Source(source, guides=source[:1]),), Target((6, 24, 32)), (0,))


def test_the_best_vote_keeps_a_source_copy_and_refuses_wrapping_time(source):
    plain = SynthesisConfig(noise_sigma=0, iterations=1, vote="best")
    assert (synthesize(plan_of(source, SHAPE, plain, [0])).videos[0] - source).abs().max() < 1e-4
    with pytest.raises(ConfigError, match="best"):
        plan_of(source, SHAPE, plain, [0], wraps_time=True)
