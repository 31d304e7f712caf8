"""Level shapes of the space-time pyramid, and the pyramids of the source and the target.

Level 0 is the finest (full working size); the last level is the coarsest. Each level is
resized directly from the full-size video, never from the level above, so errors of repeated
resampling do not pile up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Shape3 = tuple[int, int, int]  # (frames, height, width)


@dataclass(frozen=True)
class PyramidGeometry:
    """Per-level scale factors in time and space, shared by the source and the target."""

    time_scales: tuple[float, ...]  # level k's frames / level 0's frames (before rounding)
    space_scales: tuple[float, ...]  # level k's height / level 0's height (width alike)

    @property
    def levels(self) -> int:
        return len(self.time_scales)

    def level_shape(self, full_shape: Shape3, level: int, minimum: Shape3 = (1, 1, 1)) -> Shape3:
        """Shape of ``level`` for a video whose level 0 is ``full_shape``, never below ``minimum``."""
        frames, height, width = full_shape
        t, s = self.time_scales[level], self.space_scales[level]
        return (max(minimum[0], round(frames * t)),
                max(minimum[1], round(height * s)),
                max(minimum[2], round(width * s)))


def pyramid_geometry(source_shape: Shape3, factor: float, coarsest_frames: int,
                     coarsest_short_side: int) -> PyramidGeometry:
    """Scales that shrink by ``factor`` per level until the clip is ``coarsest_frames`` long and
    its shorter side is ``coarsest_short_side``; each axis stops at its own minimum."""
    frames, height, width = source_shape
    short_side = min(height, width)
    time_floor = min(1.0, coarsest_frames / frames)
    space_floor = min(1.0, coarsest_short_side / short_side)

    def steps_to(floor: float) -> int:
        return 0 if floor >= 1.0 else math.ceil(math.log(floor) / math.log(factor) - 1e-9)

    count = max(steps_to(time_floor), steps_to(space_floor)) + 1
    time_scales, space_scales, shapes = [], [], []
    for k in range(count):
        t, s = max(factor**k, time_floor), max(factor**k, space_floor)
        shape = (round(frames * t), round(height * s), round(width * s))
        if shapes and shape == shapes[-1]:
            continue  # rounding made this level a copy of the last one: it would add nothing
        time_scales.append(t)
        space_scales.append(s)
        shapes.append(shape)
    return PyramidGeometry(tuple(time_scales), tuple(space_scales))


def build_pyramid(video: torch.Tensor, geometry: PyramidGeometry,
                  minimum: Shape3 = (1, 1, 1)) -> list[torch.Tensor]:
    """All levels of ``video`` (..., C, T, H, W), finest first, each resized from ``video``."""
    from .resize import resize_video  # torch; the level shapes above are plain arithmetic

    full_shape = tuple(video.shape[-3:])
    return [resize_video(video, geometry.level_shape(full_shape, level, minimum))
            for level in range(geometry.levels)]
