"""Write a small label video for `vgpnn analogy`: flat colour regions, one of them moving.

    python examples/make_sketch.py sketch.mp4            # 256x144, 30 frames at 30 fps
    vgpnn analogy sketch.mp4 ../shared/clips/tree_foliage.mp4 -o filled.mp4

Three regions, told apart by brightness (the analogy pairs the darkest region of the sketch
with the darkest part of the appearance clip, and so on up) and by motion (the disk moves, so
it is filled with the appearance's moving content):
- a dark upper background, still;
- a mid-grey band along the bottom (a "ground"), still;
- a bright disk crossing the frame from left to right, bobbing up and down.
Any paint program works as well: draw the frames as PNGs named 1.png, 2.png, ... in a folder and
pass the folder as STRUCTURE.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vgpnn.video import write_video  # noqa: E402

DARK, MID, BRIGHT = (20, 20, 60), (120, 120, 120), (250, 240, 200)


def sketch_frames(frames: int = 30, height: int = 144, width: int = 256) -> np.ndarray:
    """(frames, height, width, 3) uint8 label video."""
    rows, columns = np.mgrid[:height, :width]
    radius = height // 6
    video = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        frame = video[t]
        frame[:] = DARK
        frame[rows >= height * 2 // 3] = MID
        progress = t / max(1, frames - 1)
        centre_x = radius + progress * (width - 2 * radius)
        centre_y = height * 0.4 + height * 0.1 * np.sin(progress * 2 * np.pi)
        frame[(rows - centre_y) ** 2 + (columns - centre_x) ** 2 <= radius**2] = BRIGHT
    return video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="video (.mp4, .gif) or image file to write")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", default="256x144", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.lower().split("x"))
    write_video(args.output, sketch_frames(args.frames, height, width), Fraction(args.fps), overwrite=True)
    print(args.output)


if __name__ == "__main__":
    main()
