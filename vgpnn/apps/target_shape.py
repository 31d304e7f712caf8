"""The output shape a retarget asks for: sizes, aspect ratios and lengths as arithmetic.

Apart from :mod:`vgpnn.apps.retarget` (which re-exports it), so the command line and ``vgpnn
info`` can plan and estimate a retarget without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from ..errors import ConfigError

Shape3 = tuple[int, int, int]  # (frames, height, width)

KEEP_SIDES = ("auto", "width", "height")


@dataclass(frozen=True)
class TargetRequest:
    """How the output's size and length are asked for; unset fields keep the source's."""

    aspect: tuple[float, float] | None = None  # (width, height) ratio, e.g. (9, 16)
    keep: str = "auto"  # which side --aspect keeps; auto: the one that lets the other shrink
    width: int | None = None  # pixels; with height unset, the height is kept
    height: int | None = None
    width_scale: float | None = None  # factor on the source's width
    height_scale: float | None = None
    frames: int | None = None  # output length, as a frame count ...
    duration: float | None = None  # ... or in seconds ...
    time_scale: float | None = None  # ... or as a factor on the source's length
    even: bool = True  # round width and height to even numbers (H.264 needs them)

    def __post_init__(self) -> None:
        spatial = [self.aspect is not None, self.width is not None or self.height is not None,
                   self.width_scale is not None or self.height_scale is not None]
        if sum(spatial) > 1:
            raise ConfigError("give only one way to set the size: an aspect ratio, a width and/or "
                              "height, or width and/or height scales")
        if sum(x is not None for x in (self.frames, self.duration, self.time_scale)) > 1:
            raise ConfigError("give only one way to set the length: frames, duration or time scale")
        if self.aspect is not None and (len(self.aspect) != 2 or min(self.aspect) <= 0):
            raise ConfigError(f"aspect ratio must be two positive numbers W:H, got {self.aspect}")
        if self.keep not in KEEP_SIDES:
            raise ConfigError(f"keep must be one of {', '.join(KEEP_SIDES)}, got {self.keep!r}")
        for name in ("width", "height", "frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        for name in ("width_scale", "height_scale", "duration", "time_scale"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be positive, got {value}")

    def label(self) -> str:
        """A short name for the request, from the request alone: 9x16, 256x256, w300, t2, 15s..."""
        def number(value: float) -> str:
            return f"{value:g}"
        parts = []
        if self.aspect is not None:
            parts.append(f"{number(self.aspect[0])}x{number(self.aspect[1])}" + (f"-{self.keep}" if self.keep != "auto" else ""))
        if self.width is not None and self.height is not None:
            parts.append(f"{self.width}x{self.height}")
        elif self.width is not None or self.height is not None:
            parts.append(f"w{self.width}" if self.width is not None else f"h{self.height}")
        if self.width_scale is not None:
            parts.append(f"ws{number(self.width_scale)}")
        if self.height_scale is not None:
            parts.append(f"hs{number(self.height_scale)}")
        if self.frames is not None:
            parts.append(f"{self.frames}f")
        if self.duration is not None:
            parts.append(f"{number(self.duration)}s")
        if self.time_scale is not None:
            parts.append(f"t{number(self.time_scale)}")
        return "_".join(parts)

    @property
    def changes_length(self) -> bool:
        return any(x is not None for x in (self.frames, self.duration, self.time_scale))


def plan_target_shape(source_shape: Shape3, fps: Fraction | float | None,
                      request: TargetRequest) -> Shape3:
    """The output's (frames, height, width) for ``request`` on a source of ``source_shape``."""
    frames, height, width = source_shape

    def rounded(size: float) -> int:
        # Halves round up (Python's round() would send 81 to 80 but 83 to 84).
        return max(2, 2 * math.floor(size / 2 + 0.5)) if request.even else max(1, math.floor(size + 0.5))

    if request.aspect is not None:
        ratio = request.aspect[0] / request.aspect[1]
        keep = request.keep
        if keep == "auto":  # keep the side that lets the other one shrink: the output fits inside
            keep = "height" if height * ratio <= width else "width"
        # The other side follows the kept side after its rounding, so the ratio is off by at
        # most the other side's own rounding.
        if keep == "height":
            new_height = rounded(height)
            new_width = rounded(new_height * ratio)
        else:
            new_width = rounded(width)
            new_height = rounded(new_width / ratio)
    elif request.width is not None or request.height is not None:
        new_width, new_height = rounded(request.width or width), rounded(request.height or height)
    else:
        new_width = rounded(width * (request.width_scale or 1.0))
        new_height = rounded(height * (request.height_scale or 1.0))

    new_frames = frames
    if request.frames is not None:
        new_frames = request.frames
    elif request.duration is not None:
        if not fps:
            raise ConfigError("a duration in seconds needs a clip with a frame rate; use a frame count")
        new_frames = round(request.duration * float(fps))
    elif request.time_scale is not None:
        new_frames = round(frames * request.time_scale)

    if new_frames < 1:
        raise ConfigError(f"the requested length gives {new_frames} frames (source: {frames}); at least 1 is needed")
    return (new_frames, new_height, new_width)


# A retarget that changes only the length (no new frame size; a loop or not) is synthesised in
# windows of about this many voxels once it is longer, so its memory stays that of one window
# however long the output (a 10-minute 256x144 clip in one piece would need over 100 GiB).
# 8 M voxels is 217 frames at 256x144: the README's 15 s retarget still runs in one piece.
# One that changes the frame size too is made in two stages (``resized_first``).
WINDOW_VOXELS = 8_000_000


def window_frames(source_shape: Shape3, target_shape: Shape3) -> int | None:
    """Frames per window (the known context included) of a retarget from ``source_shape`` to
    ``target_shape``, or None when it is synthesised in one piece. A window holds at least twice
    the source's frames, so each one has room for runs of the source and the jumps between.
    A loop is cut the same way; its last window also leads into the first (retarget.py)."""
    if tuple(target_shape[1:]) != tuple(source_shape[1:]):
        return None
    frames = max(2 * source_shape[0], WINDOW_VOXELS // (target_shape[1] * target_shape[2]))
    return None if target_shape[0] <= frames else frames


def resized_first(source_shape: Shape3, target_shape: Shape3) -> Shape3 | None:
    """The intermediate shape of a long retarget that changes the frame size too: the source
    re-composed at the new frame size first, at its own length (one piece, no longer than the
    source), then that clip made longer window by window (:func:`window_frames`). None where the
    frame size stays or the output at the new size fits one piece. Memory stays that of the
    larger of the first stage and one window, and time grows linearly with the length."""
    if tuple(target_shape[1:]) == tuple(source_shape[1:]):
        return None
    middle = (source_shape[0], *target_shape[1:])
    return middle if window_frames(middle, target_shape) is not None else None
