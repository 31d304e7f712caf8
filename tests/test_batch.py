"""The batch runner through `vgpnn generate`: many inputs, names, resume, report, interrupts."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import child_env, FAST, error_lines, files_under

from vgpnn.apps import generate as generate_app
from vgpnn.cli import batch, job as job_module
from vgpnn.video import read_clip, write_video



@pytest.fixture()
def clips(tmp_path, make_video):
    """A folder of three clips and a notes file."""
    folder = tmp_path / "clips"
    for index, name in enumerate(("a.mp4", "b.mp4", "c.mp4")):
        make_video(folder / name, seed=index)
    (folder / "notes.txt").write_text("not an input")
    return folder


def test_a_folder_of_videos_is_a_batch_and_a_folder_of_frames_is_one_clip(tmp_path, clips, cli):
    frames = tmp_path / "frames"
    write_video(frames, read_clip(clips / "a.mp4").frames, None)  # 0001.png .. 0008.png
    out = tmp_path / "out"
    result = cli("generate", clips, frames, "--seed", 0, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a_0.mp4", "b_0.mp4", "c_0.mp4", "frames_0.mp4"]
    assert "ignored 1 entries" in result.stderr and "notes.txt" in result.stderr
    assert "4 inputs: 4 done, 0 skipped, 0 failed; 4 outputs written" in result.stderr


def test_glob_patterns_are_expanded_even_when_the_shell_did_not(clips, tmp_path, cli):
    out = tmp_path / "out"
    result = cli("generate", str(clips / "[ab].mp4"), "--seed", 0, "-o", out, "-q", *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a_0.mp4", "b_0.mp4"]


def test_same_names_from_two_folders_are_refused_before_any_work(tmp_path, make_video, cli):
    make_video(tmp_path / "x" / "clip.mp4")
    make_video(tmp_path / "y" / "clip.mp4", seed=1)
    out = tmp_path / "out"
    result = cli("generate", tmp_path / "x" / "clip.mp4", tmp_path / "y" / "clip.mp4", "--seed", 0, "-o", out, *FAST)
    assert result.exit_code == 2
    assert "would both write" in result.stderr and "{parent}" in result.stderr
    assert not out.exists()
    # The field the message suggests tells them apart.
    result = cli("generate", tmp_path / "x" / "clip.mp4", tmp_path / "y" / "clip.mp4", "--seed", 0,
                 "-o", out / "{parent}_{name}_{seed}.{ext}", "-q", *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["x_clip_0.mp4", "y_clip_0.mp4"]


def test_one_file_name_for_several_inputs_is_refused(clips, tmp_path, cli):
    result = cli("generate", clips, "--seed", 0, "-o", tmp_path / "one.mp4", *FAST)
    assert result.exit_code == 2 and "would both write" in result.stderr
    assert not (tmp_path / "one.mp4").exists()


def test_a_bad_input_is_one_line_the_others_are_written_and_the_exit_status_is_1(clips, tmp_path, cli):
    (clips / "broken.mp4").write_bytes(b"\x00" * 100)
    out = tmp_path / "out"
    result = cli("generate", clips, "--seed", 0, "-o", out, "-q", "--report", tmp_path / "r.json", *FAST)
    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == 2, lines  # the failure and the summary
    assert lines[0].startswith("error: cannot read") and "broken.mp4" in lines[0]
    assert lines[1] == "4 inputs: 3 done, 0 skipped, 1 failed; 3 outputs written"
    assert sorted(p.name for p in out.iterdir()) == ["a_0.mp4", "b_0.mp4", "c_0.mp4"]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "failed"
    failed = [r for r in report["records"] if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["input"].endswith("broken.mp4") and "cannot read" in failed[0]["error"]


def test_skip_existing_does_no_work_for_finished_inputs_and_only_the_missing_outputs_otherwise(
        clips, tmp_path, cli, monkeypatch):
    out = tmp_path / "out"
    assert cli("generate", clips, "-n", 2, "--seed", 0, "-o", out, "-q", *FAST).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "b_1.mp4").unlink()
    made = []
    real = generate_app.generate

    def counting(frames, config, options, **kwargs):
        made.append((options.seed, options.variations))
        return real(frames, config, options, **kwargs)

    monkeypatch.setattr(generate_app, "generate", counting)  # the command imports it when it has work
    result = cli("generate", clips, "-n", 2, "--seed", 0, "-o", out, "--skip-existing", *FAST)
    assert result.exit_code == 0, result.output
    assert made == [(1, 1)]  # only b's second variation
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert {name: t for name, t in after.items() if name != "b_1.mp4"} == \
        {name: t for name, t in before.items() if name != "b_1.mp4"}
    assert "b_1.mp4" in after
    assert "3 inputs: 1 done, 2 skipped, 0 failed; 1 outputs written" in result.stderr
    made.clear()
    assert cli("generate", clips, "-n", 2, "--seed", 0, "-o", out, "--skip-existing", "-q", *FAST).exit_code == 0
    assert made == []


def test_skip_existing_with_the_earlier_report_remakes_outputs_made_with_other_parameters(
        tmp_path, make_video, cli):
    clip = make_video(tmp_path / "a.mp4")
    out, report = tmp_path / "out", tmp_path / "run.json"
    assert cli("generate", clip, "-n", 2, "--seed", 0, "-o", out, "--noise", 1, "--report", report, "-q",
               *FAST).exit_code == 0
    first = {name: (out / name).read_bytes() for name in ("a_0.mp4", "a_1.mp4")}
    same = cli("generate", clip, "-n", 2, "--seed", 0, "-o", out, "--noise", 1, "--report", report,
               "--skip-existing", *FAST)
    assert same.exit_code == 0 and "skipped: every output" in same.stderr and "remaking" not in same.stderr
    # other noise: both outputs are made again, not kept because their names exist
    other = cli("generate", clip, "-n", 2, "--seed", 0, "-o", out, "--noise", 2, "--report", report,
                "--skip-existing", *FAST)
    assert other.exit_code == 0, other.output
    assert other.stderr.count("remaking") == 2
    assert all((out / name).read_bytes() != data for name, data in first.items())
    # the report now says how they were made: a second resume keeps them
    again = cli("generate", clip, "-n", 2, "--seed", 0, "-o", out, "--noise", 2, "--report", report,
                "--skip-existing", *FAST)
    assert "remaking" not in again.stderr and "skipped: every output" in again.stderr
    # without an earlier report, names are all there is, and the runner says so
    plain = cli("generate", clip, "-n", 2, "--seed", 0, "-o", out, "--noise", 3, "--skip-existing", *FAST)
    assert "by name only" in plain.stderr and "skipped: every output" in plain.stderr


def test_an_existing_output_fails_that_input_only(clips, tmp_path, cli):
    out = tmp_path / "out"
    out.mkdir()
    (out / "b_0.mp4").write_bytes(b"keep me")
    result = cli("generate", clips, "--seed", 0, "-o", out, "-q", *FAST)
    assert result.exit_code == 1
    assert "output '" in result.stderr and "b_0.mp4' exists; pass -y/--overwrite" in result.stderr
    assert (out / "b_0.mp4").read_bytes() == b"keep me"
    assert (out / "a_0.mp4").is_file() and (out / "c_0.mp4").is_file()


def test_report_has_one_record_per_output_with_what_reproduces_it(clips, tmp_path, cli):
    out, report = tmp_path / "out", tmp_path / "run.json"
    result = cli("generate", clips / "a.mp4", clips / "b.mp4", "-n", 2, "--seed", 5, "-o", out, "--format", "frames",
                 "--report", report, "-q", "--noise", "2.0", *FAST)
    assert result.exit_code == 0, result.output
    record = json.loads(report.read_text())
    assert record["status"] == "complete" and record["summary"]["written"] == 4
    rows = record["records"]
    assert [(Path(r["input"]).name, Path(r["output"]).name, r["seed"]) for r in rows] == [
        ("a.mp4", "a_5", 5), ("a.mp4", "a_6", 6), ("b.mp4", "b_5", 5), ("b.mp4", "b_6", 6)]
    for row in rows:
        assert row["status"] == "written" and row["error"] is None and row["command"] == "generate"
        assert row["device"] == "cpu" and row["backends"] == ["exact"]
        assert set(row["seconds"]) == {"read", "synthesis", "write"}
        assert row["parameters"]["noise_sigma"] == 2.0 and row["parameters"]["iterations"] == 1
    # Reproduce b's second output alone, from nothing but its record.
    row, params = rows[3], rows[3]["parameters"]
    again = tmp_path / "again"
    result = cli("generate", row["input"], "--seed", row["seed"], "-n", 1, "--size", params["size"],
                 "--max-frames", params["max_frames"], "--iterations", params["iterations"],
                 "--noise", params["noise_sigma"], "--backend", params["backend"], "-o", again, "--format", "frames", "-q")
    assert result.exit_code == 0, result.output
    assert np.array_equal(read_clip(again / "b_6").frames, read_clip(row["output"]).frames)


def test_preview_gives_one_sheet_per_input_in_a_batch(clips, tmp_path, cli):
    out = tmp_path / "out"
    result = cli("generate", clips / "a.mp4", clips / "b.mp4", "-n", 2, "--seed", 0, "-o", out,
                 "--preview", out / "sheet.png", "-q", *FAST)
    assert result.exit_code == 0, result.output
    for name in ("a", "b"):
        sheet = read_clip(out / f"sheet_{name}.png").frames
        assert sheet.shape[1] > 3 * 24  # the source row and two outputs
    result = cli("generate", clips / "a.mp4", "--seed", 0, "-o", tmp_path / "one", "--preview",
                 tmp_path / "one" / "{name}-sheet.png", "-q", *FAST)
    assert result.exit_code == 0 and (tmp_path / "one" / "a-sheet.png").is_file()


def test_ctrl_c_leaves_no_partial_file_writes_the_report_and_exits_130(clips, tmp_path, cli, monkeypatch):
    real = job_module.write_video
    calls = []

    def interrupted_while_writing(path, frames, fps, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # the second output: interrupt in the middle of writing it
            def stop(*args, **kw):
                raise KeyboardInterrupt
            monkeypatch.setattr("vgpnn.video._write_h264", stop)
        return real(path, frames, fps, **kwargs)

    monkeypatch.setattr(job_module, "write_video", interrupted_while_writing)
    out, report = tmp_path / "out", tmp_path / "r.json"
    result = cli("generate", clips, "--seed", 0, "-o", out, "--report", report, "-q", *FAST)
    assert result.exit_code == 130
    assert "interrupted; no partial output was left behind" in result.stderr
    assert files_under(out) == ["a_0.mp4"]
    record = json.loads(report.read_text())
    assert record["status"] == "interrupted"
    assert [r["status"] for r in record["records"]] == ["written", "interrupted", "not run"]


def _start_batch(tmp_path, clips):
    """A real `vgpnn generate` process over the clips, slow enough to be stopped midway."""
    env = child_env()
    return subprocess.Popen(
        [sys.executable, "-m", "vgpnn", "generate", str(clips), "-n", "3", "--seed", "0", "-o", str(tmp_path / "out"),
         "--size", "native", "--iterations", "3", "--report", str(tmp_path / "r.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_first_output(process, out: Path, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and any(p.suffix == ".mp4" and not p.name.startswith(".") for p in out.iterdir()):
            return
        time.sleep(0.02)
    raise AssertionError("no output appeared")


def test_sigterm_midway_stops_like_ctrl_c_with_exit_143(clips, tmp_path):
    # Ctrl-C is KeyboardInterrupt, tested in-process above; SIGTERM needs the runner's handler.
    process = _start_batch(tmp_path, clips)
    _wait_for_first_output(process, tmp_path / "out")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "interrupted; no partial output was left behind" in stderr and "Traceback" not in stderr
    names = files_under(tmp_path / "out")
    assert names and len(names) < 9 and not [n for n in names if n.startswith(".")]
    for name in names:  # every file under an output's name is whole
        assert len(read_clip(tmp_path / "out" / name).frames) == 8
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "interrupted"


def test_sigkill_leaves_no_file_under_an_output_name_and_the_next_write_cleans_up(clips, tmp_path):
    out = tmp_path / "out"
    process = _start_batch(tmp_path, clips)
    _wait_for_first_output(process, out)
    process.kill()
    process.wait(timeout=30)
    names = files_under(out)
    for name in names:
        if not name.startswith("."):
            assert len(read_clip(out / name).frames) == 8
    # What SIGKILL can leave is a hidden temporary of a dead writer; the next write of that
    # output removes it, and leaves a live writer's temporary alone.
    stale = out / f".c_2.partial-{process.pid}-0123abcd.mp4"
    live = out / f".c_2.partial-{os.getpid()}-0123abcd.mp4"
    stale.write_bytes(b"half a video")
    live.write_bytes(b"being written")
    write_video(out / "c_2.mp4", read_clip(clips / "c.mp4").frames, 25, overwrite=True)
    assert not stale.exists() and live.exists()


def test_runner_interface_with_a_command_of_its_own(tmp_path, make_video, capsys):
    """The runner knows nothing of generate: a two-function command gets batches for free."""
    source = make_video(tmp_path / "in" / "x.mp4")
    (tmp_path / "in" / "y.mp4").write_text("broken")

    def plan(path):
        return [batch.PlannedOutput(tmp_path / "out" / f"{path.stem}.png", {"note": "first frame"})]

    def make(job):
        frames = read_clip(job.source).frames[:1]
        for index in job.todo:
            write_video(job.outputs[index].path, frames, None)
            job.written(index, {"frames": 1})

    settings = batch.BatchSettings("first-frame", (str(tmp_path / "in"),), quiet=True,
                                   report=tmp_path / "r.json", parameters={"which": 0})
    assert batch.run_batch(settings, plan, make) == 1
    assert (tmp_path / "out" / "x.png").is_file() and source.is_file()
    records = json.loads((tmp_path / "r.json").read_text())["records"]
    assert [(r["status"], r["note"]) for r in records] == [("written", "first frame"), ("failed", "first frame")]
    assert records[0]["frames"] == 1 and records[0]["parameters"] == {"which": 0}
    assert "y.mp4" in capsys.readouterr().err
