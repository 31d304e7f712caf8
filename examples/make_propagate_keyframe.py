"""Make the "painted" keyframe of the README's propagation example, the way a person would in a
paint program, but by script (so it can be re-made and checked):

1. a logo on the wall: a red star with the word VGPNN beside it, upper left;
2. a colour-replace brush on the cup: its dark (black) pixels inside the cup's outline become
   deep blue, keeping their shading;
3. a yellow sticker stripe painted across the cup, only where the cup is (a person masking to
   the cup's edge).

    python examples/make_propagate_keyframe.py examples/hand_cup.mp4 examples/hand_cup_key0.png

Frame 0 of the clip is read at its own size (320x240) and the edited frame written as PNG.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vgpnn.video import read_clip  # noqa: E402

CUP_BOX = (150, 62, 210, 192)  # left, top, right, bottom of the cup in frame 0 (looked up by eye)


def star(centre, outer, inner, points=5):
    cx, cy = centre
    corners = []
    for k in range(points * 2):
        radius = outer if k % 2 == 0 else inner
        angle = -math.pi / 2 + k * math.pi / points
        corners.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return corners


def paint(frame: np.ndarray) -> np.ndarray:
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    # 1. the logo on the wall
    draw.polygon(star((40, 40), 22, 9), fill=(220, 30, 40), outline=(120, 10, 20))
    try:
        font = ImageFont.load_default(size=22)
    except TypeError:  # Pillow before 10.1 has one small bitmap font
        font = ImageFont.load_default()
    draw.text((68, 28), "VGPNN", fill=(20, 40, 140), font=font)
    pixels = np.asarray(image).astype(np.float32)
    # 2. the colour-replace brush: dark pixels inside the cup's box turn deep blue, shading kept
    left, top, right, bottom = CUP_BOX
    region = pixels[top:bottom, left:right]
    luminance = region @ np.array([0.299, 0.587, 0.114], np.float32)
    dark = luminance < 70
    tint = np.array([40, 90, 255], np.float32)
    region[dark] = (0.35 + luminance[dark, None] / 70) * tint * 0.6
    # 3. the sticker stripe, only on the cup
    stripe = np.zeros(dark.shape, bool)
    stripe[40:56] = True
    region[stripe & dark] = (250, 200, 30)
    pixels[top:bottom, left:right] = region
    return pixels.clip(0, 255).round().astype(np.uint8)


def main() -> None:
    clip_path, output = Path(sys.argv[1]), Path(sys.argv[2])
    frame = read_clip(clip_path, max_frames=1).frames[0]
    Image.fromarray(paint(frame)).save(output)
    print(output)


if __name__ == "__main__":
    main()
