"""Retargeting quality on every clip: 9:16, 21:9, 2x longer, 0.5x shorter and a loop; prints a table.

    python benchmarks/bench_retarget.py ../shared/clips/*.mp4 --sheet docs/retarget_contact_sheet.png

Each clip is read as the CLI reads it by default (shorter side 144 px, at most 30 frames).
Columns:
- coherence (vgpnn/metrics.py; lower is better) and its ratio to that of a plain variation
  of the same clip (`generate`, seed 0): the issue's bar is a ratio of at most 2;
- motion: the output's median frame-to-frame change over the source's; slow motion would
  give about 0.5 for a 2x longer clip;
- seam: the change from the last frame to the first over the median frame-to-frame change
  (about 1 for a seamless loop; a clip's own ends are usually far apart).
``--sheet`` writes a contact sheet of the first clip: source, 9:16, 1:1 and 21:9 rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vgpnn import RetargetOptions, SynthesisConfig, TargetRequest, generate, plan_target_shape, read_clip, retarget  # noqa: E402
from vgpnn import GenerateOptions, write_video  # noqa: E402
from vgpnn.cli.options import DEFAULT_MAX_FRAMES, DEFAULT_SHORT_SIDE  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.metrics import coherence  # noqa: E402
from vgpnn.preview import contact_sheet  # noqa: E402

JOBS = {
    "9:16": (TargetRequest(aspect=(9, 16)), False),
    "21:9": (TargetRequest(aspect=(21, 9)), False),
    "2x longer": (TargetRequest(time_scale=2), False),
    "0.5x shorter": (TargetRequest(time_scale=0.5), False),
    "loop": (TargetRequest(), True),
}
SHEET_JOBS = {"9:16": TargetRequest(aspect=(9, 16)), "1:1": TargetRequest(aspect=(1, 1)),
              "21:9": TargetRequest(aspect=(21, 9))}


def steps(frames: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))


def as_tensor(frames: np.ndarray) -> torch.Tensor:
    return frames_to_tensor(frames, torch.device("cpu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES)
    parser.add_argument("--sheet", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for number, path in enumerate(args.clips):
        clip = read_clip(path, short_side=DEFAULT_SHORT_SIDE, max_frames=args.max_frames or None)
        source = as_tensor(clip.frames)
        plain = generate(clip.frames, SynthesisConfig(), GenerateOptions(seed=0, device=args.device))[0]
        plain_coherence = coherence(as_tensor(plain), source)
        source_step = float(np.median(steps(clip.frames)))
        rows.append((path.name, "variation", "x".join(map(str, clip.frames.shape[2:0:-1])) + f"x{len(clip.frames)}",
                     float("nan"), plain_coherence, 1.0, float(np.median(steps(plain))) / source_step, float("nan")))
        for name, (request, loop) in JOBS.items():
            shape = plan_target_shape(clip.frames.shape[:3], clip.fps, request)
            started = time.perf_counter()
            out = retarget(clip.frames, shape, SynthesisConfig(noise_sigma=0), RetargetOptions(loop=loop, device=args.device))[0]
            seconds = time.perf_counter() - started
            out_coherence = coherence(as_tensor(out), source)
            seam = float(np.abs(out[0].astype(np.float32) - out[-1].astype(np.float32)).mean())
            rows.append((path.name, name, f"{shape[2]}x{shape[1]}x{shape[0]}", seconds, out_coherence,
                         out_coherence / plain_coherence, float(np.median(steps(out))) / source_step,
                         seam / float(np.median(steps(out)))))
        if args.sheet is not None and number == 0:
            outputs = [clip.frames]
            for request in SHEET_JOBS.values():
                shape = plan_target_shape(clip.frames.shape[:3], clip.fps, request)
                outputs.append(retarget(clip.frames, shape, SynthesisConfig(noise_sigma=0),
                                        RetargetOptions(device=args.device))[0])
            write_video(args.sheet, contact_sheet(outputs), None, overwrite=True)
        print(f"done {path.name}", file=sys.stderr, flush=True)
    print(f"\n| clip | job | output (WxHxT) | seconds ({args.device}) | coherence | vs variation | motion | seam |")
    print("|---|---|---|---|---|---|---|---|")
    for name, job, size, seconds, coh, ratio, motion, seam in rows:
        print(f"| {name} | {job} | {size} | {seconds:.1f} | {coh:.2e} | {ratio:.2f} | {motion:.2f} | {seam:.2f} |")


if __name__ == "__main__":
    main()
