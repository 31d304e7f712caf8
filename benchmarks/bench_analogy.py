"""Analogies: does the output keep APPEARANCE's texture and STRUCTURE's motion?

    python benchmarks/bench_analogy.py                  # every pair at 144p, 30 frames, on the CPU
    python benchmarks/bench_analogy.py --device cuda --size 360 --sheets docs/

Per pair (STRUCTURE -> APPEARANCE), at the working size:
- detail: mean gray-level gradient magnitude of the output over APPEARANCE's (1: as textured);
- motion r: Pearson correlation between the per-pixel mean |frame difference| maps of the
  output and of STRUCTURE, each blurred over about 1/24 of the frame height (1: moves where
  STRUCTURE moves);
- coherence vs APPEARANCE and vs STRUCTURE (metrics.coherence: lower is more alike); the output
  should look like APPEARANCE, so the first should be the lower;
- seconds of `vgpnn.apps.analogy.analogy` (guides included, reading excluded).
The sketch is examples/make_sketch.py's label video at the working size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
from make_sketch import sketch_frames  # noqa: E402

from vgpnn.apps.analogy import AnalogyOptions, analogy  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.config import SynthesisConfig  # noqa: E402
from vgpnn.metrics import coherence  # noqa: E402
from vgpnn.preview import contact_sheet  # noqa: E402
from vgpnn.video import read_clip, write_video  # noqa: E402

CLIPS = ROOT.parent / "shared" / "clips"
PAIRS = [("water_glass", "tree_foliage"), ("tree_foliage", "water_glass"), ("bunny_audio", "airballoons"),
         ("airballoons", "bunny_audio"), ("sketch", "tree_foliage")]


def gray(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W) float gray levels in [0, 1]."""
    return torch.from_numpy(frames).float().mul(1 / 255) @ torch.tensor([0.299, 0.587, 0.114])


def detail(frames: np.ndarray) -> float:
    g = gray(frames)
    dy, dx = g[:, 1:, :-1] - g[:, :-1, :-1], g[:, :-1, 1:] - g[:, :-1, :-1]
    return float(torch.sqrt(dx.square() + dy.square()).mean())


def motion_map(frames: np.ndarray) -> torch.Tensor:
    """Per-pixel mean |frame difference|, blurred over about 1/24 of the height."""
    g = gray(frames)
    moving = (g[1:] - g[:-1]).abs().mean(0)[None, None]
    radius = max(1, round(frames.shape[1] / 24))
    return F.avg_pool2d(moving, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)[0, 0]


def motion_correlation(output: np.ndarray, structure: np.ndarray) -> float:
    a, b = motion_map(output).flatten(), motion_map(structure).flatten()
    a, b = a - a.mean(), b - b.mean()
    denominator = float(a.norm() * b.norm())
    return float((a * b).sum()) / denominator if denominator > 0 else float("nan")


def load(name: str, size: int, frames: int) -> np.ndarray:
    if name == "sketch":
        return sketch_frames(frames, size, round(size * 16 / 9 / 2) * 2)
    return read_clip(CLIPS / f"{name}.mp4", short_side=size, max_frames=frames).frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=144, help="working size (shorter side)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sheets", type=Path, default=None, help="write a contact sheet per pair here")
    args = parser.parse_args()
    device = torch.device(args.device)
    header = f"{'structure -> appearance':32} {'detail':>7} {'motion r':>8} {'coh vs A':>9} {'coh vs S':>9} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    details = []
    for structure_name, appearance_name in PAIRS:
        structure, appearance = load(structure_name, args.size, args.frames), load(appearance_name, args.size, args.frames)
        started = time.perf_counter()
        output = analogy(structure, appearance, SynthesisConfig(noise_sigma=0), AnalogyOptions(device=args.device))[0]
        seconds = time.perf_counter() - started
        ratio = detail(output) / detail(appearance)
        details.append(ratio)
        out = frames_to_tensor(output, device)
        against_appearance = coherence(out, frames_to_tensor(appearance, device))
        against_structure = coherence(out, frames_to_tensor(structure, device))
        print(f"{structure_name + ' -> ' + appearance_name:32} {ratio:7.2f} {motion_correlation(output, structure):8.2f} "
              f"{against_appearance:9.2e} {against_structure:9.2e} {seconds:8.1f}", flush=True)
        if args.sheets is not None:
            write_video(args.sheets / f"analogy_{structure_name}_{appearance_name}.png",
                        contact_sheet([structure, appearance, output]), None, overwrite=True)
    print(f"mean detail ratio {np.mean(details):.2f}; working size {args.size}, {args.frames} frames, {device}")


if __name__ == "__main__":
    main()
