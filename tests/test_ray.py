"""``--executor ray`` and the Ray Data entry point, against a real two-node Ray cluster on this
machine that these tests start and stop (only its own processes). Skipped where ray is not
installed; CI installs the ``ray`` extra and runs them."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import child_env, error_lines, files_under

# One EM iteration at the clip's size, lossless PNG frames: outputs can be compared byte for byte.
FAST = ("--iterations", "1", "--working-size", "native", "--format", "frames")
START_SECONDS = 180  # a loaded two-core machine can take this long to start two nodes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _session_processes(session_ids: set[int]) -> list[int]:
    """Every process in the given sessions (``ray start`` was started as a session leader, so
    the nodes, their raylets and all their workers are in its session and no one else's is)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields after the name: state, ppid, pgrp, session. A zombie is dead already (only
        # not yet reaped, where the container's first process does not reap orphans).
        if int(fields[3]) in session_ids and fields[0] != "Z":
            found.append(int(entry))
    return found


class Cluster:
    """A head node and a second node, one CPU each, on 127.0.0.1."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Workers import vgpnn from this checkout, whatever is installed.
        self.env = child_env(RAY_ADDRESS="")
        limits = ["--num-cpus", "1", "--num-gpus", "0", "--object-store-memory", "100000000",
                  "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
        self.processes = []
        self.processes.append(self._start("head", ["--head", "--port", str(self.port), "--include-dashboard=false",
                                                   "--temp-dir", str(folder / "t"), *limits]))
        self._wait_started("head")
        self.processes.append(self._start("node", ["--address", self.address, *limits]))
        self._wait_started("node")

    def _start(self, name: str, arguments: list[str]) -> subprocess.Popen:
        # --block keeps `ray start` in the foreground, supervising what it started; a new
        # session holds it and every process it starts, so stop() finds exactly those.
        return subprocess.Popen([shutil.which("ray") or "ray", "start", "--block", *arguments], env=self.env,
                                stdout=open(self.folder / f"{name}.log", "w"), stderr=subprocess.STDOUT,
                                start_new_session=True)

    def _wait_started(self, name: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        log = self.folder / f"{name}.log"
        while "Ray runtime started" not in log.read_text():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.stop()
                pytest.fail(f"the Ray {name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        sessions = {p.pid for p in self.processes}
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        deadline = time.monotonic() + 15
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for pid in _session_processes(sessions):  # anything left behind: killed, ours only
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _session_processes(sessions) and time.monotonic() < deadline:
            time.sleep(0.1)  # SIGKILL takes effect soon, not at once


@pytest.fixture(scope="session")
def cluster():
    pytest.importorskip("ray")
    # A short folder: Ray puts unix sockets under it, whose paths may not exceed 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="vgpnn-ray-"))
    started = Cluster(folder)
    yield started
    started.stop()
    assert _session_processes({p.pid for p in started.processes}) == [], "the test cluster left processes behind"
    shutil.rmtree(folder, ignore_errors=True)


def run_vgpnn(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """The command line in a new process (stdout and stderr apart), importing this checkout."""
    environment = child_env(**(env or {}))
    return subprocess.run([sys.executable, "-m", "vgpnn", *map(str, args)], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=300)


def start_vgpnn(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vgpnn", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env())


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def comparable(record: dict) -> dict:
    """A report record less what differs between two runs of the same work (times, machine)."""
    return {k: v for k, v in record.items() if k not in ("seconds", "seconds_since_input_start", "node")}


@pytest.fixture()
def clips(tmp_path, make_video):
    folder = tmp_path / "clips"
    make_video(folder / "a.mp4", seed=1)
    make_video(folder / "b.mp4", seed=2, frames=6)
    return folder


# -- without a cluster ---------------------------------------------------------------------------


def test_ray_is_imported_only_for_executor_ray(tmp_path, make_video):
    source = make_video(tmp_path / "clip.mp4")
    code = ("import sys; from vgpnn.cli import main; import vgpnn.cluster, vgpnn.cli.batch\n"
            f"try:\n    main(['generate', {str(source)!r}, '-o', {str(tmp_path / 'out.mp4')!r}, '--seed', '0', '-q',"
            " '--iterations', '1', '--working-size', 'native'])\n"
            "except SystemExit as done:\n    assert done.code == 0, done.code\n"
            "print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=child_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert (tmp_path / "out.mp4").is_file()


def test_executor_ray_without_ray_says_how_to_install(tmp_path, make_video, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    source = make_video(tmp_path / "clip.mp4")
    result = cli("generate", source, "-o", tmp_path / "out", "--executor", "ray", "--report", tmp_path / "r.json")
    assert result.exit_code == 1
    assert error_lines(result) == [error_lines(result)[0]] and 'pip install "vgpnn[ray]"' in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.json").exists()


def test_ray_options_without_executor_ray_and_cuda_without_gpus_are_usage_errors(tmp_path, make_video, cli):
    source = make_video(tmp_path / "clip.mp4")
    result = cli("generate", source, "--gpus-per-task", "0.25")
    assert result.exit_code == 2 and "--gpus-per-task applies to --executor ray only" in result.stderr
    result = cli("generate", source, "--executor", "ray", "--device", "cuda")
    assert result.exit_code == 2 and "needs --gpus-per-task" in result.stderr
    result = cli("generate", source, "--executor", "ray", "--gpus-per-task", "-1")
    assert result.exit_code == 2


def test_an_unreachable_ray_address_is_one_line_and_quick(tmp_path, make_video):
    pytest.importorskip("ray")
    source = make_video(tmp_path / "clip.mp4")
    started = time.monotonic()
    result = run_vgpnn("generate", source, "-o", tmp_path / "out", "--executor", "ray",
                       "--ray-address", f"127.0.0.1:{_free_port()}", "--report", tmp_path / "r.json")
    assert result.returncode == 1
    assert len(error_lines(result)) == 1 and "cannot reach the Ray cluster at '127.0.0.1:" in result.stderr
    assert time.monotonic() - started < 60  # Ray itself would retry for minutes
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.json").exists()


# -- on the cluster -------------------------------------------------------------------------------


def test_ray_gives_a_local_runs_outputs_report_and_resume(cluster, clips, tmp_path, cli):
    args = ["generate", clips, "-n", "3", "--seed", "5", *FAST]
    local = cli(*args, "-o", tmp_path / "local", "--report", tmp_path / "local.json")
    assert local.exit_code == 0, local.output
    ray_out, report = tmp_path / "ray", tmp_path / "ray.json"
    result = run_vgpnn(*args, "-o", ray_out, "--report", report, "--executor", "ray", "--ray-address", cluster.address)
    assert result.returncode == 0, result.stderr
    # Same files, same bytes: six tasks (one per output) on two nodes.
    assert tree_bytes(ray_out) == tree_bytes(tmp_path / "local")
    assert sorted(Path(line).name for line in result.stdout.split()) == sorted(Path(line).name for line in local.stdout.split())
    assert "2 inputs: 2 done, 0 skipped, 0 failed; 6 outputs written" in result.stderr
    assert "seed 5 (outputs use 5..7); device cpu" in result.stderr
    assert not error_lines(result)[0].startswith("error")
    # Same report, each record naming the Ray node that made it; the workers used the driver's threads.
    ray_report, local_report = json.loads(report.read_text()), json.loads((tmp_path / "local.json").read_text())
    assert ray_report["status"] == "complete" and ray_report["summary"] == local_report["summary"]
    normalise = lambda r: json.loads(json.dumps([comparable(x) for x in r["records"]]).replace("/ray", "/local")
                                     .replace("ray.json", "local.json"))
    assert sorted(normalise(ray_report), key=str) == sorted(normalise(local_report), key=str)
    assert len({record["node"]["id"] for record in ray_report["records"]}) == 2  # both nodes worked
    import torch
    assert ray_report["execution"]["threads"] == torch.get_num_threads()  # Ray would give its workers 1
    assert {record["node"]["threads"] for record in ray_report["records"]} == {torch.get_num_threads()}
    # --skip-existing: only the missing output is made, by the cluster, with the same bytes.
    missing = ray_out / "b_6"
    shutil.rmtree(missing)
    result = run_vgpnn(*args, "-o", ray_out, "--report", report, "--executor", "ray", "--ray-address", cluster.address,
                       "--skip-existing")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(missing)]
    assert tree_bytes(ray_out) == tree_bytes(tmp_path / "local")
    statuses = sorted(r["status"] for r in json.loads(report.read_text())["records"])
    assert statuses == ["skipped"] * 5 + ["written"]


def test_a_broken_input_fails_alone_with_the_local_error_line(cluster, clips, tmp_path, cli):
    (clips / "broken.mp4").write_bytes(b"not a video at all")
    args = ["generate", clips, "-n", "2", "--seed", "0", *FAST, "-q"]
    local = cli(*args, "-o", tmp_path / "local")
    report = tmp_path / "r.json"
    result = run_vgpnn(*args, "-o", tmp_path / "ray", "--executor", "ray", "--ray-address", cluster.address,
                       "--report", report)
    assert result.returncode == 1 == local.exit_code
    assert error_lines(result) == error_lines(local)  # the error line and the failing summary, nothing else
    assert [line for line in error_lines(result) if line.startswith("error:")][0].startswith("error: ")
    assert "broken.mp4" in error_lines(result)[0]
    assert tree_bytes(tmp_path / "ray") == tree_bytes(tmp_path / "local")
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == ["a_0", "a_1", "b_0", "b_1"]
    records = json.loads(report.read_text())["records"]
    broken = [r for r in records if r["input"].endswith("broken.mp4")]
    assert {r["status"] for r in broken} == {"failed"} and all("broken.mp4" in r["error"] for r in broken)
    assert sum(r["status"] == "written" for r in records) == 4


def test_a_worker_killed_while_writing_is_retried_and_leaves_no_partial_file(cluster, tmp_path, make_video, cli):
    # Long enough to write that the test sees the temporary of an output and kills its writer.
    source = make_video(tmp_path / "long.mp4", frames=40, height=48, width=64)
    out, report = tmp_path / "out", tmp_path / "r.json"
    args = ["generate", source, "-n", "2", "--seed", "3", *FAST, "-o", out]
    driver = start_vgpnn(*args, "--report", report, "--executor", "ray", "--ray-address", cluster.address)
    killed, deadline = None, time.monotonic() + 240
    while killed is None and driver.poll() is None and time.monotonic() < deadline:
        for entry in (os.listdir(out) if out.is_dir() else []):
            match = re.search(r"\.partial-(\d+)-", entry)
            if match:  # the temporary's name holds its writer's process id: a Ray worker of ours
                os.kill(int(match.group(1)), signal.SIGKILL)
                killed = entry
                break
        time.sleep(0.002)
    stdout, stderr = driver.communicate(timeout=300)
    assert killed is not None, "no output was ever being written"
    assert driver.returncode == 0, stderr  # without Ray's retry the input would have failed
    assert sorted(stdout.split()) == [str(out / "long_3"), str(out / "long_4")]  # Ray's messages kept off stdout
    assert not [name for name in files_under(out) if ".partial-" in name]
    assert {r["status"] for r in json.loads(report.read_text())["records"]} == {"written"}
    local = cli(*args[:-1], tmp_path / "local", "-q")
    assert local.exit_code == 0
    assert tree_bytes(out) == tree_bytes(tmp_path / "local")


def test_ctrl_c_cancels_the_tasks_and_exits_130_with_no_partial_file(cluster, tmp_path, make_video):
    source = make_video(tmp_path / "long.mp4", frames=40, height=48, width=64)
    out, report = tmp_path / "out", tmp_path / "r.json"
    # Twelve one-output tasks on two one-CPU nodes: six rounds, so most are still to run when
    # the first output appears (with six, warm workers once finished them all before the signal).
    driver = start_vgpnn("generate", source, "-n", "12", "--seed", "0", *FAST, "-o", out, "--report", report,
                         "--executor", "ray", "--ray-address", cluster.address)
    deadline = time.monotonic() + 240
    while not (out.is_dir() and os.listdir(out)) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # until the first output is being written: tasks are running
    driver.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    stdout, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 130, stderr
    assert time.monotonic() - interrupted < 30
    assert error_lines(subprocess.CompletedProcess([], 0, stdout, stderr))[-1].startswith("interrupted; no partial output")
    written = sorted(stdout.split())
    assert len(written) < 12
    time.sleep(3)  # the cancelled tasks write nothing more
    assert sorted(str(out / name) for name in os.listdir(out)) == written  # and no temporary is left
    summary = json.loads(report.read_text())
    assert summary["status"] == "interrupted"
    assert sorted(r["output"] for r in summary["records"] if r["status"] == "written") == written
    assert {r["status"] for r in summary["records"]} <= {"written", "interrupted"}


def test_ray_data_makes_one_row_per_output_with_the_cli_frames(cluster, clips, tmp_path, cli):
    ray = pytest.importorskip("ray")
    from vgpnn import SynthesisConfig
    from vgpnn.cluster.data import make_variations
    from vgpnn.video import read_clip

    local = cli("generate", clips / "a.mp4", clips / "b.mp4", "-n", "2", "--seed", "4", *FAST, "-o", tmp_path / "cli", "-q")
    assert local.exit_code == 0
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        rows = make_variations(ray.data.read_binary_files([str(clips / "a.mp4"), str(clips / "b.mp4")],
                                                          include_paths=True),
                               variations=2, seed=4, config=SynthesisConfig(iterations=1), short_side=None,
                               actors=1).take_all()  # one actor: the read tasks need the other CPU
    finally:
        ray.shutdown()
    assert sorted((Path(r["path"]).name, r["index"], r["seed"]) for r in rows) == [
        ("a.mp4", 0, 4), ("a.mp4", 1, 5), ("b.mp4", 0, 4), ("b.mp4", 1, 5)]
    for row in rows:
        expected = read_clip(tmp_path / "cli" / f"{Path(row['path']).stem}_{row['seed']}", short_side=None).frames
        assert row["frames"].dtype == np.uint8 and np.array_equal(row["frames"], expected)
        assert row["fps"] == "25" and row["device"] == "cpu"
