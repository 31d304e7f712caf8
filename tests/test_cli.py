"""The `vgpnn generate` command end to end on tiny clips: outputs, naming, errors, exit codes."""

import json
from fractions import Fraction

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vgpnn.cli import main
from vgpnn.video import read_clip, write_video
from conftest import smooth_frames

FAST = ["--iterations", "1", "--size", "native", "-q"]


@pytest.fixture()
def clip_path(tmp_path):
    path = tmp_path / "tiny.mp4"
    write_video(path, smooth_frames(6, 32, 48), Fraction(30000, 1001))
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_generate_writes_decodable_variations_with_the_source_size_fps_and_length(tmp_path, clip_path):
    out = tmp_path / "out"
    result = run("generate", clip_path, "-n", 2, "--seed", 7, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == ["tiny_7.mp4", "tiny_8.mp4"]
    for name in written:
        with av.open(str(out / name)) as container:
            stream = container.streams.video[0]
            frames = [f for f in container.decode(stream)]
            assert (stream.average_rate, stream.width, stream.height) == (Fraction(30000, 1001), 48, 32)
            assert len(frames) == 6


def test_same_seed_same_output_and_different_seeds_differ(tmp_path, clip_path):
    # Lossless PNG frames: the comparison is of what vgpnn made, not of the H.264 encoder.
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert run("generate", clip_path, "--seed", seed, "-o", tmp_path / name, "--format", "frames",
                   *FAST).exit_code == 0
    a, b, c = (read_clip(tmp_path / name / f"tiny_{seed}").frames for name, seed in (("a", 3), ("b", 3), ("c", 4)))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batch_size_does_not_change_the_outputs(tmp_path, clip_path):
    for name, batch in (("one", 1), ("two", 2)):
        assert run("generate", clip_path, "-n", 2, "--seed", 5, "--batch-size", batch, "-o", tmp_path / name,
                   "--format", "frames", *FAST).exit_code == 0
    for seed in (5, 6):
        one = read_clip(tmp_path / "one" / f"tiny_{seed}").frames
        assert np.array_equal(one, read_clip(tmp_path / "two" / f"tiny_{seed}").frames)


def test_template_fields_gif_output_report_and_preview(tmp_path, clip_path):
    report = tmp_path / "run.json"
    preview = tmp_path / "sheet.png"
    result = run("generate", clip_path, "-n", 2, "--seed", 1, "-o", tmp_path / "{name}-{index}-{seed}.gif",
                 "--report", report, "--preview", preview, *FAST)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tiny-0-1.gif").is_file() and (tmp_path / "tiny-1-2.gif").is_file()
    record = json.loads(report.read_text())
    assert record["parameters"]["seed"] == 1 and [r["seed"] for r in record["records"]] == [1, 2]
    assert {r["status"] for r in record["records"]} == {"written"}
    assert record["parameters"]["iterations"] == 1
    sheet = read_clip(preview).frames
    assert sheet.shape[0] == 1 and sheet.shape[1] > 3 * 32  # source row + two outputs


def test_an_image_input_gives_an_image(tmp_path):
    image = tmp_path / "still.png"
    write_video(image, smooth_frames(1, 32, 48), None)
    result = run("generate", image, "--seed", 0, "-o", tmp_path, *FAST)
    assert result.exit_code == 0, result.output
    out = read_clip(tmp_path / "still_0.png")
    assert out.kind == "image" and out.frames.shape == (1, 32, 48, 3)


def test_frame_folder_output(tmp_path, clip_path):
    result = run("generate", clip_path, "--seed", 0, "-o", tmp_path / "frames", "--format", "frames", *FAST)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "frames" / "tiny_0"
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:04d}.png" for i in range(1, 7)]


def test_seed_is_announced_when_chosen_at_random(tmp_path, clip_path):
    result = run("generate", clip_path, "-o", tmp_path, "--iterations", "1", "--size", "native")
    assert result.exit_code == 0
    seed = int(result.output.split("seed ")[1].split(";")[0].split()[0])
    assert (tmp_path / f"tiny_{seed}.mp4").is_file()


def test_downscale_and_trim_are_announced(tmp_path, clip_path):
    result = run("generate", clip_path, "-o", tmp_path, "--size", "16", "--max-frames", "4", "--iterations", "1")
    assert result.exit_code == 0, result.output
    assert "working at 24x16 (input is 48x32" in result.output
    assert "using 4 of 6 frames" in result.output


def test_missing_input_is_one_line_and_exit_1(tmp_path):
    result = run("generate", tmp_path / "nope.mp4", "-o", tmp_path)
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "nope.mp4" in result.output
    assert list(tmp_path.iterdir()) == []


