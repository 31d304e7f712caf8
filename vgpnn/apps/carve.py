"""The coarsest layout of a retarget whose frame shrinks: whole rows and columns of the source
are removed, never squeezed, so every object keeps its proportions from the first level on,
and the subject (what moves or stands out) is kept whole where it fits.

Why not the resized source, as for variations: squeezed to a third of its width, an object is
a third as wide at the coarsest level, and coherence alone never widens it again (a narrow
glass is made of patches as plausible as a wide one's); what is squeezed stays squeezed, or
is pushed out of the frame by the background, which matches better.

How (a greedy form of Simakov et al.'s bidirectional similarity, "Summarizing visual data
using bidirectional similarity", CVPR 2008), on the source at the coarsest size:
1. Weigh every source patch by how much it moves (mean frame-to-frame change under it): in a
   video, what moves is what the viewer watches. A still clip weighs every patch alike.
2. Find the subject's band on each shrinking axis (saliency.py: the lines holding most of what
   moves or stands out over the whole clip, or, where that is larger than the target, the
   target-sized run holding the most of it). Those lines are never removed: the cost below
   alone let lines through the subject go (bunny_audio at 9:16 lost half the rabbit to the
   frame's edge in its first frames, where it is widest), and a subject cut or squeezed is
   what a viewer notices first.
3. Repeatedly drop the one row or column outside the bands (from the axis furthest from its
   target size) whose removal leaves the lowest cost:
     coherence    mean distance from each remaining patch to its nearest source patch
                  (a cut through mismatched content makes seams that look like nothing in the source),
     completeness weighted mean distance from each source patch to its nearest remaining patch
                  (what moves must stay represented).
4. The rows and columns left are the layout; the pyramid's finer levels carry it up
   (see ``carry_field`` in patches.py) and re-compose any seam it has.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..patches import PatchSize, unfold
from ..resize import resize_video
from .saliency import STILL_MOTION, line_profile, subject_band, subject_mass

MAX_CARVED = 24  # lines an axis loses one by one at most; beyond, a window is cut out first


def motion_weights(source: torch.Tensor, level_shape: tuple[int, int, int], patch_size: PatchSize) -> torch.Tensor:
    """For each patch of a level of shape (T, H, W), the mean frame-to-frame change of ``source``
    (C, T0, H0, W0) under its footprint, scaled to mean 1; flat, in the level's patch-grid order."""
    pt, ph, pw = patch_size
    change = torch.zeros(source.shape[2:], device=source.device)  # (H0, W0)
    for frame in range(1, source.shape[1]):  # frame by frame: a whole difference video can be large
        change += (source[:, frame] - source[:, frame - 1]).abs().mean(0)
    change /= max(1, source.shape[1] - 1)
    at_level = resize_video(change[None, None], (1, *level_shape[1:]))[0, 0].clamp_min(0)  # (H, W)
    per_patch = F.avg_pool2d(at_level[None, None], (ph, pw), stride=1)[0, 0]  # (H', W')
    if float(per_patch.mean()) < STILL_MOTION:
        per_patch = torch.ones_like(per_patch)
    per_patch = per_patch / per_patch.mean()
    return per_patch[None].expand(level_shape[0] - pt + 1, -1, -1).reshape(-1)


def layout_cost(kept: torch.Tensor, source_rows: torch.Tensor, source_norms: torch.Tensor,
                weights: torch.Tensor, patch_size: PatchSize) -> float:
    """Coherence plus weighted completeness of ``kept`` (C, T, h, w) against the source's patch
    rows (N, D); both as mean squared differences per patch element."""
    rows = unfold(kept, patch_size)  # (n, D)
    distances = (rows.square().sum(1, keepdim=True) - 2 * rows @ source_rows.T + source_norms[None]).clamp_min(0)
    distances = distances / rows.shape[1]  # (n, N)
    return float(distances.amin(1).mean() + (distances.amin(0) * weights).mean())


