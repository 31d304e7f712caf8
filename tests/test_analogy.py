"""Analogies: optical flow, k-means, completeness weighting, the analogy itself (made of the
appearance, laid out like the structure), images, and `vgpnn analogy` end to end and its errors."""

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vgpnn.apps.analogy import AnalogyOptions, analogy
from vgpnn.cli import main
from vgpnn.clip_tensor import frames_to_tensor
from vgpnn.completeness import completeness_search
from vgpnn.config import SynthesisConfig
from vgpnn.errors import ConfigError
from vgpnn.flow import flow_magnitude, optical_flow
from vgpnn.metrics import coherence
from vgpnn.nn import ExactSearch, SearchRequest
from vgpnn.apps.guides import texture_ranks
from vgpnn.apps.quantize import equalized_ranks, kmeans, ranked_bins
from vgpnn.video import read_clip, write_video

FAST = SynthesisConfig(noise_sigma=0, iterations=2)
FAST_CLI = ["--iterations", "2", "--working-size", "native", "-q"]


def smooth_noise(shape, seed, cell=4):
    """Random values on a coarse grid, interpolated: a texture whose patches are all different."""
    generator = torch.Generator().manual_seed(seed)
    frames, height, width = shape
    coarse = torch.rand(1, frames, height // cell + 2, width // cell + 2, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear",
                                           align_corners=False)[0].numpy()


