"""Speed, memory and quality of `generate` per backend and device; prints a markdown table.

    python benchmarks/bench_generate.py                      # CPU: auto, faiss, patchmatch
    python benchmarks/bench_generate.py --device cuda --backends auto,exact,patchmatch

Each backend runs in its own process (so peak RSS is its own): a warm-up run (on CPU a small
one, which compiles the numba kernels and loads faiss; on CUDA the full size), then
``--variations`` timed variations, one at a time. Seconds per variation is the median of the
timed runs, synthesis only (no decoding or encoding). Quality figures (vgpnn/metrics.py)
are over the timed variations: coherence and completeness averaged, diversity across them.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_one(args) -> dict:
    import torch

    from vgpnn import SynthesisConfig, read_clip
    from vgpnn.clip_tensor import frames_to_tensor
    from vgpnn.device import resolve_device
    from vgpnn.metrics import coherence, completeness, diversity
    from vgpnn.plan import SynthesisPlan
    from vgpnn.synthesis import synthesize

    device = resolve_device(args.device)
    clip = read_clip(args.clip, short_side=args.size, max_frames=args.frames)
    source = frames_to_tensor(clip.frames, device)
    shape = tuple(source.shape[1:])
    config = SynthesisConfig(backend=args.one)
    warm = source if device.type == "cuda" else frames_to_tensor(
        read_clip(args.clip, short_side=48, max_frames=6).frames, device)
    synthesize(SynthesisPlan.single(warm, tuple(warm.shape[1:]), config, [10**6]))
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seconds, cpu_seconds, outputs, backends = [], [], [], set()
    for i in range(args.variations):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = synthesize(SynthesisPlan.single(source, shape, config, [args.seed + i]))
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
        outputs.append(result.videos[0].float().cpu())
        backends |= {b for level in result.levels for b in level.backends}
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    source_cpu = source.float().cpu()
    return {
        "backend": args.one, "used": sorted(backends), "device": str(device),
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "shape": list(shape),
        "seconds": seconds, "seconds_median": statistics.median(seconds),
        # CPU time of all threads: comparable between backends on a machine others share too
        "cpu_seconds_median": statistics.median(cpu_seconds),
        "peak_bytes": peak, "peak_kind": "cuda max_memory_allocated" if device.type == "cuda" else "RSS",
        "coherence": statistics.mean(coherence(o, source_cpu) for o in outputs),
        "completeness": statistics.mean(completeness(o, source_cpu) for o in outputs),
        "diversity": diversity(torch.stack(outputs), source_cpu) if len(outputs) > 1 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=str(ROOT / "examples" / "airballoons.mp4"))
    parser.add_argument("--size", type=int, default=144, help="shorter side in pixels")
    parser.add_argument("--frames", type=int, default=15)
    parser.add_argument("--variations", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backends", default="auto,faiss,patchmatch")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args)))
        return
    rows = []
    for backend in args.backends.split(","):
        command = [sys.executable, __file__, "--one", backend, "--clip", args.clip, "--size", str(args.size),
                   "--frames", str(args.frames), "--variations", str(args.variations),
                   "--seed", str(args.seed), "--device", args.device]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{backend}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"done {backend}: {rows[-1]['seconds_median']:.2f} s/variation", file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(f"\nclip {Path(args.clip).name}, {rows[0]['shape'] if rows else '?'} (frames, height, width), "
          f"{args.variations} variations\n")
    print("| device | backend (levels used) | s / variation | CPU s / variation | peak memory | coherence | completeness | diversity |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        diversity = f"{row['diversity']:.3f}" if row["diversity"] is not None else "-"
        print(f"| {row['device_name']} ({row['threads']} threads) | {row['backend']} ({'+'.join(row['used'])}) "
              f"| {row['seconds_median']:.2f} | {row['cpu_seconds_median']:.2f} | {row['peak_bytes'] / 2**30:.2f} GiB {row['peak_kind']} "
              f"| {row['coherence']:.2e} | {row['completeness']:.2e} | {diversity} |")


if __name__ == "__main__":
    main()
