"""Throughput of ``vgpnn generate --executor ray``: variations per minute; prints a markdown table.

    python benchmarks/bench_ray.py                                   # CPU: here, then 1 and 2 Ray nodes
    python benchmarks/bench_ray.py --device cuda --tasks-per-gpu 1,4 # one GPU shared by 1, then 4 tasks

Each Ray configuration gets a fresh cluster on this machine (``ray start --head`` and, for more
nodes, ``ray start --address``), each node with ``--cpus-per-node`` CPUs (CPU runs) or with one
GPU and as many CPUs as tasks share it (GPU runs), stopped afterwards by killing the processes
it started. The timed figure is the whole command, ``vgpnn generate CLIP -n VARIATIONS``, from
start to exit: it includes starting the driver, connecting and starting Ray's worker processes
(a new command gets new workers), which is what a user waits for. A warm-up command on each
cluster first writes the numba cache, so no run pays for compiling.

CPU runs give every process ``--threads`` torch threads (OMP_NUM_THREADS; the workers copy the
driver's), so one node of one CPU runs one task of one thread at a time, two nodes two.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalCluster:
    """``nodes`` Ray nodes on this machine, each in its own session so stop() kills only them."""

    def __init__(self, nodes: int, cpus: float, gpus: int, env: dict, folder: Path):
        self.address = f"127.0.0.1:{free_port()}"
        self.processes: list[subprocess.Popen] = []
        limits = ["--num-cpus", str(cpus), "--num-gpus", str(gpus), "--disable-usage-stats",
                  "--node-ip-address", "127.0.0.1", "--object-store-memory", "200000000"]
        for number in range(nodes):
            role = (["--head", "--port", self.address.rsplit(":", 1)[1], "--include-dashboard=false",
                     "--temp-dir", str(folder / "ray-temp")] if number == 0 else ["--address", self.address])
            log = folder / f"node{number}.log"
            self.processes.append(subprocess.Popen(["ray", "start", "--block", *role, *limits], env=env,
                                                   stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                                   start_new_session=True))
            deadline = time.monotonic() + 300
            while "Ray runtime started" not in log.read_text():
                if time.monotonic() > deadline or self.processes[-1].poll() is not None:
                    self.stop()
                    raise SystemExit(f"Ray node {number} did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # whatever is left in its group
            except ProcessLookupError:
                pass


def run_generate(args, output: Path, env: dict, variations: int, extra: list[str]) -> tuple[float, dict]:
    shutil.rmtree(output, ignore_errors=True)
    report = output.with_suffix(".json")
    command = [sys.executable, "-m", "vgpnn", "generate", str(args.clip), "-n", str(variations), "--seed", "0",
               "--working-size", str(args.size), "--max-frames", str(args.frames), "--device", args.device,
               "-o", str(output), "--report", str(report), "-y", "-q", *extra]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[:3000]}")
    return seconds, json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=ROOT / "examples" / "airballoons.mp4")
    parser.add_argument("--size", type=int, default=96, help="working size: shorter side in pixels")
    parser.add_argument("--frames", type=int, default=15, help="--max-frames")
    parser.add_argument("--variations", type=int, default=8, help="variations per timed command")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--nodes", default="1,2", help="CPU: Ray node counts to time, comma-separated")
    parser.add_argument("--cpus-per-node", type=float, default=1)
    parser.add_argument("--threads", type=int, default=1, help="CPU: torch threads per process")
    parser.add_argument("--tasks-per-gpu", default="1,4", help="GPU: tasks sharing the one GPU, comma-separated")
    parser.add_argument("--no-local", action="store_true", help="skip the run without Ray")
    args = parser.parse_args()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RAY_ADDRESS": ""}
    if args.device == "cpu":
        env |= {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    folder = Path(tempfile.mkdtemp(prefix="vgpnn-bench-ray-"))
    rows = []
    try:
        if not args.no_local:
            run_generate(args, folder / "out-warm", env, 1, [])
            seconds, _ = run_generate(args, folder / "out-local", env, args.variations, [])
            rows.append(("here, no Ray (one process)", seconds))
        if args.device == "cpu":
            configurations = [(f"Ray, {n} node{'s' * (n > 1)} x {args.cpus_per_node:g} CPU", n, args.cpus_per_node, 0,
                               ["--cpus-per-task", "1"]) for n in map(int, args.nodes.split(","))]
        else:
            configurations = [(f"Ray, 1 GPU shared by {k} task{'s' * (k > 1)}", 1, k, 1,
                               ["--cpus-per-task", "1", "--gpus-per-task", f"{1 / k:.6g}"])
                              for k in map(int, args.tasks_per_gpu.split(","))]
        for label, nodes, cpus, gpus, extra in configurations:
            cluster = LocalCluster(nodes, cpus, gpus, env, folder)
            try:
                options = ["--executor", "ray", "--ray-address", cluster.address, *extra]
                run_generate(args, folder / "out-warm", env, max(2, nodes), options)
                seconds, report = run_generate(args, folder / "out-ray", env, args.variations, options)
            finally:
                cluster.stop()
            used = len({record["node"]["id"] for record in report["records"]})
            rows.append((f"{label} ({used} used)", seconds))
    except BaseException:
        print(f"logs kept in {folder}", file=sys.stderr)
        raise
    shutil.rmtree(folder, ignore_errors=True)

    import torch
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else f"{os.cpu_count()} CPU cores"
    print(f"\n`vgpnn generate` of {args.clip.name} at working size {args.size}, {args.frames} frames, "
          f"-n {args.variations}, on {device}" + (f", {args.threads} torch thread(s) per process" if args.device == "cpu" else ""))
    print("\n| configuration | seconds (whole command) | variations per minute |\n|---|---:|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} | {args.variations * 60 / seconds:.1f} |")


if __name__ == "__main__":
    main()
