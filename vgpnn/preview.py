"""Contact sheets: a few frames of the source in the first row and of each output below it."""

from __future__ import annotations

import numpy as np


def pick_frames(frames: np.ndarray, count: int) -> np.ndarray:
    """``count`` frames spread evenly over the clip (all of them if it is shorter)."""
    if len(frames) <= count:
        return frames
    return frames[np.linspace(0, len(frames) - 1, count).round().astype(int)]


def contact_sheet(rows: list[np.ndarray], frames_per_row: int = 6, gap: int = 4) -> np.ndarray:
    """One image (1, H, W, 3) uint8 with one row per clip (T, h, w, 3); clips of different
    sizes are placed top-left in cells as large as the largest clip."""
    if not rows:
        raise ValueError("a contact sheet needs at least one clip")
    rows = [pick_frames(clip, frames_per_row) for clip in rows]
    cell_h = max(clip.shape[1] for clip in rows)
    cell_w = max(clip.shape[2] for clip in rows)
    columns = max(len(clip) for clip in rows)
    sheet = np.full((len(rows) * (cell_h + gap) + gap, columns * (cell_w + gap) + gap, 3), 255, np.uint8)
    for r, clip in enumerate(rows):
        for c, frame in enumerate(clip):
            top, left = gap + r * (cell_h + gap), gap + c * (cell_w + gap)
            sheet[top:top + frame.shape[0], left:left + frame.shape[1]] = frame
    return sheet[None]