def test_text_file_named_mp4_is_refused_without_output(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    result = run("generate", bad, "-o", tmp_path / "out")
    assert result.exit_code == 1 and "bad.mp4" in result.output
    assert not (tmp_path / "out").exists()


def test_existing_output_is_kept_without_overwrite_and_replaced_with_it(tmp_path, clip_path):
    target = tmp_path / "o.mp4"
    target.write_bytes(b"keep me")
    result = run("generate", clip_path, "--seed", 0, "-o", target, *FAST)
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert target.read_bytes() == b"keep me"
    assert run("generate", clip_path, "--seed", 0, "-o", target, "-y", *FAST).exit_code == 0
    assert read_clip(target).frames.shape == (6, 32, 48, 3)


def test_output_equal_to_input_is_refused(clip_path):
    before = clip_path.read_bytes()
    result = run("generate", clip_path, "-o", clip_path, "-y", *FAST)
    assert result.exit_code == 1 and "input" in result.output
    assert clip_path.read_bytes() == before


@pytest.mark.parametrize("args", [
    ["--patch-size", "3x7"], ["--variations", "0"], ["--backend", "magic"], ["--size", "-3"],
    ["--device", "tpu"], ["-o", "{nam}.mp4"],
])
def test_usage_errors_exit_2_or_1_with_one_line(tmp_path, clip_path, args):
    result = run("generate", clip_path, *args)
    assert result.exit_code in (1, 2)
    assert "Traceback" not in result.output
    if args[0] != "-o":
        assert result.exit_code == 2
    assert not list(tmp_path.glob("tiny_*"))


def test_patch_larger_than_the_clip_is_a_clear_error(tmp_path, clip_path):
    # Exit 1, not 2: whether a patch fits depends on the input, so in a batch it is that input's
    # failure (the others go on), not a mistake in the command line.
    result = run("generate", clip_path, "--patch-size", "3x40x40", "-o", tmp_path / "x.mp4", *FAST)
    assert result.exit_code == 1 and "patch" in result.output
    assert not (tmp_path / "x.mp4").exists()


def test_python_m_vgpnn_runs_the_cli():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "vgpnn", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and "vgpnn" in done.stdout


def test_audio_is_kept_for_the_whole_clip_and_dropped_with_a_notice_otherwise(tmp_path):
    from pathlib import Path
    bunny = Path(__file__).resolve().parents[2] / "shared" / "clips" / "bunny_audio.mp4"
    if not bunny.is_file():
        pytest.skip("../shared/clips is not beside the project")
    with_audio = tmp_path / "voiced.mp4"
    write_video(with_audio, smooth_frames(8, 32, 48), Fraction(25), audio_from=bunny)
    assert run("generate", with_audio, "--seed", 0, "-o", tmp_path / "whole.mp4", *FAST).exit_code == 0
    partial = run("generate", with_audio, "--seed", 0, "-o", tmp_path / "part.mp4", "--max-frames", 4,
                  "--iterations", 1, "--size", "native")
    assert partial.exit_code == 0 and "audio not copied" in partial.output
    for name, expected in (("whole.mp4", 1), ("part.mp4", 0)):
        with av.open(str(tmp_path / name)) as container:
            assert len(container.streams.audio) == expected


def test_a_job_says_its_estimate_before_the_work_and_warns_when_long(tmp_path, clip_path, monkeypatch):
    from vgpnn.cli import job
    monkeypatch.setattr(job, "NOTICE_SECONDS", 0.0)  # every job is worth a notice ...
    monkeypatch.setattr(job, "LONG_JOB_SECONDS", 0.0)  # ... and a warning
    result = run("generate", clip_path, "--seed", 0, "-o", tmp_path / "out", "--iterations", "1", "--size", "native")
    assert result.exit_code == 0, result.output
    assert "estimated" in result.stderr and "per output" in result.stderr
    assert "warning: this is a long job" in result.stderr


def test_the_levels_bar_advances_by_each_levels_modelled_cost():
    from vgpnn.cli.progress import ProgressBars
    bars = ProgressBars(enabled=True, total=1, level_weights=[1.0, 1.0, 8.0])
    bars.level_done(1, 3)
    assert (bars.levels.n, bars.levels.total) == (1.0, 10.0)
    bars.level_done(2, 3)
    assert bars.levels.n == 2.0  # 20 % of the work after two of three levels, not 67 %
    bars.level_done(3, 3)
    assert bars.levels.n == 10.0
    bars.close()
    unweighted = ProgressBars(enabled=True, total=1, level_weights=[1.0, 2.0])  # another level count
    unweighted.level_done(1, 3)
    assert (unweighted.levels.n, unweighted.levels.total) == (1, 3)
    unweighted.close()
