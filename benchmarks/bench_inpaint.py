"""Inpainting on real clips: a region of moving foliage and a rising balloon; prints a table.

    python benchmarks/bench_inpaint.py --clips ../shared/clips --sheet docs/inpaint_contact_sheet.png

Cases (default working size: shorter side 144, at most 30 frames):
- tree_foliage.mp4, an image mask: a box over the moving leaves in the middle of the frame;
- examples/airballoons.mp4, a mask video: a box following the yellow balloon that rises
  through the middle of the clip (about 2.5 px a frame).
Columns: seconds of synthesis, share of the clip filled, and coherence (vgpnn/metrics.py)
of the output patches that touch the hole against the source patches that do not, beside the
same figure for the input (which still shows the object) and for the hole filled with its
mean colour (a flat patch). Coherence is a mean squared error, so it favours blur wherever the
source's texture never repeats exactly: there (moving leaves) even the input's own content
scores worse than a flat fill. Detail and motion say what it cannot: the fill's mean gray-level
gradient and frame-to-frame change over those of the 8 pixels around the hole (1 is like its
surroundings; a soft fill is well below 1, a frozen one near 0), with the input's own figures
in brackets.
The masks are written next to the sheet (``*_mask.png``, ``*_mask/``) so the CLI can be run
on them: ``vgpnn inpaint CLIP --mask MASK``.
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

from vgpnn import read_clip, write_video  # noqa: E402
from vgpnn.apps.inpaint import InpaintOptions, hole_from_mask, inpaint  # noqa: E402
from vgpnn.cli.options import DEFAULT_MAX_FRAMES, DEFAULT_SHORT_SIDE  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.metrics import region_coherence  # noqa: E402
from vgpnn.preview import contact_sheet  # noqa: E402


def foliage_mask(frames: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((1, height, width, 3), np.uint8)
    mask[0, height * 3 // 10:height * 6 // 10, width * 4 // 10:width * 6 // 10] = 255
    return mask


def balloon_mask(frames: int, height: int, width: int) -> np.ndarray:
    """Follows the balloon at x = 140, y = 88 -> 40 over 20 frames (at 256x144), from 11 px above
    that path to 15 below: mid-clip the balloon sits lower than the straight path, and with 11
    below its basket hung out of the mask and stayed in the fill as a floating speck."""
    mask = np.zeros((frames, height, width, 3), np.uint8)
    sx, sy = width / 256, height / 144
    for t in range(frames):
        y = 88 - 48 * t / 19
        mask[t, int((y - 11) * sy):int((y + 15) * sy), int(128 * sx):int(153 * sx)] = 255
    return mask


CASES = {"tree_foliage": ("{clips}/tree_foliage.mp4", foliage_mask),
         "airballoons": (str(ROOT / "examples" / "airballoons.mp4"), balloon_mask)}


def ring_around(hole: np.ndarray, width: int = 8) -> np.ndarray:
    """The pixels within ``width`` of the hole in the same frame, outside it."""
    window = (1, 2 * width + 1, 2 * width + 1)
    grown = torch.nn.functional.max_pool3d(torch.from_numpy(hole)[None, None].float(), window, stride=1,
                                           padding=(0, width, width))[0, 0]
    return grown.numpy().astype(bool) & ~hole


def detail_and_motion(frames: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """Mean gray-level gradient (|dx| + |dy|) and frame-to-frame change of ``frames`` in ``region``."""
    gray = frames.astype(np.float32).mean(-1) / 255
    gradient = np.abs(np.diff(gray, axis=2))[:, :-1, :] + np.abs(np.diff(gray, axis=1))[:, :, :-1]
    return float(gradient[region[:, :-1, :-1]].mean()), float(np.abs(np.diff(gray, axis=0))[region[1:]].mean())


def liveliness(video: np.ndarray, frames: np.ndarray, hole: np.ndarray) -> tuple[float, float]:
    """Detail and motion of ``video`` in the hole over those of ``frames`` around it."""
    detail, motion = detail_and_motion(video, hole)
    ring_detail, ring_motion = detail_and_motion(frames, ring_around(hole))
    return detail / ring_detail, motion / ring_motion


def tinted(frames: np.ndarray, hole: np.ndarray) -> np.ndarray:
    shown = frames.copy()
    shown[hole] = (shown[hole] * 0.4 + np.array([255, 0, 255]) * 0.6).astype(np.uint8)
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "clips")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sheet", type=Path, default=None)
    args = parser.parse_args()
    rows, sheet_rows = [], []
    mask_dir = (args.sheet.parent if args.sheet else Path("."))
    for name, (path_template, make_mask) in CASES.items():
        path = Path(path_template.format(clips=args.clips))
        clip = read_clip(path, short_side=DEFAULT_SHORT_SIDE, max_frames=DEFAULT_MAX_FRAMES)
        original = (clip.original_frame_count, *clip.original_size)
        mask = make_mask(*original)
        mask_path = mask_dir / (f"{name}_mask.png" if len(mask) == 1 else f"{name}_mask")
        write_video(mask_path, mask, clip.fps if len(mask) > 1 else None, overwrite=True)
        hole = hole_from_mask(mask, original, clip.frames.shape[:3], lossy=False)
        started = time.perf_counter()
        out = inpaint(clip.frames, hole, options=InpaintOptions(device=args.device))[0]
        seconds = time.perf_counter() - started
        source, region = frames_to_tensor(clip.frames, torch.device("cpu")), torch.from_numpy(hole)
        flat = clip.frames.copy()
        flat[hole] = clip.frames[hole].mean(axis=0).astype(np.uint8)
        figures = [region_coherence(frames_to_tensor(video, torch.device("cpu")), source, region)
                   for video in (out, clip.frames, flat)]
        rows.append((name, "x".join(map(str, clip.frames.shape[2:0:-1])) + f"x{len(clip.frames)}", seconds,
                     hole.mean(), *figures, liveliness(out, clip.frames, hole),
                     liveliness(clip.frames, clip.frames, hole), str(mask_path)))
        sheet_rows += [tinted(clip.frames, hole), out]
        print(f"done {name}", file=sys.stderr, flush=True)
    if args.sheet is not None:
        write_video(args.sheet, contact_sheet(sheet_rows), None, overwrite=True)
    print(f"\n| clip | working size | seconds ({args.device}) | filled | coherence of the fill | "
          "input (object still there) | flat fill | detail (input) | motion (input) | mask |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, size, seconds, share, fill, given, flat, lively, input_lively, mask in rows:
        print(f"| {name} | {size} | {seconds:.1f} | {share:.1%} | {fill:.2e} | {given:.2e} | {flat:.2e} | "
              f"{lively[0]:.2f} ({input_lively[0]:.2f}) | {lively[1]:.2f} ({input_lively[1]:.2f}) | {mask} |")


if __name__ == "__main__":
    main()