def carve_layout(level: torch.Tensor, size: tuple[int, int], patch_size: PatchSize,
                 weights: torch.Tensor, keep: tuple[range, range] = (range(0), range(0))) -> tuple[list[int], list[int]]:
    """The rows and columns of ``level`` (C, T, H, W) to keep so it becomes ``size`` = (height,
    width), each no larger than the level's; ``weights`` as from :func:`motion_weights`; ``keep``:
    the (rows, columns) never to remove, no more on each axis than its target size."""
    height, width = size
    if not (patch_size[1] <= height <= level.shape[2] and patch_size[2] <= width <= level.shape[3]):
        raise ValueError(f"cannot carve {tuple(level.shape[2:])} down to {size} with patch {patch_size}")
    if len(keep[0]) > height or len(keep[1]) > width:
        raise ValueError(f"cannot keep {len(keep[0])} rows and {len(keep[1])} columns in {size}")
    source_rows = unfold(level, patch_size)  # (N, D)
    source_norms = source_rows.square().sum(1)
    rows, columns = list(range(level.shape[2])), list(range(level.shape[3]))

    def cost(kept_rows: list[int], kept_columns: list[int]) -> float:
        kept = level[:, :, kept_rows][:, :, :, kept_columns]
        return layout_cost(kept, source_rows, source_norms, weights, patch_size)

    while len(rows) > height or len(columns) > width:
        # The axis with the larger share still to go loses a line, so both reach their sizes together.
        by_rows = (len(rows) - height) / len(rows) >= (len(columns) - width) / len(columns)
        lines, kept = (rows, keep[0]) if by_rows else (columns, keep[1])
        removable = [i for i, line in enumerate(lines) if line not in kept]
        costs = [cost(rows[:i] + rows[i + 1:], columns) if by_rows else cost(rows, columns[:i] + columns[i + 1:])
                 for i in removable]
        lines.pop(removable[min(range(len(costs)), key=costs.__getitem__)])
    return rows, columns


def subject_lines(mass: torch.Tensor, level_size: tuple[int, int], size: tuple[int, int]) -> tuple[range, range]:
    """The (rows, columns) of a level of ``level_size`` = (height, width) that hold the subject
    whose ``mass`` (T, H, W) saliency.py gives (step 2 of the module notes), for a target of
    ``size``; none on an axis that keeps its size."""
    return tuple(subject_band(line_profile(mass, axis, lines), target) if target < lines else range(0)
                 for axis, lines, target in zip((1, 2), level_size, size))


def carving_window(mass: torch.Tensor, level_size: tuple[int, int], size: tuple[int, int]) -> tuple[range, range]:
    """The (rows, columns) of a level of ``level_size`` that the greedy search of step 3 works
    in: all of an axis that loses at most MAX_CARVED lines; otherwise the run of ``size`` +
    MAX_CARVED lines holding the most of the subject (centred on it where it is narrower,
    centred in the frame where nothing stands out). The search's cost grows with the square
    of the lines it removes and again with the lines it compares: a 20x300 clip retargeted to
    16:9 lost 198 of its 225 coarsest columns one by one and ran for minutes; what lies
    outside the window would be carved away anyway."""
    windows = []
    for axis, lines, target in zip((1, 2), level_size, size):
        width = target + MAX_CARVED
        if lines <= width:
            windows.append(range(lines))
            continue
        band = subject_band(line_profile(mass, axis, lines), width)
        centre = (band.start + band.stop) // 2 if len(band) else lines // 2
        start = min(max(centre - width // 2, 0), lines - width)
        windows.append(range(start, start + width))
    return tuple(windows)


def carve_to(coarsest_source: torch.Tensor, size: tuple[int, int], patch_size: PatchSize,
             source: torch.Tensor) -> torch.Tensor:
    """``coarsest_source`` (C, T, H, W) with rows and columns removed down to ``size`` = (height,
    width) as the module notes tell; ``source`` (C, T0, H0, W0) is the full clip whose motion
    weighs the patches and whose subject is kept. The layout is chosen on the level shrunk to
    one patch length in time (a length-changing retarget's coarsest level keeps every frame,
    too many to compare often), within :func:`carving_window`."""
    frames = min(coarsest_source.shape[1], patch_size[0])
    summary = resize_video(coarsest_source, (frames, *coarsest_source.shape[2:]))
    weights = motion_weights(source, tuple(summary.shape[1:]), patch_size)
    mass = subject_mass(source)
    window_rows, window_columns = carving_window(mass, summary.shape[2:], size)
    window = summary[:, :, window_rows.start:window_rows.stop, window_columns.start:window_columns.stop]
    if window.shape != summary.shape:  # the window's patches' weights, again with mean 1
        grid = (-1, summary.shape[2] - patch_size[1] + 1, summary.shape[3] - patch_size[2] + 1)
        weights = weights.reshape(grid)[:, window_rows.start:window_rows.stop - patch_size[1] + 1,
                                        window_columns.start:window_columns.stop - patch_size[2] + 1].reshape(-1)
        weights = weights / weights.mean() if float(weights.mean()) > 0 else torch.ones_like(weights)
    keep = tuple(range(max(band.start, span.start) - span.start, max(min(band.stop, span.stop) - span.start, 0))
                 for band, span in zip(subject_lines(mass, summary.shape[2:], size), (window_rows, window_columns)))
    rows, columns = carve_layout(window, size, patch_size, weights, keep)
    index = lambda lines, span: torch.tensor([span.start + line for line in lines], device=coarsest_source.device)
    return coarsest_source.index_select(2, index(rows, window_rows)).index_select(3, index(columns, window_columns))
