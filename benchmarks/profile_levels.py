"""Where the time goes: seconds per pyramid level and the top operations of one variation.

    python benchmarks/profile_levels.py --device cuda --size 144 --frames 15
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vgpnn import SynthesisConfig, read_clip  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.device import resolve_device  # noqa: E402
from vgpnn.plan import SynthesisPlan  # noqa: E402
from vgpnn.resize import resize_video  # noqa: E402
from vgpnn.synthesis import synthesize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", default=str(ROOT / "examples" / "airballoons.mp4"))
    parser.add_argument("--size", type=int, default=144)
    parser.add_argument("--frames", type=int, default=15)
    parser.add_argument("--shape", default=None,
                        help="WIDTHxHEIGHTxFRAMES: resize the clip to exactly this (upscaling too), "
                             "as bench_speed.py does, instead of --size and --frames")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    device = resolve_device(args.device)
    source = frames_to_tensor(read_clip(args.clip, short_side=args.size, max_frames=args.frames).frames, device)
    if args.shape:
        width, height, frames = (int(part) for part in args.shape.lower().split("x"))
        source = resize_video(frames_to_tensor(read_clip(args.clip).frames, device),
                              (frames, height, width)).clamp(0, 1)
    shape, config, seeds = tuple(source.shape[1:]), SynthesisConfig(backend=args.backend), list(range(args.batch))
    synthesize(SynthesisPlan.single(source, shape, config, seeds))  # warm-up
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    result = synthesize(SynthesisPlan.single(source, shape, config, seeds))
    sync()
    print(f"total {time.perf_counter() - started:.3f} s for {args.batch} variation(s) of {shape}")
    for level in result.levels:
        print(f"  {level.source_shape} -> {level.target_shape} patch {level.patch_size} "
              f"x{level.iterations} {'+'.join(sorted(set(level.backends)))}: {level.seconds:.3f} s")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        synthesize(SynthesisPlan.single(source, shape, config, seeds))
        sync()
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=args.rows))


if __name__ == "__main__":
    main()
