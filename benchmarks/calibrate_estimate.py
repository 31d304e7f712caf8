"""Fit the per-unit costs of vgpnn/estimate.py to per-level timings of real runs, and check them.

    python benchmarks/calibrate_estimate.py --device cpu --sizes 128x72x15,256x144x15 --check 256x144x20
    python benchmarks/calibrate_estimate.py --device cpu --check 256x144x30

Fitting prints a COSTS entry and the matrix-product rate to paste into vgpnn/estimate.py.
``--check`` runs whole default jobs and prints estimated vs measured seconds.
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

from vgpnn import SynthesisConfig, read_clip  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.device import resolve_device  # noqa: E402
from vgpnn.estimate import COSTS, estimate_seconds, level_work, matmul_rate, plan_levels  # noqa: E402
from vgpnn.resize import resize_video  # noqa: E402
from vgpnn.plan import SynthesisPlan  # noqa: E402
from vgpnn.synthesis import synthesize  # noqa: E402

TERMS = ("exact", "approx", "keys", "vote", "steps")


def parse_size(text: str) -> tuple[int, int, int]:
    width, height, frames = (int(part) for part in text.lower().split("x"))
    return frames, height, width


def source_of(shape, clip, device) -> torch.Tensor:
    frames = read_clip(clip, max_frames=max(shape[0], 1)).frames
    return resize_video(frames_to_tensor(frames, device), shape)


def nonnegative_least_squares(features: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Least squares with every cost >= 0: drop the most negative term until none is."""
    active = list(range(features.shape[1]))
    while True:
        solution = np.zeros(features.shape[1])
        # Relative error is what matters across levels that differ by 1000x in time.
        weights = 1.0 / np.maximum(seconds, 1e-3)
        fitted, *_ = np.linalg.lstsq(features[:, active] * weights[:, None], seconds * weights, rcond=None)
        solution[active] = fitted
        if fitted.min() >= 0:
            return solution
        active.pop(int(np.argmin(fitted)))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", default=str(ROOT / "examples" / "airballoons.mp4"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", default="128x72x15,256x144x15", help="WxHxT,... to fit on")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3,
                        help="variations per size: how long a variation takes depends on its seed (a "
                             "re-composed layout costs up to twice a near copy), so the fit is to their mean")
    parser.add_argument("--check", default="", help="WxHxT,... default jobs to compare with the estimate")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rate = matmul_rate(device)
    print(f"device {device}: float32 matmul {rate:.3e} multiply-adds/s")
    synthesize(SynthesisPlan.single(source_of((6, 32, 48), args.clip, device), (6, 32, 48), SynthesisConfig(iterations=1), [0]))  # warm-up

    if args.sizes:
        rows, seconds = [], []
        config = SynthesisConfig(iterations=args.iterations)
        for text in args.sizes.split(","):
            shape = parse_size(text)
            source = source_of(shape, args.clip, device)
            for seed in range(args.seeds):
                sync(device)
                result = synthesize(SynthesisPlan.single(source, shape, config, [seed]))
                sync(device)
                for level in result.levels:
                    work = level_work(level.source_shape, level.target_shape, level.patch_size, level.iterations,
                                      level.backends)
                    rows.append([getattr(work, term) for term in TERMS])
                    seconds.append(level.seconds)
                    print(f"  {text} seed {seed} level {level.source_shape} {'+'.join(sorted(set(level.backends)))} "
                          f"{level.seconds:.3f} s")
        costs = nonnegative_least_squares(np.array(rows), np.array(seconds))
        fitted = np.array(rows) @ costs
        print("COSTS entry:", "{" + ", ".join(f'"{t}": {c:.2e}' for t, c in zip(TERMS, costs)) + "}")
        print(f"REFERENCE_MATMUL_RATE: {rate:.2e}")
        print(f"fit: total measured {sum(seconds):.2f} s, modelled {fitted.sum():.2f} s")
        COSTS[device.type] = dict(zip(TERMS, costs))

    for text in filter(None, args.check.split(",")):
        shape = parse_size(text)
        source = source_of(shape, args.clip, device)
        estimate = estimate_seconds(plan_levels(shape, shape, SynthesisConfig(), device.type), device, rate)
        times = []
        for seed in range(args.seeds):
            sync(device)
            started = time.perf_counter()
            synthesize(SynthesisPlan.single(source, shape, SynthesisConfig(), [seed]))
            sync(device)
            times.append(time.perf_counter() - started)
        measured = sum(times) / len(times)
        print(f"check {text}: estimated {estimate:.1f} s, measured {measured:.1f} s (mean of {len(times)} seeds) "
              f"(ratio {estimate / measured:.2f})")


if __name__ == "__main__":
    main()
