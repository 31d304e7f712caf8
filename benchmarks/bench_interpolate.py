"""Frame interpolation with a known answer: drop frames of real clips and ask for them back.

    python benchmarks/bench_interpolate.py                          # every shared clip, 144p, CPU, 2x and 4x
    python benchmarks/bench_interpolate.py --device cuda --size 360
    python benchmarks/bench_interpolate.py --clips hand_cup --factors 2 --repair
    python benchmarks/bench_interpolate.py --sheet docs/interpolate_contact_sheet.png

For factor N, every N-th frame of the clip is kept (the first (T - 1) // N * N + 1 frames, so the
last one is kept too) and the N - 1 frames between each kept pair are made again, by:

- **vgpnn**: ``vgpnn.interpolate`` (the default, or with the patch repair under --repair);
- **blend**: the two kept neighbours cross-faded by time, (1 - t) A + t B;
- **minterpolate**: FFmpeg's motion-compensated interpolation
  (``minterpolate=fps=...:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1``), run through PyAV's
  filter graph (``av.filter.Graph``) on the same kept frames (RGB in, RGB out; the filter works
  in YUV internally).

Each new frame is scored against the dropped original: PSNR over RGB (dB, per frame, then the
mean), and SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, on BT.601 luma, 0..255
constants) per frame, then the mean. Higher is better for both. s/frame: wall seconds per new
frame (vgpnn: flow, scene cuts, warping and repair; minterpolate: the whole filter run). The
kept frames of vgpnn's output are checked to be bit for bit the input's.

With --oracle, a ceiling is printed beside them: a reconstruction that is shown the answer. Each
8x8 block of the dropped frame is replaced by the best-matching 8x8 block (least squared error
against the dropped frame itself) among every shift of up to 6 pixels of the two kept
neighbours and of their cross-fade. A method that builds the new frame out of moved pieces of
its neighbours cannot do much better than that; where the oracle is itself close to the
cross-fade, the frame between is not a motion of its neighbours (fluttering leaves, churning
water at a low frame rate) and no interpolation can recover it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from vgpnn.apps.interpolate import InterpolateOptions, interpolate  # noqa: E402
from vgpnn.video import read_clip  # noqa: E402

CLIPS = ROOT.parent / "shared" / "clips"
BASE_RATE = 10  # the rate the kept frames are handed to minterpolate at (any rate: only the ratio matters)


def psnr(frame: np.ndarray, truth: np.ndarray) -> float:
    mse = float(np.mean((frame.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    line = torch.exp(-((torch.arange(size, dtype=torch.float64) - size // 2) ** 2) / (2 * sigma ** 2))
    line /= line.sum()
    return (line[:, None] * line[None, :])[None, None]  # (1, 1, size, size)


def ssim(frame: np.ndarray, truth: np.ndarray) -> float:
    """Mean SSIM of two (H, W, 3) uint8 frames on their luma."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    x = (torch.from_numpy(frame).double() @ weights)[None, None]  # (1, 1, H, W)
    y = (torch.from_numpy(truth).double() @ weights)[None, None]
    window = _gaussian_window()
    mean_x, mean_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x = F.conv2d(x * x, window) - mean_x ** 2
    var_y = F.conv2d(y * y, window) - mean_y ** 2
    cov = F.conv2d(x * y, window) - mean_x * mean_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    score = ((2 * mean_x * mean_y + c1) * (2 * cov + c2)) / ((mean_x ** 2 + mean_y ** 2 + c1) * (var_x + var_y + c2))
    return float(score.mean())


