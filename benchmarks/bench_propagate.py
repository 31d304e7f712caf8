"""Keyframe propagation against a known answer, and its speed.

    python benchmarks/bench_propagate.py                            # CPU, 240p, 30 frames, every shared clip
    python benchmarks/bench_propagate.py --device cuda --size 720 --frames 60

The "edit" is a deterministic local stylisation of a frame (--style 1: posterise to 4 levels,
rotate hues by 120 degrees, ink the edges black; --style 2: a cartoon, see :func:`cartoon`):
something no global colour mapping reproduces, because the ink depends on each pixel's
neighbourhood. Frame 0 stylised is the key (with --keys 2, the last frame
too); the truth is every frame stylised the same way. Each method's output is compared with the
truth on every frame that is not a key:

- psnr, ssim: mean over frames (SSIM on luminance, 7x7 Gaussian window);
- flicker: mean absolute change from frame to frame of the output over that of the truth (1.0 is
  the truth's own; above: the output shimmers more);
- s/frame: wall time of propagation per frame (flow included), best of --repeat runs; cpu s/frame:
  the CPU seconds of that run per frame (process time, all threads: not disturbed by other
  processes on a shared machine).

With two keys, each frame is also compared with the output from its nearer key alone: the table
after the main one counts the frames where two keys are worse (PSNR) and gives the worst and mean
difference.

Baselines: "repeat" shows the nearest key unchanged; "lut" a 3-D colour look-up table (16 bins per
channel) fitted on the key pair(s); "warp" the key carried along the chained optical flow alone
(no patch search, nearest key). Inputs are read with the working size given; a clip smaller than
--size is upscaled (bicubic) so every row has the asked resolution.
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
from vgpnn.apps.propagate import PropagateOptions, propagate  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.flow import dis_flow, optical_flow, to_gray, warp  # noqa: E402
from vgpnn.video import read_clip  # noqa: E402

CLIPS = ROOT.parent / "shared" / "clips"


def stylise(frames: np.ndarray, style: int = 1) -> np.ndarray:
    """(T, H, W, 3) uint8 -> the same, posterised, hue-rotated, with inked edges (style 1), or
    cartooned (style 2, :func:`cartoon`)."""
    if style == 2:
        return cartoon(frames)
    video = torch.from_numpy(frames).float() / 255
    posterised = (video * 3.999).floor() / 3
    rotated = posterised[..., [2, 0, 1]]  # a hue rotation by 120 degrees for these primaries
    gray = video @ torch.tensor([0.299, 0.587, 0.114])
    padded = F.pad(gray[:, None], (1, 1, 1, 1), mode="replicate")
    gx = padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]
    gy = padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]
    ink = ((gx.square() + gy.square()).sqrt()[:, 0] > 0.12).float()[..., None]
    return ((rotated * (1 - ink)) * 255).round().byte().numpy()


def cartoon(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 -> a cartoon: edge-preserving smoothing (OpenCV bilateral filter), each
    channel quantised to 6 levels, the palette pulled towards warm tones (a fixed channel mix),
    and dark-blue ink where the *smoothed* image has a gradient over 0.06 (thicker, and at other
    places than style 1's ink, which is taken from the raw frame at 0.12)."""
    import cv2

    smoothed = np.stack([cv2.bilateralFilter(frame, 7, 40, 5) for frame in frames]).astype(np.float32) / 255
    levels = np.floor(smoothed * 5.999) / 5
    mix = np.array([[0.8, 0.3, 0.0], [0.1, 0.7, 0.2], [0.0, 0.2, 0.6]], dtype=np.float32)  # rows: out R, G, B
    warm = np.clip(levels @ mix.T, 0, 1)
    gray = smoothed @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, :, 1:-1] = gray[:, :, 2:] - gray[:, :, :-2]
    gy[:, 1:-1] = gray[:, 2:] - gray[:, :-2]
    ink = (np.sqrt(gx**2 + gy**2) > 0.06)[..., None]
    colour = np.where(ink, np.array([0.1, 0.1, 0.35], dtype=np.float32), warm)
    return (colour * 255).round().astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luminance of two (T, H, W, 3) uint8 clips."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    x = (torch.from_numpy(a).double() @ weights)[:, None]
    y = (torch.from_numpy(b).double() @ weights)[:, None]
    g = torch.exp(-(torch.arange(7, dtype=torch.float64) - 3) ** 2 / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None]
    mean = lambda z: F.conv2d(z, window)  # noqa: E731
    mx, my = mean(x), mean(y)
    vx, vy, cov = mean(x * x) - mx**2, mean(y * y) - my**2, mean(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def flicker(output: np.ndarray, truth: np.ndarray) -> float:
    change = np.abs(np.diff(output.astype(np.int16), axis=0)).mean()
    return float(change / max(np.abs(np.diff(truth.astype(np.int16), axis=0)).mean(), 1e-6))


def lut(frames: np.ndarray, keys: dict[int, np.ndarray], bins: int = 16) -> np.ndarray:
    """A 3-D colour table from the key pairs: each bin of original colours -> the mean edited colour;
    empty bins take a filled neighbouring bin's, nearest first."""
    index = lambda image: (image.astype(np.int64) * bins // 256)  # noqa: E731
    total, count = np.zeros((bins**3, 3)), np.zeros(bins**3)
    for frame, edited in keys.items():
        cell = index(frames[frame]).reshape(-1, 3) @ np.array([bins * bins, bins, 1])
        np.add.at(total, cell, edited.reshape(-1, 3))
        np.add.at(count, cell, 1)
    table = (total / np.maximum(count, 1)[:, None]).reshape(bins, bins, bins, 3)
    filled = (count > 0).reshape(bins, bins, bins)
    while not filled.all():
        grown = filled.copy()
        for axis in range(3):
            for shift in (1, -1):
                source = [slice(None)] * 3
                target = [slice(None)] * 3
                source[axis] = slice(0, -1) if shift == 1 else slice(1, None)
                target[axis] = slice(1, None) if shift == 1 else slice(0, -1)
                source, target = tuple(source), tuple(target)
                take = ~grown[target] & filled[source]
                table[target][take] = table[source][take]
                grown[target] |= take
        filled = grown
    cells = index(frames).reshape(-1, 3)
    return table[cells[:, 0], cells[:, 1], cells[:, 2]].reshape(frames.shape).round().astype(np.uint8)


def nearest_key(t: int, keys: dict[int, np.ndarray]) -> int:
    return min(keys, key=lambda k: (abs(k - t), k))


def repeat(frames, keys):
    return np.stack([keys[nearest_key(t, keys)] for t in range(len(frames))])


def warp_only(frames, keys, device):
    """The nearest key carried along the chained DIS flow (bilinear), no synthesis."""
    video = frames_to_tensor(frames, device)
    gray = to_gray(video)
    height, width = frames.shape[1:3]
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32),
                            torch.arange(width, device=device, dtype=torch.float32), indexing="ij")
    identity = torch.stack([xs, ys])[None]
    out = np.empty_like(frames)
    for key, image in keys.items():
        image = frames_to_tensor(image[None], device)[:, 0][None]  # (1, 3, H, W)
        for step in (1, -1):
            positions, t = identity, key
            while 0 <= t < len(frames) and nearest_key(t, keys) == key:
                if t != key:
                    positions = warp(positions, dis_flow(gray[t], gray[t - step])[None])[0]
                moved, _ = warp(image, positions - identity)
                out[t] = (moved[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()
                t += step
    return out


def load(path: Path, size: int, frames: int) -> np.ndarray:
    clip = read_clip(path, short_side=size, max_frames=frames)
    video = clip.frames
    if min(video.shape[1:3]) < size:  # upscale so the row really is at the asked resolution
        from PIL import Image
        scale = size / min(video.shape[1:3])
        new = (2 * round(video.shape[2] * scale / 2), 2 * round(video.shape[1] * scale / 2))
        video = np.stack([np.asarray(Image.fromarray(f).resize(new, Image.Resampling.BICUBIC)) for f in video])
    return video


def run(frames, keys, device, options, repeat_count):
    """(output, best wall seconds, CPU seconds of that run) of propagation."""
    best = (None, float("inf"), float("inf"))
    for _ in range(repeat_count):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started, cpu = time.perf_counter(), time.process_time()
        output = propagate(frames, keys, options=PropagateOptions(device=str(device), **options))
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
        if wall < best[1]:
            best = (output, wall, time.process_time() - cpu)
    return best


def frame_psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mse = ((a.astype(np.float64) - b) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255**2 / np.maximum(mse, 1e-10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=240, help="short side of the frames (pixels)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keys", type=int, nargs="+", default=[1, 2], choices=[1, 2], help="runs with 1 and/or 2 keys")
    parser.add_argument("--style", type=int, choices=[1, 2], default=1,
                        help="the known edit: 1 posterise + hue rotation + ink; 2 cartoon (bilateral smoothing, "
                             "6 levels, warm palette, blue ink of the smoothed edges)")
    parser.add_argument("--clips", nargs="*", default=None, help="clip names (default: every shared .mp4)")
    parser.add_argument("--repeat", type=int, default=1, help="time propagation this many times, keep the best")
    parser.add_argument("--no-baselines", action="store_true", help="propagation only (for timing)")
    parser.add_argument("--flow", choices=["dis", "horn-schunck"], default="dis",
                        help="horn-schunck: propagation (not the warp baseline) with our Horn-Schunck flow "
                             "in place of OpenCV DIS, to compare the two for this use")
    parser.add_argument("--options", default="{}", help="PropagateOptions fields as a Python dict, e.g. \"{'vote': 'mean'}\"")
    args = parser.parse_args()
    if args.flow == "horn-schunck":
        import vgpnn.apps.propagate as module
        module.dis_flow = lambda first, second, preset: optical_flow(torch.stack([first, second]))[0]
    clips = [CLIPS / f"{name}.mp4" for name in args.clips] if args.clips else sorted(CLIPS.glob("*.mp4"))
    device = torch.device(args.device)
    options = eval(args.options)
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.size}p, up to {args.frames} frames, "
          f"style {args.style}, flow {args.flow}, options {args.options}")
    print("| clip | size | keys | method | psnr | ssim | flicker | s/frame | cpu s/frame |")
    print("|---|---|---|---|---|---|---|---|---|")
    checks = []
    for path in clips:
        frames = load(path, args.size, args.frames)
        truth = stylise(frames, args.style)
        size = f"{frames.shape[2]}x{frames.shape[1]}x{frames.shape[0]}"
        alone = {}  # key frame -> the output propagated from that key alone
        for count in args.keys:
            key_frames = [0] if count == 1 else [0, len(frames) - 1]
            keys = {k: truth[k] for k in key_frames}
            others = [t for t in range(len(frames)) if t not in keys]
            output, wall, cpu = run(frames, keys, device, options, args.repeat)
            if count == 1:
                alone[0] = output
            methods = {"propagate": output}
            if not args.no_baselines:
                methods |= {"repeat": repeat(frames, keys), "lut": lut(frames, keys),
                            "warp": warp_only(frames, keys, device)}
            for name, result in methods.items():
                seconds = (f"{wall / len(others):.3f} | {cpu / len(others):.3f}" if name == "propagate" else " | ")
                print(f"| {path.stem} | {size} | {count} | {name} | {psnr(result[others], truth[others]):.2f} | "
                      f"{ssim(result[others], truth[others]):.3f} | {flicker(result, truth):.2f} | {seconds} |",
                      flush=True)
            if count == 2:
                # Two keys against the nearer key alone, frame by frame.
                last = len(frames) - 1
                if 0 not in alone:
                    alone[0] = run(frames, {0: truth[0]}, device, options, 1)[0]
                alone[last] = run(frames, {last: truth[last]}, device, options, 1)[0]
                nearer = np.stack([alone[nearest_key(t, keys)][t] for t in others])
                gain = frame_psnr(output[others], truth[others]) - frame_psnr(nearer, truth[others])
                checks.append((path.stem, int((gain < 0).sum()), len(others), float(gain.min()), float(gain.mean())))
    if checks:
        print("\n| clip | frames worse with 2 keys than the nearer key alone | worst dB | mean dB |")
        print("|---|---|---|---|")
        for name, worse, total, worst, mean in checks:
            print(f"| {name} | {worse}/{total} | {worst:+.2f} | {mean:+.2f} |")


if __name__ == "__main__":
    main()
