"""Optical flow: OpenCV's DIS (each preset) against our Horn-Schunck, on the shared clips.

    python benchmarks/bench_flow.py                 # 360p, 24 frames per clip, on the CPU
    python benchmarks/bench_flow.py --size 144 --frames 30

With no ground-truth motion, a flow is judged by how well it explains the next frames: frame t
is rebuilt by warping frame t+gap back along the flow from t to t+gap, and the error is the mean
absolute difference (0-255 gray levels) over pixels whose warp stays inside the frame. Gap 1 is
ordinary motion; gap 3 is the larger motion interpolation and propagation meet. Lower is better.
The "still" row, no motion at all, is the floor any flow must beat. ms/pair: wall time per pair.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.flow import DIS_PRESETS, frame_flows, optical_flow, to_gray, warp  # noqa: E402
from vgpnn.video import read_clip  # noqa: E402

CLIPS = ROOT.parent / "shared" / "clips"


def horn_schunck(gray, pairs):
    """Horn-Schunck solves consecutive pairs only; for a gap > 1 it runs on the subsampled frames."""
    gap = pairs[0][1] - pairs[0][0]
    flows = optical_flow(gray[::gap])
    return flows[: len(pairs)]


def error(gray, pairs, flows):
    first = torch.stack([gray[a] for a, _ in pairs])[:, None]
    second = torch.stack([gray[b] for _, b in pairs])[:, None]
    rebuilt, inside = warp(second, flows)
    diff = (rebuilt - first).abs()[:, 0] * 255
    return float(diff[inside].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=360, help="short side of the frames")
    parser.add_argument("--frames", type=int, default=24)
    args = parser.parse_args()
    methods = {"still": lambda gray, pairs: gray.new_zeros(len(pairs), 2, *gray.shape[1:]),
               "horn-schunck": horn_schunck}
    for preset in DIS_PRESETS:
        methods[f"dis {preset}"] = lambda gray, pairs, preset=preset: frame_flows(gray, pairs, preset)
    clips = sorted(CLIPS.glob("*.mp4"))
    print(f"| method | gap | " + " | ".join(c.stem for c in clips) + " | ms/pair |")
    print("|---|---|" + "---|" * (len(clips) + 1))
    grays = [to_gray(frames_to_tensor(read_clip(c, short_side=args.size, max_frames=args.frames).frames))
             for c in clips]
    for name, method in methods.items():
        for gap in (1, 3):
            errors, seconds, count = [], 0.0, 0
            for gray in grays:
                pairs = [(t, t + gap) for t in range(0, gray.shape[0] - gap, gap)]
                start = time.perf_counter()
                flows = method(gray, pairs)
                seconds += time.perf_counter() - start
                count += len(pairs)
                errors.append(error(gray, pairs, flows))
            cells = " | ".join(f"{e:.2f}" for e in errors)
            print(f"| {name} | {gap} | {cells} | {1000 * seconds / count:.1f} |", flush=True)


if __name__ == "__main__":
    main()
