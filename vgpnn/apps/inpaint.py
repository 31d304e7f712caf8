"""Inpainting: remove what a mask marks and fill it, in space and time, from the rest of the clip.

Key patches that touch the mask are never used, so nothing of the removed object comes back;
voxels outside the mask are reset to the input after every vote, so they stay exactly as they
were (at the working resolution) and the fill has to agree with them at the border. Finally
the fill is blended into its border pixel by pixel, keeping its own gradients (masks.blend_border).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..clip_tensor import frames_to_tensor, tensor_to_frames
from ..config import SynthesisConfig
from ..device import resolve_device
from ..errors import ConfigError, InputError
from ..masks import blend_border
from ..plan import Source, SynthesisPlan, Target
from ..resize import resize_video
from ..synthesis import ProgressCallback
from .variations import VariationCallback, make_variations, seeds_from

MAX_MASKED_FRACTION = 0.9  # beyond this there is too little left to fill from
_LOSSY_THRESHOLD = 127  # a lossy mask video's black is noisy, so only bright pixels count


def hole_from_mask(mask_frames: np.ndarray, clip_original_shape: tuple[int, int, int],
                   working_shape: tuple[int, int, int], start_frame: int = 0, lossy: bool = False) -> np.ndarray:
    """The (T, H, W) bool hole at the working size from a mask read at its own full size.

    ``mask_frames`` (Tm, Hm, Wm, C) uint8: one frame (used for every frame) or one per input
    frame; ``clip_original_shape`` is the input's (frames, height, width) before trimming and
    downscaling. Non-zero marks what to remove (bright, above half, for a lossy video mask).
    A working voxel is in the hole when the mask covers any of it: a margin of at most one
    working pixel around the mask, never less than the mask.
    """
    frames, height, width = clip_original_shape
    mask_count, mask_height, mask_width = mask_frames.shape[:3]
    if (mask_height, mask_width) != (height, width):
        raise InputError(f"mask is {mask_width}x{mask_height} but the input is {width}x{height}; "
                         "expected a mask of the input's size")
    if mask_count not in (1, frames):
        raise InputError(f"mask has {mask_count} frames but the input has {frames}; expected one image "
                         "(used for every frame) or one mask frame per input frame")
    on = mask_frames.max(axis=-1) > (_LOSSY_THRESHOLD if lossy else 0)
    if mask_count > 1:
        on = on[start_frame:start_frame + working_shape[0]]
    if not on.any():
        raise InputError("mask is empty: nothing to remove (white or non-zero pixels mark what to remove)")
    coverage = resize_video(torch.from_numpy(on).float()[None], (on.shape[0], *working_shape[1:]))[0]
    hole = (coverage > 0.01).numpy()
    if mask_count == 1:
        hole = np.repeat(hole, working_shape[0], axis=0)
    fraction = hole.mean()
    if fraction > MAX_MASKED_FRACTION:
        raise InputError(f"mask covers {fraction:.0%} of the clip; at most {MAX_MASKED_FRACTION:.0%} can be "
                         "removed, the rest is what the fill is made from")
    return hole


@dataclass(frozen=True)
class InpaintOptions:
    variations: int = 1  # how many fills (they differ only when config.noise_sigma > 0)
    seed: int = 0  # fill i uses seed + i
    device: str = "auto"
    batch_size: int = 1

    def __post_init__(self) -> None:
        if self.variations < 1 or self.batch_size < 1 or self.seed < 0:
            raise ConfigError("variations and batch size must be at least 1 and the seed 0 or more, got "
                              f"{self.variations}, {self.batch_size}, {self.seed}")


def inpaint(frames: np.ndarray, hole: np.ndarray, config: SynthesisConfig = SynthesisConfig(noise_sigma=0),
            options: InpaintOptions = InpaintOptions(), on_variation: VariationCallback | None = None,
            progress: ProgressCallback | None = None) -> list[np.ndarray]:
    """``frames`` (T, H, W, 3) uint8 with ``hole`` (T, H, W) bool filled from the rest of the clip.
    Outside the hole the result equals ``frames`` exactly."""
    if hole.shape != frames.shape[:3]:
        raise ConfigError(f"hole {hole.shape} must have the clip's (frames, height, width) {frames.shape[:3]}")
    if not hole.any():
        raise ConfigError("the hole is empty: nothing to fill")
    source = frames_to_tensor(frames, resolve_device(options.device))
    hole_tensor = torch.from_numpy(np.ascontiguousarray(hole, dtype=bool)).to(source.device)
    # Keys never copy the hole; every voxel outside it stays the input's.
    plan = SynthesisPlan((Source(source, usable=~hole_tensor),),
                         Target(tuple(frames.shape[:3]), fixed=source, fixed_mask=~hole_tensor),
                         seeds_from(options.seed, options.variations), config)
    filled = []

    def seamless(index: int, clip: np.ndarray, levels) -> None:
        # The fill is made of patches from elsewhere (keys near the hole touch it), so neither its
        # brightness nor its texture continues the pixels around it exactly: a seam, unless blended.
        clip = tensor_to_frames(blend_border(frames_to_tensor(clip, source.device), hole_tensor))
        filled.append(clip)
        if on_variation is not None:
            on_variation(index, clip, levels)

    make_variations(plan, options.batch_size, seamless, progress)
    return filled
