"""Extension quality on every clip: the clip continued to 2x, 3x and 4x its length; prints a table.

    python benchmarks/bench_extend.py ../shared/clips/*.mp4 --sheet docs/extend_contact_sheet.png
    python benchmarks/bench_extend.py ../shared/clips/*.mp4 --device cuda --size 360 \\
        --long ../shared/clips/water_glass.mp4 --long-seconds 20

Each clip is read as the CLI reads it by default (shorter side ``--size``, 144 px; at most 30
frames) and extended forward without noise (one faithful continuation). Columns:
- kept: the largest absolute difference between the input's frames and the output's first
  frames (0: unchanged);
- junction: the step from the last input frame to the first new one (mean absolute difference)
  over the input's typical step (its median frame-to-frame change);
- worst: the largest step anywhere among the new frames over the typical step (a jump the
  timeline planned, or one pushed a few frames past the junction, shows here);
- motion: the new frames' mean frame-to-frame change over the input's;
- coherence: of the new frames (with the last 2 input frames, so patches across the junction
  count) against the input (vgpnn/metrics.py; lower is better), and in brackets over the mean
  coherence of ``--variations`` plain variations of the clip (`generate`, seeds 0, 1, ...; one
  variation's coherence alone swings with its seed and device by more than the 1.5x being judged);
- replay's coherence: the same for the input played again from its first frame after its last
  (a hard cut at every end), the naive continuation; patches across a cut are far from any
  source patch, so this metric punishes every jump, and a plain variation has none;
- seconds: the extension alone (no decoding or encoding).
``--long CLIP`` also extends all of that clip's frames by ``--long-seconds`` and reports the
time and, on a GPU, the peak memory (which the windows keep at about one clip's worth).
``--sheet`` writes a contact sheet of the first clip: the input, then each extension's frames.
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

from vgpnn import ExtendOptions, GenerateOptions, SynthesisConfig, extend, generate, read_clip, write_video  # noqa: E402
from vgpnn.apps.extend import window_plan  # noqa: E402
from vgpnn.cli.options import DEFAULT_MAX_FRAMES, DEFAULT_SHORT_SIDE  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.device import resolve_device  # noqa: E402
from vgpnn.metrics import coherence  # noqa: E402
from vgpnn.preview import contact_sheet  # noqa: E402


def steps(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change from each frame to the next, on the 0..255 scale."""
    return np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))


def as_tensor(frames: np.ndarray) -> torch.Tensor:
    return frames_to_tensor(frames, torch.device("cpu"))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(clip: np.ndarray, out: np.ndarray, plain_coherence: float) -> dict:
    count = len(clip)
    typical = float(np.median(steps(clip)))
    out_steps = steps(out)
    return {"kept": int(np.abs(out[:count].astype(np.int16) - clip).max()),
            "junction": float(out_steps[count - 1]) / typical,
            "worst": float(out_steps[count - 1:].max()) / typical,
            "motion": float(out_steps[count:].mean()) / float(steps(clip).mean()),
            "coherence": coherence(as_tensor(out[count - 2:]), as_tensor(clip)),
            "replay": coherence(as_tensor(replay(clip, len(out))[count - 2:]), as_tensor(clip)),
            "plain": plain_coherence}


def replay(clip: np.ndarray, length: int) -> np.ndarray:
    """The reference a continuation must beat: the clip played again and again, cut at each end."""
    return np.concatenate([clip] * -(-length // len(clip)))[:length]


def _row(row) -> str:
    name, job, size, windows, f, seconds = row
    return (f"| {name} | {job} | {size} | {windows} | {f['kept']} | {f['junction']:.2f} | {f['worst']:.2f} "
            f"| {f['motion']:.2f} | {f['coherence']:.2e} ({f['coherence'] / f['plain']:.2f}) "
            f"| {f['replay']:.2e} ({f['replay'] / f['plain']:.2f}) | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=DEFAULT_SHORT_SIDE, help="shorter side in pixels")
    parser.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES)
    parser.add_argument("--factors", default="2,3,4", help="output lengths as multiples of the input's")
    parser.add_argument("--sheet", type=Path, default=None)
    parser.add_argument("--variations", type=int, default=3, help="plain variations whose mean coherence is the yardstick")
    parser.add_argument("--long", type=Path, default=None, help="a clip to extend in full by --long-seconds")
    parser.add_argument("--long-seconds", type=float, default=20.0)
    args = parser.parse_args()
    device = resolve_device(args.device)
    factors = [float(f) for f in args.factors.split(",")]
    config = SynthesisConfig(noise_sigma=0)
    options = ExtendOptions(device=args.device)
    rows = []
    for number, path in enumerate(args.clips):
        clip = read_clip(path, short_side=args.size, max_frames=args.max_frames or None)
        frames, height, width = clip.frames.shape[:3]
        plain = generate(clip.frames, SynthesisConfig(), GenerateOptions(args.variations, seed=0, device=args.device))
        plain_coherence = float(np.mean([coherence(as_tensor(made), as_tensor(clip.frames)) for made in plain]))
        sheet = [clip.frames]
        for factor in factors:
            length = round(frames * factor)
            synchronize(device)
            started = time.perf_counter()
            out = extend(clip.frames, length, config, options)[0]
            synchronize(device)
            seconds = time.perf_counter() - started
            figures = measure(clip.frames, out, plain_coherence)
            rows.append((path.name, f"{factor:g}x", f"{width}x{height}x{frames}->{length}",
                         window_plan(frames, length, config).windows, figures, seconds))
            print(_row(rows[-1]), file=sys.stderr, flush=True)  # as it comes: a long run can be read early
            sheet.append(out[frames:])
        if args.sheet is not None and number == 0:
            write_video(args.sheet, contact_sheet(sheet), None, overwrite=True)
        print(f"done {path.name}", file=sys.stderr, flush=True)

    print(f"\n| clip | extension | WxHxT | windows | kept | junction | worst | motion | coherence (vs variation) "
          f"| replay's coherence (vs variation) | seconds ({device.type}) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(_row(row))

    if args.long is not None:
        clip = read_clip(args.long, short_side=args.size, max_frames=None)
        frames, height, width = clip.frames.shape[:3]
        length = frames + round(args.long_seconds * float(clip.fps))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        synchronize(device)
        started = time.perf_counter()
        out = extend(clip.frames, length, config, options)[0]
        synchronize(device)
        seconds = time.perf_counter() - started
        peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if device.type == "cuda" else "n/a (CPU)"
        windows = window_plan(frames, length, config).windows
        print(f"\nlong extension: {args.long.name} {width}x{height}, {frames} frames ({frames / float(clip.fps):.1f} s) "
              f"-> {length} frames ({length / float(clip.fps):.1f} s) in {windows} windows: {seconds:.1f} s, "
              f"peak GPU memory {peak}; kept {int(np.abs(out[:frames].astype(np.int16) - clip.frames).max())}, "
              f"junction {float(steps(out[frames - 1:frames + 1])[0]) / float(np.median(steps(clip.frames))):.2f}")


if __name__ == "__main__":
    main()