def minterpolate(kept: np.ndarray, factor: int) -> np.ndarray:
    """FFmpeg's minterpolate on ``kept`` (T, H, W, 3) uint8: ((T - 1) * factor + 1, H, W, 3)."""
    base = Fraction(1, BASE_RATE)
    graph = av.filter.Graph()
    height, width = kept.shape[1:3]
    source = graph.add_buffer(width=width, height=height, format="rgb24", time_base=base)
    motion = graph.add("minterpolate", f"fps={BASE_RATE * factor}:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1")
    sink = graph.add("buffersink")
    source.link_to(motion)
    motion.link_to(sink)
    graph.configure()
    made = []

    def drain():
        while True:
            try:
                made.append(graph.pull().to_ndarray(format="rgb24"))
            except (av.BlockingIOError, av.EOFError):
                return

    # The filter emits a frame only once it has the next input frame: the last one is pushed
    # twice so that the frames up to the last kept one all come out.
    for index, frame in enumerate([*kept, kept[-1]]):
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        video_frame.pts, video_frame.time_base = index, base
        graph.push(video_frame)
        drain()
    graph.push(None)
    drain()
    expected = (len(kept) - 1) * factor + 1
    if len(made) < expected:
        raise RuntimeError(f"minterpolate gave {len(made)} frames, expected {expected}")
    return np.stack(made[:expected])


def blend(kept: np.ndarray, factor: int) -> np.ndarray:
    frames = [kept[0]]
    for first, second in zip(kept[:-1], kept[1:]):
        for k in range(1, factor + 1):
            t = k / factor
            frames.append(np.round((1 - t) * first.astype(np.float64) + t * second.astype(np.float64)).astype(np.uint8))
    return np.stack(frames)


ORACLE_BLOCK, ORACLE_REACH = 8, 6


def oracle(kept: np.ndarray, truth: np.ndarray, factor: int, device: str) -> np.ndarray:
    """The --oracle ceiling (see the module docstring): the truth's frames rebuilt block by block
    from shifted pieces of their kept neighbours and of the cross-fade. Only the frames between
    kept ones are rebuilt; the borders beyond a whole number of blocks keep the cross-fade."""
    faded = blend(kept, factor)
    made = faded.copy()
    size, reach = ORACLE_BLOCK, ORACLE_REACH
    height, width = truth.shape[1:3]
    rows, cols = height // size, width // size
    for index in range(len(truth)):
        if index % factor == 0:
            continue
        start = index - index % factor
        target = torch.from_numpy(truth[index, :rows * size, :cols * size]).to(device, torch.float32)
        best_error = torch.full((rows, cols), float("inf"), device=device)
        best = torch.zeros_like(target)
        for source in (truth[start], truth[start + factor], faded[index]):
            padded = F.pad(torch.from_numpy(source).to(device, torch.float32).permute(2, 0, 1)[None],
                           (reach,) * 4, mode="replicate")[0].permute(1, 2, 0)
            for dy in range(2 * reach + 1):
                for dx in range(2 * reach + 1):
                    moved = padded[dy:dy + rows * size, dx:dx + cols * size]
                    error = ((moved - target) ** 2).reshape(rows, size, cols, size, 3).mean(dim=(1, 3, 4))
                    better = error < best_error
                    best_error = torch.where(better, error, best_error)
                    mask = better.repeat_interleave(size, 0).repeat_interleave(size, 1)[..., None]
                    best = torch.where(mask, moved, best)
        made[index, :rows * size, :cols * size] = best.round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    return made


def score(made: np.ndarray, truth: np.ndarray, new: list[int]) -> tuple[float, float]:
    return (float(np.mean([psnr(made[i], truth[i]) for i in new])),
            float(np.mean([ssim(made[i], truth[i]) for i in new])))