def appearance_clip(frames=8, height=48, width=64):
    """Still dark-green grass with a bright, flickering orange band (a fire) along the bottom."""
    grass = np.repeat(smooth_noise((1, height, width), 1), frames, 0)
    fire = smooth_noise((frames, height, width), 2, cell=3)
    video = np.stack([0.1 + 0.15 * grass, 0.25 + 0.25 * grass, 0.05 + 0.1 * grass], -1)
    band = slice(height * 2 // 3, height)
    video[:, band] = np.stack([0.85 + 0.15 * fire, 0.45 + 0.35 * fire, 0.05 + 0.1 * fire], -1)[:, band]
    return (video * 255).round().astype(np.uint8)


def structure_clip(frames=8, height=48, width=64, radius=8):
    """A white disk moving down and to the left over black; returns the clip and the centres."""
    rows, columns = np.mgrid[:height, :width]
    video = np.zeros((frames, height, width, 3), np.uint8)
    centres = []
    for t in range(frames):
        centre = (12 + 3 * t, 46 - 2 * t)
        video[t][(rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius**2] = 255
        centres.append(centre)
    return video, np.array(centres, float)


def orange(frames):
    """Where a clip shows the appearance's fire (red well above blue), bool (T, H, W)."""
    return frames[..., 0].astype(int) - frames[..., 2].astype(int) > 120


# ---------------------------------------------------------------------------------------------
# Flow and k-means


@pytest.mark.parametrize("shift", [(1, 0), (2, 1), (-3, 2)])
def test_flow_finds_the_shift_of_a_translating_texture(shift):
    dx, dy = shift
    texture = torch.from_numpy(smooth_noise((1, 120, 160), 0))[0]
    frames = torch.stack([texture[20 - dy * t:100 - dy * t, 20 - dx * t:140 - dx * t] for t in range(4)])
    flow = optical_flow(frames)[:, :, 8:-8, 8:-8]  # borders see content that entered the frame
    # Within 10%: the pull toward zero motion in flat regions costs a few percent of the speed.
    assert flow[:, 0].mean().item() == pytest.approx(dx, abs=0.1 * abs(dx) + 0.05)
    assert flow[:, 1].mean().item() == pytest.approx(dy, abs=0.1 * abs(dy) + 0.05)


def test_flow_magnitude_is_high_on_a_moving_blob_and_low_far_from_it():
    video, _ = structure_clip()
    speed = flow_magnitude(frames_to_tensor(video))
    assert speed.shape == video.shape[:3]
    assert speed[3, 20:24, 38:42].mean() > 5 * speed[3, 40:, :20].mean()
    assert torch.equal(flow_magnitude(frames_to_tensor(video[:1])), torch.zeros(1, 48, 64))


def test_kmeans_separates_obvious_clusters_and_ranks_them():
    generator = torch.Generator().manual_seed(0)
    points = torch.cat([torch.randn(300, 2, generator=generator) * 0.1 + torch.tensor(centre)
                        for centre in ([5.0, 5.0], [0.0, 0.0], [10.0, 0.0])])
    centres, labels = kmeans(points, 3, seed=1)
    assert sorted(centres[:, 0].round().tolist()) == [0.0, 5.0, 10.0]
    for group in range(3):
        assert labels[group * 300:(group + 1) * 300].unique().numel() == 1
    ranks = ranked_bins(points, 3)
    assert ranks[:300].unique().tolist() == [0.5] and ranks[300:600].unique().tolist() == [0.0]
    assert ranks[600:].unique().tolist() == [1.0]
    # Fewer distinct values than bins: as many bins as values, no error.
    assert ranked_bins(torch.tensor([[0.0], [0.0], [2.0]]), 3).tolist() == [0.0, 0.0, 1.0]


def test_kmeans_is_reproducible_from_its_seed():
    points = torch.rand(5000, 1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(kmeans(points, 4, seed=7)[1], kmeans(points, 4, seed=7)[1])


# ---------------------------------------------------------------------------------------------
# Completeness weighting


def test_completeness_weighting_sends_queries_to_keys_no_one_uses():
    # Key 0 matches one query exactly and is nearest to all of them; key 1 is a little further
    # and unused. Weighted, the queries that key 0 does not fit exactly go to key 1.
    keys = torch.tensor([0.50, 0.60]).reshape(1, 1, 1, 2)
    queries = torch.tensor([0.50, 0.54, 0.54, 0.54]).reshape(1, 1, 1, 1, 4)
    plain = ExactSearch().search(SearchRequest(queries, keys, (1, 1, 1)))
    weighted = completeness_search(queries, keys, (1, 1, 1), alpha=1e-3)
    assert plain.flatten().tolist() == [0, 0, 0, 0]
    assert weighted.flatten().tolist() == [0, 1, 1, 1]
    # A huge alpha turns the weighting off: plain nearest neighbours again.
    assert torch.equal(completeness_search(queries, keys, (1, 1, 1), alpha=1e6), plain)


# ---------------------------------------------------------------------------------------------
# The analogy


@pytest.fixture(scope="module")
def disk_analogy():
    structure, centres = structure_clip()
    appearance = appearance_clip()
    output = analogy(structure, appearance, FAST)[0]
    return structure, appearance, output, centres


def test_output_has_the_structures_shape_and_is_made_of_the_appearance(disk_analogy):
    structure, appearance, output, _ = disk_analogy
    assert output.shape == structure.shape and output.dtype == np.uint8
    video = frames_to_tensor(output)
    against_appearance = coherence(video, frames_to_tensor(appearance))
    against_structure = coherence(video, frames_to_tensor(structure))
    # Not near zero: the disk's moving rim has no exact counterpart in APPEARANCE, whose fire never moves.
    assert against_appearance * 10 < against_structure


def test_a_moving_blob_in_the_structure_moves_the_same_way_in_the_output(disk_analogy):
    structure, _, output, centres = disk_analogy
    fire = orange(output)
    found = np.array([np.argwhere(frame).mean(0) for frame in fire])  # (T, 2) row, column
    assert np.abs(found - centres).max() < 6
    moved, expected = found[-1] - found[0], centres[-1] - centres[0]  # (21, -14): down and left
    assert moved @ expected / (np.linalg.norm(moved) * np.linalg.norm(expected)) > 0.9  # same direction
    assert 0.5 < np.linalg.norm(moved) / np.linalg.norm(expected) < 1.5  # and about as far
    # The fire covers the disk and a rim around it (flow spreads a little into the flat black
    # around a moving shape), not the whole frame.
    disk = structure[..., 0] > 127
    assert (fire & disk).sum() > 0.8 * disk.sum()
    assert fire.sum() < 4 * disk.sum()


def test_a_still_image_pair_gives_an_image_with_the_structures_layout():
    structure, centres = structure_clip(frames=1, height=40, width=56)
    appearance = appearance_clip(frames=1, height=48, width=64)
    output = analogy(structure, appearance, FAST)[0]
    assert output.shape == (1, 40, 56, 3)
    centre = np.argwhere(orange(output)[0]).mean(0)
    assert np.abs(centre - centres[0]).max() < 5


def test_a_still_appearance_can_fill_a_moving_structure():
    structure, _ = structure_clip(frames=5)
    appearance = appearance_clip(frames=1)
    assert analogy(structure, appearance, FAST)[0].shape == structure.shape


def test_equalized_ranks_share_ties_and_line_up_quantiles():
    ranks = equalized_ranks(torch.tensor([3.0, 1.0, 1.0, 2.0, 5.0]))
    assert torch.allclose(ranks, torch.tensor([0.75, 0.125, 0.125, 0.5, 1.0]))
    # Two very different ranges of one ordering rank alike.
    values = torch.rand(1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(equalized_ranks(values), equalized_ranks(values.exp() * 40 - 7))


def test_texture_ranks_put_the_textured_half_above_the_flat_half():
    gray = torch.full((2, 48, 64), 0.5)
    gray[:, :, 32:] += torch.from_numpy(smooth_noise((2, 48, 32), 3, cell=2)) * 0.4
    ranks = texture_ranks(gray)
    assert ranks.shape == gray.shape
    assert ranks[:, 4:-4, 40:].min() > ranks[:, 4:-4, :24].max()


def test_a_smooth_structure_is_filled_with_the_appearances_texture():
    """A structure with almost no detail still gets the appearance's texture: the fill is not
    the appearance's flattest region (the still grass here is smoother than the fire)."""
    appearance = appearance_clip(frames=6)
    ramp = np.linspace(40, 200, 64)[None, None, :, None]
    structure = np.broadcast_to(ramp, (6, 48, 64, 3)).round().astype(np.uint8).copy()

    def detail(frames):
        gray = frames.astype(float).mean(-1)
        return np.abs(np.diff(gray, axis=1)).mean() + np.abs(np.diff(gray, axis=2)).mean()

    assert detail(analogy(structure, appearance, FAST)[0]) > 0.7 * detail(appearance)


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError):
        AnalogyOptions(structure_bins=0)
    with pytest.raises(ConfigError, match="larger than the structure"):
        analogy(np.zeros((3, 5, 5, 3), np.uint8), appearance_clip(), FAST)


# ---------------------------------------------------------------------------------------------
# Command line


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def clip_paths(tmp_path):
    structure, appearance = tmp_path / "disk.mp4", tmp_path / "fire.mp4"
    write_video(structure, structure_clip(frames=6)[0], Fraction(24))
    write_video(appearance, appearance_clip(frames=8, height=40, width=56), Fraction(30))
    return structure, appearance


def test_cli_writes_the_structures_size_length_and_rate_with_a_preview_and_report(tmp_path, clip_paths):
    structure, appearance = clip_paths
    out = tmp_path / "out"
    result = run("analogy", structure, appearance, "-o", out, "--preview", tmp_path / "sheet.png",
                 "--report", tmp_path / "run.json", "--structure-bins", 2, *FAST_CLI)
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["disk_as_fire.mp4"]
    with av.open(str(out / "disk_as_fire.mp4")) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert (stream.average_rate, stream.width, stream.height, len(frames)) == (Fraction(24), 64, 48, 6)
    sheet = read_clip(tmp_path / "sheet.png").frames
    assert sheet.shape[1] > 3 * 48  # structure, appearance and output rows
    assert '"appearance"' in (tmp_path / "run.json").read_text()


def test_cli_image_pair_writes_an_image(tmp_path):
    write_video(tmp_path / "layout.png", structure_clip(frames=1)[0], None)
    write_video(tmp_path / "look.png", appearance_clip(frames=1), None)
    result = run("analogy", tmp_path / "layout.png", tmp_path / "look.png", "-o", tmp_path / "out.png", *FAST_CLI)
    assert result.exit_code == 0, result.output
    assert read_clip(tmp_path / "out.png").frames.shape == (1, 48, 64, 3)


def test_cli_errors_are_one_line_with_the_right_exit_status(tmp_path, clip_paths):
    structure, appearance = clip_paths
    missing = run("analogy", structure, tmp_path / "nope.mp4", *FAST_CLI)
    assert missing.exit_code == 1 and "nope.mp4" in missing.output and "Traceback" not in missing.output
    assert run("analogy", structure, *FAST_CLI).exit_code == 2  # APPEARANCE not given
    assert run("analogy", structure, appearance, "--structure-bins", 0, *FAST_CLI).exit_code == 2
    tiny = tmp_path / "tiny.png"
    write_video(tiny, np.zeros((1, 4, 4, 3), np.uint8), None)
    too_small = run("analogy", tiny, appearance, *FAST_CLI)
    assert too_small.exit_code == 1 and "larger than the structure" in too_small.output  # that input fails
    before = appearance.read_bytes()
    onto_appearance = run("analogy", structure, appearance, "-o", appearance, "-y", *FAST_CLI)
    assert onto_appearance.exit_code == 1 and "is an input of this command" in onto_appearance.output
    assert appearance.read_bytes() == before
