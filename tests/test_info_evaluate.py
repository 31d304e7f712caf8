"""`vgpnn info` and `vgpnn evaluate`: facts about inputs, cost estimates, quality figures."""

import json

from conftest import FAST, error_lines, smooth_frames
from PIL import Image

from vgpnn.video import write_video


def test_info_describes_each_input_and_estimates_the_default_job(tmp_path, make_video, cli):
    video = make_video(tmp_path / "clip.mp4", frames=10, height=48, width=64)
    folder = write_video(tmp_path / "frames", smooth_frames(5, 24, 32), None)
    image = tmp_path / "still.png"
    Image.fromarray(smooth_frames(1, 24, 32)[0]).save(image)
    (tmp_path / "broken.mp4").write_bytes(b"junk" * 10)
    result = cli("info", video, folder, image, tmp_path / "broken.mp4", "--size", 24, "--json")
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1 and "broken.mp4" in result.stderr
    entries = {e["input"].rsplit("/", 1)[1]: e for e in json.loads(result.stdout)}
    clip = entries["clip.mp4"]
    assert (clip["kind"], clip["width"], clip["height"], clip["frames"], clip["fps"]) == ("video", 64, 48, 10, "25")
    assert clip["duration_seconds"] == 0.4 and clip["audio"] is False and clip["variable_frame_rate"] is False
    job = clip["default_job"]
    assert job["working_shape"] == [10, 24, 32] and job["device"] == "cpu" and job["problem"] is None
    assert 0 < job["estimated_seconds_per_variation"] < 60 and job["estimated_peak_bytes"] >= 2**29
    assert entries["frames"]["kind"] == "frames" and entries["frames"]["fps"] == "10"
    assert entries["still.png"]["fps"] is None and entries["still.png"]["default_job"]["working_shape"] == [1, 24, 32]
    assert "error" in entries["broken.mp4"]


def test_info_table_says_the_figures_are_estimates_and_flags_too_small_clips(tmp_path, make_video, cli):
    make_video(tmp_path / "tiny.mp4", height=4, width=6)
    result = cli("info", tmp_path / "tiny.mp4")
    assert result.exit_code == 0, result.output
    assert "too small" in result.stdout and "time is modelled, not measured" in result.stdout


def test_info_estimate_grows_with_the_working_size(tmp_path, make_video, cli):
    make_video(tmp_path / "clip.mp4", frames=10, height=96, width=128)
    small, large = (json.loads(cli("info", tmp_path / "clip.mp4", "--size", size, "--json").stdout)[0]["default_job"]
                    for size in (24, 96))
    assert large["estimated_seconds_per_variation"] > 4 * small["estimated_seconds_per_variation"]
    assert large["estimated_peak_bytes"] > small["estimated_peak_bytes"]


def test_evaluate_scores_outputs_and_a_copy_scores_as_a_copy(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    assert cli("generate", source, "-n", 2, "--seed", 0, "-o", out, "-q", *FAST).exit_code == 0
    (tmp_path / "bad.mp4").write_text("no")
    result = cli("evaluate", source, out / "clip_0.mp4", out / "clip_1.mp4", source, tmp_path / "bad.mp4",
                 "--size", "native", "--json")
    assert result.exit_code == 1 and len(error_lines(result)) == 1 and "bad.mp4" in result.stderr
    summary = json.loads(result.stdout)
    made, _, copy, bad = summary["outputs"]
    assert copy["coherence"] < 1e-6 and copy["completeness"] < 1e-6  # every patch is in the source
    assert made["coherence"] > copy["coherence"] and made["nnf_div"] > copy["nnf_div"]
    assert copy["dominant_offset"] > 0.99 and 0 < made["dominant_offset"] < copy["dominant_offset"]
    assert "error" in bad and summary["working_shape"] == [8, 24, 32]
    assert summary["diversity"] > 0  # three outputs of one shape


def test_evaluate_table_and_diversity_needs_two_outputs(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4")
    result = cli("evaluate", source, source, "--size", "native")
    assert result.exit_code == 0, result.output
    assert "coherence" in result.stdout and "diversity: needs two or more outputs" in result.stdout
    assert "dominant_offset" in result.stdout
