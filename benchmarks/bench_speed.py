"""Seconds per variation and peak memory of `generate` at several sizes; prints a markdown table.

    python benchmarks/bench_speed.py --device cuda                 # the README's GPU table
    python benchmarks/bench_speed.py --device cpu --sizes 256x144x15
    python benchmarks/bench_speed.py --commands --device cpu       # whole commands, cold and warm
    python benchmarks/bench_speed.py --commands --device cuda

``--commands`` runs the README's commands as a user would, each in a new process, and prints
their whole wall time (start-up, decoding, synthesis, encoding) beside the synthesis time the
``--report`` records: "cold" with empty numba and Triton caches (a first run on a machine:
kernels compile), then "warm" (the median of ``--runs`` more runs with the caches filled).
``vgpnn --help`` is timed too. Nothing else should run on the machine meanwhile.

Sources are the shipped clip (256x144, 20 frames) resized with vgpnn's own antialiased cubic
resize to each WIDTHxHEIGHTxFRAMES (larger sizes are upscaled in space and, for 30 frames, in
time). Every size runs ``--runs`` times after one warm-up run at 256x144 (kernel compilation,
cuDNN and allocator start-up); seconds per variation is the median over the runs of the
synthesis time divided by the variations in that run (``--batch`` variations synthesised
together). Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA and the process's peak
RSS on a CPU. Coherence and diversity are measured for the smallest size (needs >= 2 variations
in all). Decoding, encoding and interpreter start-up are not included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vgpnn import SynthesisConfig, read_clip  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.device import resolve_device  # noqa: E402
from vgpnn.metrics import coherence, diversity  # noqa: E402
from vgpnn.resize import resize_video  # noqa: E402
from vgpnn.plan import SynthesisPlan  # noqa: E402
from vgpnn.synthesis import synthesize  # noqa: E402


def timed(source, config, seeds, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = synthesize(SynthesisPlan.single(source, tuple(source.shape[1:]), config, seeds))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, result


# The whole commands --commands times ({clip}: the shipped clip; {out}: a fresh folder per run).
COMMANDS = (
    "vgpnn --help",
    "vgpnn generate {clip} -n 3 --seed 0 -o {out}",  # the README's main job
    "vgpnn generate {clip} -n 4 --seed 0 --max-frames 15 -o {out}",
    "vgpnn retarget {clip} --duration 15 -o {out}",
)


def run_command(template: str, clip: str, device: str, caches: Path) -> tuple[float, float | None]:
    """(wall seconds, synthesis seconds from the report) of one run in a new process."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        words = shlex.split(template.format(clip=clip, out=Path(scratch) / "out" / ""))
        if words[1] != "--help":
            words += ["--device", device, "-q", "--report", str(report)]
        environment = {**os.environ, "NUMBA_CACHE_DIR": str(caches / "numba"),
                       "TRITON_CACHE_DIR": str(caches / "triton"),
                       # the checkout first, then whatever the caller's path holds (PyAV installed aside, say)
                       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "vgpnn", *words[1:]], env=environment, cwd=ROOT,
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{template} failed:\n{done.stderr[-2000:]}")
        if not report.exists():
            return wall, None
        records = json.loads(report.read_text())["records"]
        # One output at a time (the default --batch-size 1): each record holds its own synthesis.
        return wall, sum(r["seconds"]["synthesis"] for r in records if r["status"] == "written")


def time_commands(args) -> None:
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # Then no module's bytecode is cached, so every process compiles the ones pip left
        # uncompiled (all of torch on a read-only image: 4-5.5 s of `import torch` on the H200).
        print("warning: PYTHONDONTWRITEBYTECODE is set: start-up times include compiling Python modules; "
              "a user's pip install does not (unset it and set PYTHONPYCACHEPREFIX to a writable folder)",
              file=sys.stderr)
    clip = str(Path(args.clip).resolve())
    rows = []
    with tempfile.TemporaryDirectory() as caches:
        caches = Path(caches)
        for template in COMMANDS:
            cold = run_command(template, clip, args.device, caches)
            warm = [run_command(template, clip, args.device, caches) for _ in range(args.runs)]
            rows.append((template.format(clip=args.clip, out="out/"), cold,
                         statistics.median(w for w, _ in warm),
                         None if warm[0][1] is None else statistics.median(s for _, s in warm)))
            print(f"done {rows[-1][0]}: cold {cold[0]:.1f} s, warm {rows[-1][2]:.1f} s", file=sys.stderr, flush=True)
    print(f"\n| command (--device {args.device}) | wall, cold (s) | wall, warm (s) | synthesis, warm (s) |")
    print("|---|---|---|---|")
    for command, cold, warm, synthesis in rows:
        print(f"| `{command}` | {cold[0]:.1f} | {warm:.1f} | {'-' if synthesis is None else f'{synthesis:.1f}'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=str(ROOT / "examples" / "airballoons.mp4"))
    parser.add_argument("--sizes", default="256x144x15,640x360x15,1280x720x15,1920x1080x30")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="variations synthesised together")
    parser.add_argument("--commands", action="store_true", help="time whole commands, cold and warm (see above)")
    args = parser.parse_args()
    if args.commands:
        time_commands(args)
        return

    device = resolve_device(args.device)
    clip = read_clip(args.clip)
    full = frames_to_tensor(clip.frames, device)
    config = SynthesisConfig(backend=args.backend)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    timed(resize_video(full, (15, 144, 256)), config, [999], device)  # warm-up

    rows = []
    for size in args.sizes.split(","):
        width, height, frames = (int(v) for v in size.split("x"))
        source = resize_video(full, (frames, height, width)).clamp(0, 1)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        per_variation, outputs, backends = [], [], set()
        for run in range(args.runs):
            seeds = [run * args.batch + i for i in range(args.batch)]
            seconds, result = timed(source, config, seeds, device)
            per_variation.append(seconds / args.batch)
            backends |= {b for level in result.levels for b in level.backends}
            if not rows:
                outputs.extend(v.float() for v in result.videos)
            del result
        peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        quality = "-"
        if not rows and len(outputs) >= 2:
            coh = statistics.mean(coherence(o, source) for o in outputs)
            quality = f"{coh:.2e} / {diversity(torch.stack(outputs), source):.3f}"
        rows.append((size, "+".join(sorted(backends)), statistics.median(per_variation), peak, quality))
        print(f"done {size}: {rows[-1][2]:.2f} s/variation {[round(s, 2) for s in per_variation]}",
              file=sys.stderr, flush=True)

    print(f"\n| size (WxHxT) | device | backend (levels used) | s / variation (median of {args.runs}, batch {args.batch}) "
          "| peak memory | coherence / diversity |")
    print("|---|---|---|---|---|---|")
    for size, used, seconds, peak, quality in rows:
        print(f"| {size} | {name} | {args.backend} ({used}) | {seconds:.2f} | {peak / 2**30:.2f} GiB | {quality} |")


if __name__ == "__main__":
    main()
