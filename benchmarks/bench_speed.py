"""Seconds per variation and peak memory of `generate` at several sizes; prints a markdown table.

    python benchmarks/bench_speed.py --device cuda                 # the README's GPU table
    python benchmarks/bench_speed.py --device cpu --sizes 256x144x15

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
import resource
import statistics
import sys
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=str(ROOT / "examples" / "airballoons.mp4"))
    parser.add_argument("--sizes", default="256x144x15,640x360x15,1280x720x15,1920x1080x30")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="variations synthesised together")
    args = parser.parse_args()

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
