"""Keyframe images and edit masks, brought to the working size of the clip they belong to.

A keyframe is painted on a frame as the clip displays it (its full size) or as the engine
sees it (the working size, after --working-size); either is accepted:
- at the working size it is used as it is;
- at the full size it is downscaled exactly as the clip's frames were (Pillow bicubic), or, when
  the working size differs only by the row or column a native read drops to make both sides
  even for H.264, cropped the same way;
- any other size is an error naming both accepted sizes.
A mask (white or non-zero: may be edited) follows the same rule; a working pixel is editable
when the mask covers any part of it, so an edit is never cut short of what was painted.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import InputError


def fit_keyframe(image: np.ndarray, displayed: tuple[int, int], working: tuple[int, int], name: str) -> np.ndarray:
    """``image`` (h, w, 3) uint8 at the working size (height, width); ``name`` says which key in errors."""
    return _fit(image, displayed, working, name, Image.Resampling.BICUBIC)


def fit_mask(mask_frames: np.ndarray, displayed: tuple[int, int], working_shape: tuple[int, int, int],
             original_frames: int, start_frame: int, name: str, lossy: bool = False) -> np.ndarray:
    """The (T, H, W) bool editable region at the working shape, from ``mask_frames`` (Tm, h, w, 3)
    uint8: one image (for every frame) or one frame per frame of the input (before trimming).
    ``lossy``: a compressed video mask, whose black is noisy: only pixels above half count."""
    count = len(mask_frames)
    frames = working_shape[0]
    if count not in (1, original_frames):
        raise InputError(f"{name} has {count} frames but the input has {original_frames}; expected one image "
                         "(used for every frame) or one mask frame per input frame")
    if count > 1:
        mask_frames = mask_frames[start_frame:start_frame + frames]
    on = (mask_frames.max(axis=-1) > (127 if lossy else 0)).astype(np.uint8) * 255  # (Tm, h, w)
    # A box-filtered resize: any coverage of a working pixel shows as a non-zero value.
    fitted = np.stack([_fit(np.repeat(plane[..., None], 3, -1), displayed, working_shape[1:], name,
                            Image.Resampling.BOX)[..., 0] > 0 for plane in on])
    if not fitted.any():
        raise InputError(f"{name} is empty: white (non-zero) pixels mark the region that may be edited")
    return np.ascontiguousarray(np.broadcast_to(fitted, working_shape))


def _fit(image: np.ndarray, displayed, working, name: str, resample) -> np.ndarray:
    size = tuple(image.shape[:2])
    displayed, working = tuple(displayed), tuple(working)
    if size == working:
        return image
    if size != displayed:
        accepted = f"{displayed[1]}x{displayed[0]} (the input's size)"
        if working != displayed:
            accepted += f" or {working[1]}x{working[0]} (the working size)"
        raise InputError(f"{name} is {size[1]}x{size[0]} pixels; expected {accepted}")
    if 0 <= size[0] - working[0] <= 1 and 0 <= size[1] - working[1] <= 1:
        return np.ascontiguousarray(image[:working[0], :working[1]])  # the even-size crop of a native read
    resized = Image.fromarray(np.ascontiguousarray(image)).resize((working[1], working[0]), resample,
                                                                   reducing_gap=3.0 if resample == Image.Resampling.BICUBIC else None)
    return np.asarray(resized)
