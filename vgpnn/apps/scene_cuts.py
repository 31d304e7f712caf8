"""Scene cuts between consecutive frames: where a new shot starts, nothing should be morphed.

A pair of frames is a cut when both of these say the second frame is not the first one moved:

1. **Colour histogram distance**: half the L1 distance between the two frames' joint RGB
   histograms (8 bins per channel), from 0 (same colours) to 1 (no colour in common). Motion
   barely changes it; a new shot usually does. Above ``HISTOGRAM_CUT`` a pair is a cut whatever
   the flow says (flow can always explain something).
2. **Motion-compensated difference**: the mean absolute gray difference between the first frame
   and the second warped back along the flow between them. Flow explains motion, however fast,
   but not a new scene. It must be above ``RESIDUAL_FLOOR`` and, in a clip of at least
   ``MIN_PAIRS_FOR_TYPICAL`` pairs, ``TYPICAL_RATIO`` times the clip's median pair (its typical
   change, which noise and texture set), with a histogram distance above ``HISTOGRAM_FLOOR``.

A fade or a cut between two shots of the same colours and texture can pass unseen; a flash
can be taken for one, which only holds frames rather than morphing them there.
"""

from __future__ import annotations

import torch

from ..flow import to_gray, warp

BINS = 8  # per channel
HISTOGRAM_CUT = 0.6  # above this a pair is a cut, whatever else
HISTOGRAM_FLOOR = 0.2  # below this never a cut
RESIDUAL_FLOOR = 0.05  # mean absolute gray difference (0..1) after motion compensation
TYPICAL_RATIO = 4.0  # ... and this many times the clip's median pair
MIN_PAIRS_FOR_TYPICAL = 3  # a clip with fewer pairs has no typical change to compare with


def histogram_distance(first: torch.Tensor, second: torch.Tensor) -> float:
    """Half the L1 distance between the joint RGB histograms of frames (3, H, W) in [0, 1]."""
    return float((_histogram(first) - _histogram(second)).abs().sum() / 2)


def _histogram(frame: torch.Tensor) -> torch.Tensor:
    bins = (frame.clamp(0, 1) * BINS).long().clamp_max(BINS - 1)  # (3, H, W)
    index = (bins[0] * BINS + bins[1]) * BINS + bins[2]
    counts = torch.bincount(index.reshape(-1), minlength=BINS ** 3).to(torch.float64)
    return counts / counts.sum()


def compensated_difference(first: torch.Tensor, second: torch.Tensor, flow: torch.Tensor) -> float:
    """Mean absolute gray difference between ``first`` (3, H, W) and ``second`` warped back along
    ``flow`` (2, H, W, first -> second), over the pixels whose warp stays inside the frame."""
    gray = to_gray(torch.stack([first, second], dim=1))  # (2, H, W)
    moved, inside = warp(gray[1][None, None], flow[None])
    difference = (moved[0, 0] - gray[0]).abs()
    return float(difference[inside[0]].mean()) if bool(inside.any()) else float(difference.mean())


def pair_change(first: torch.Tensor, second: torch.Tensor, flow: torch.Tensor) -> tuple[float, float]:
    """(histogram distance, motion-compensated difference) of frames (3, H, W) with ``flow``
    (2, H, W) from the first to the second."""
    return histogram_distance(first, second), compensated_difference(first, second, flow)


def find_cuts(changes: list[tuple[float, float]]) -> list[int]:
    """Indices i of the pairs (i, i + 1) of a clip that are scene cuts, given each consecutive
    pair's :func:`pair_change`."""
    residuals = [residual for _, residual in changes]
    typical = float(torch.tensor(residuals).median()) if len(changes) >= MIN_PAIRS_FOR_TYPICAL else 0.0
    cuts = []
    for i, (histogram, residual) in enumerate(changes):
        changed = residual > RESIDUAL_FLOOR and residual > TYPICAL_RATIO * typical and histogram > HISTOGRAM_FLOOR
        if histogram > HISTOGRAM_CUT or changed:
            cuts.append(i)
    return cuts
