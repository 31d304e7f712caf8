"""Default-settings quality and speed of `generate` on every clip of a folder; prints a table.

    python benchmarks/bench_clips.py ../shared/clips/*.mp4 examples/airballoons.mp4

Each clip is read as `vgpnn generate` reads it by default (shorter side 144 px, at most 30
frames), then ``--variations`` variations are made one after another with seeds 0, 1, ...
Seconds per variation is synthesis only. Quality figures are those of vgpnn/metrics.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vgpnn import SynthesisConfig, read_clip  # noqa: E402
from vgpnn.cli.options import DEFAULT_MAX_FRAMES, DEFAULT_SHORT_SIDE  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.device import resolve_device  # noqa: E402
from vgpnn.metrics import coherence, completeness, diversity  # noqa: E402
from vgpnn.plan import SynthesisPlan  # noqa: E402
from vgpnn.synthesis import synthesize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--variations", type=int, default=3)
    parser.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = []
    for path in args.clips:
        clip = read_clip(path, short_side=DEFAULT_SHORT_SIDE, max_frames=args.max_frames or None)
        source = frames_to_tensor(clip.frames, device)
        outputs, seconds = [], []
        for seed in range(args.variations):
            started = time.perf_counter()
            outputs.append(synthesize(SynthesisPlan.single(source, tuple(source.shape[1:]), SynthesisConfig(), [seed])).videos[0])
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - started)
        source_cpu, outputs = source.cpu(), [o.cpu() for o in outputs]
        rows.append((path.name, "x".join(map(str, clip.frames.shape[2:0:-1])) + f"x{len(clip.frames)}",
                     statistics.median(seconds),
                     statistics.mean(coherence(o, source_cpu) for o in outputs),
                     statistics.mean(completeness(o, source_cpu) for o in outputs),
                     diversity(torch.stack(outputs), source_cpu)))
        print(f"done {path.name}", file=sys.stderr, flush=True)
    print(f"\n| clip | working size (WxHxT) | s / variation ({device}) | coherence | completeness | diversity |")
    print("|---|---|---|---|---|---|")
    for name, size, secs, coh, comp, div in rows:
        print(f"| {name} | {size} | {secs:.1f} | {coh:.2e} | {comp:.2e} | {div:.3f} |")


if __name__ == "__main__":
    main()