def write_sheet(path: Path, size: int, device: str, factor: int = 4) -> None:
    """A contact sheet of one pair of airballoons.mp4 made again at ``factor``: columns are the
    kept frame, the new ones, the next kept frame; rows the original, vgpnn, minterpolate and the
    blend; cropped to a corner with several balloons so that the sheet stays small."""
    from vgpnn.preview import contact_sheet
    from vgpnn.video import write_video

    clip = read_clip(CLIPS / "airballoons.mp4", short_side=size, max_frames=None).frames
    count = (len(clip) - 1) // factor * factor + 1
    truth, kept = clip[:count], clip[:count:factor]
    middle = (len(kept) // 2) * factor  # the frames from one kept frame to the next, mid-clip
    window = slice(middle, middle + factor + 1)
    height, width = clip.shape[1:3]
    crop = (slice(0, height * 7 // 12), slice(width // 32, width // 32 + height * 7 // 9))  # 84x112 at 144p
    rows = [made[window][(slice(None), *crop)] for made in (
        truth, interpolate(kept, factor, options=InterpolateOptions(device=device)).frames,
        minterpolate(kept, factor), blend(kept, factor))]
    write_video(path, contact_sheet(rows, frames_per_row=factor + 1), None, overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=144, help="short side of the frames (the working size)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--factors", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--clips", nargs="+", default=None, help="clip names (default: every shared clip)")
    parser.add_argument("--max-frames", type=int, default=0, help="frames of each clip (0: all)")
    parser.add_argument("--repair", action="store_true", help="run vgpnn with the patch repair")
    parser.add_argument("--oracle", action="store_true",
                        help="also print the ceiling of a block-wise reconstruction shown the answer")
    parser.add_argument("--sheet", type=Path, default=None,
                        help="write only a contact sheet (PNG) of one pair of airballoons at 4x")
    args = parser.parse_args()
    if args.sheet is not None:
        write_sheet(args.sheet, args.size, args.device)
        return
    paths = sorted(CLIPS.glob("*.mp4"))
    if args.clips:
        paths = [CLIPS / f"{name}.mp4" for name in args.clips]
    options = InterpolateOptions(device=args.device, repair=args.repair)
    print(f"vgpnn{' + repair' if args.repair else ''} on {args.device}, short side {args.size} px; "
          f"torch threads {torch.get_num_threads()}", flush=True)
    print("| clip | frames | factor | vgpnn PSNR | vgpnn SSIM | blend PSNR | blend SSIM | minterpolate PSNR "
          "| minterpolate SSIM | vgpnn - minterpolate | vgpnn - blend | vgpnn s/frame | minterpolate s/frame |"
          + (" oracle PSNR | oracle - blend |" if args.oracle else ""))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if args.oracle else ""), flush=True)
    for path in paths:
        clip = read_clip(path, short_side=args.size, max_frames=args.max_frames or None)
        for factor in args.factors:
            count = (len(clip.frames) - 1) // factor * factor + 1
            truth = clip.frames[:count]
            kept = truth[::factor]
            new = [i for i in range(count) if i % factor]
            started = time.perf_counter()
            ours = interpolate(kept, factor, options=options).frames
            ours_seconds = (time.perf_counter() - started) / len(new)
            if not np.array_equal(ours[::factor], kept):
                raise AssertionError(f"{path.stem}: vgpnn changed a kept frame")
            started = time.perf_counter()
            theirs = minterpolate(kept, factor)
            theirs_seconds = (time.perf_counter() - started) / len(new)
            (ours_psnr, ours_ssim), (blend_psnr, blend_ssim), (mi_psnr, mi_ssim) = (
                score(made, truth, new) for made in (ours, blend(kept, factor), theirs))
            ceiling = ""
            if args.oracle:
                oracle_psnr = score(oracle(kept, truth, factor, args.device), truth, new)[0]
                ceiling = f" {oracle_psnr:.2f} | {oracle_psnr - blend_psnr:+.2f} |"
            print(f"| {path.stem} | {count} | {factor}x | {ours_psnr:.2f} | {ours_ssim:.4f} | {blend_psnr:.2f} | "
                  f"{blend_ssim:.4f} | {mi_psnr:.2f} | {mi_ssim:.4f} | {ours_psnr - mi_psnr:+.2f} | "
                  f"{ours_psnr - blend_psnr:+.2f} | {ours_seconds:.2f} | {theirs_seconds:.3f} |{ceiling}", flush=True)


if __name__ == "__main__":
    main()
