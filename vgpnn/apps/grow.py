"""The coarsest layout of a retarget whose frame grows along an axis: the subject once, at its
own size, and the room gained filled with more of the background beside it, never stretched.

Why not the resized source: stretched 3x (16:9 to 9:16 keeping the width), every object is
3x taller at the coarsest level and the search only re-textures it; the clip's subject came
out stretched and the output about 2.4x less coherent than a variation (airballoons).

How, for an axis that grows from n to m lines (rows or columns) of the coarsest level:
1. The subject's band on the axis (saliency.py: the narrowest run of lines holding most of
   what moves or stands out over the whole clip) is kept as it is, once.
2. The m - n new lines go to the two margins beside it, in proportion to their sizes (a
   margin thinner than ``MIN_MARGIN`` lines has too little to repeat and gets none).
3. Each margin grows outwards from the subject as a "line timeline" (timeline.py, after video
   textures): runs of the margin's own lines, starting next to the subject and jumping back
   where a line looks most like the one that followed, so the margin repeats its content
   (more sky above, more grass below) with its seams where they show least.
4. Where no margin is wide enough (the subject spans the whole axis: balloons everywhere),
   the whole axis grows the same way from its first line.
"""

from __future__ import annotations

import torch

from .saliency import line_profile, subject_band, subject_mass
from .timeline import plan_timeline

# A margin narrower than this many lines of the coarsest level is not repeated: a patch is 7
# lines, so a thinner margin's runs would be mostly seam.
MIN_MARGIN = 4


def _lines_as_frames(level: torch.Tensor, axis: int, lines: list[int]) -> torch.Tensor:
    """The given ``lines`` of ``axis`` (2: rows, 3: columns) of ``level`` (C, T, H, W) as the
    frames of a video (C, len(lines), ...), so timeline.py can plan runs of them."""
    picked = level.index_select(axis, torch.tensor(lines, device=level.device))
    return picked.movedim(axis, 1)


def grow_lines(level: torch.Tensor, axis: int, size: int, band: range) -> list[int]:
    """``size`` indices into the lines of ``axis`` (2: rows, 3: columns) of ``level`` (C, T, H, W),
    at least as many as it has: the layout of the module notes around the subject's ``band``."""
    count = level.shape[axis]
    if size < count:
        raise ValueError(f"cannot grow {count} lines to {size}")
    before, after = list(range(band.start)), list(range(band.stop, count))
    before = before if len(before) >= MIN_MARGIN else []
    after = after if len(after) >= MIN_MARGIN else []
    extra = size - count
    if not band or not (before or after):
        return plan_timeline(_lines_as_frames(level, axis, list(range(count))), size)
    more_before = round(extra * len(before) / (len(before) + len(after)))
    # Each margin is planned outwards from the subject: the one before it backwards.
    outwards = before[::-1]
    grown_before = [outwards[i] for i in plan_timeline(_lines_as_frames(level, axis, outwards),
                                                       len(before) + more_before)][::-1] if before else []
    grown_after = [after[i] for i in plan_timeline(_lines_as_frames(level, axis, after),
                                                   len(after) + extra - more_before)] if after else []
    middle = list(range(len(before) if before else 0, count - len(after)))
    return grown_before + middle + grown_after


def grow_to(level: torch.Tensor, size: tuple[int, int], source: torch.Tensor) -> torch.Tensor:
    """``level`` (C, T, H, W) grown to ``size`` = (height, width), each at least the level's, by
    repeating lines as the module notes tell; ``source`` (C, T0, H0, W0) is the full clip whose
    subject is kept once."""
    mass = None
    for axis, target in ((2, size[0]), (3, size[1])):
        lines = level.shape[axis]
        if target == lines:
            continue
        if mass is None:
            mass = subject_mass(source)
        band = subject_band(line_profile(mass, axis - 1, lines), lines)
        index = torch.tensor(grow_lines(level, axis, target, band), device=level.device)
        level = level.index_select(axis, index)
    return level
