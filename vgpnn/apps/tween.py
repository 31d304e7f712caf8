"""Motion-compensated in-between frames: a frame at time t in (0, 1) between two frames.

Given frames I0 and I1 and the dense flows between them both ways (OpenCV DIS, ``vgpnn.flow``):

1. **Motion at time t, by forward splatting** (after Baker et al., "A Database and Evaluation
   Methodology for Optical Flow", IJCV 2011, section 3.2): each pixel of I0 travels t of the
   way along its flow towards I1, each pixel of I1 travels 1 - t of the way back along its flow
   towards I0, and each lands on the 2x2 pixels around the point it reaches, carrying its
   motion from I0 to I1 there. Where several land on one pixel, the one whose flow best explains
   the two frames wins: the smallest colour difference between its two ends, with pixels the
   forward-backward check calls occluded behind all others (what is about to be covered, or was
   just uncovered, loses against what covers it), then the one landing nearest. Pixels that
   nothing reaches take the motion around them (an outside-in fill).
   Splatting puts a motion boundary where the moving object *is* at time t; the cheaper
   approximation from the two flows at the same pixel (Jiang et al.'s Super SloMo) drags the
   boundary with the background's flow.
2. **Sampling**: the pixel x with motion u shows I0 at x - t u and I1 at x + (1 - t) u
   (bilinear backward warping).
3. **Visibility**: the point is seen in I0 when I0's own flow at x - t u agrees with u (that
   pixel of I0 does move to x), and in I1 when I1's flow at x + (1 - t) u agrees with -u; a
   sample outside the frame is not seen. The two samples are blended with weights (1 - t) and t,
   each times its side's agreement, so a point hidden in one frame comes from the other alone
   and a point seen in both cross-fades as time goes on.
4. **Two estimates, weighted by how well each explains the pair**: steps 2-3 run once with the
   splatted motion and once with the standard approximation from the two flows at the pixel
   itself (Jiang et al., "Super SloMo", CVPR 2018: offsets -(1-t)t F01 + t^2 F10 into I0 and
   (1-t)^2 F01 - t(1-t) F10 into I1). They fail in different places (splatting where the flow is
   noisy, the approximation at motion boundaries). Where an estimate's motion is right, its two
   samples show the same point and agree; so the squared difference of its two samples,
   averaged over a small neighbourhood, stands for its error variance, and the two frames are
   averaged with inverse-variance weights (plus a floor for the noise of compressed footage, so
   that two near-equal estimates are simply averaged). The samples are taken by bicubic
   interpolation: bilinear sampling blurs every pixel that moves by a fraction of a pixel; on
   the shared clips at 144p bicubic scored 0.3-1.5 dB higher where the motion is rigid (the
   bunny, the hand and cup) and up to 0.3 dB lower on churning water, which step 5 more than
   makes up.
5. **Shrinkage where the motion is unpredictable** (a local Wiener filter, after Lee, "Digital
   image enhancement and noise filtering by use of local statistics", PAMI 1980): where the
   two samples disagree (churning water, fluttering leaves, a flow that failed) the detail of the
   new frame is unknown, and the estimate that minimises the squared error keeps only the part
   of the local detail that stands above that uncertainty: each pixel becomes the local mean
   plus its difference from it times (detail variance - uncertainty) / detail variance, with the
   uncertainty taken as a quarter of the local mean squared difference of the two samples (the
   error variance of the average of two samples with independent errors). Where the samples
   agree the frame is unchanged. The difference counts also where only one side is said to see
   the point: the visibility check fails with the flow, and trusting it there scored lower.
   A pixel is reliable where, in both estimates, both frames see the point and agree on its
   colour, or exactly one frame sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..flow import dis_flow, occlusion, to_gray, warp
from ..masks import fill_free

# Frames with a shorter side under this many pixels also have their flow solved enlarged to it
# (flows_between), enlarged at most MAX_FLOW_SCALE times: three times 144p, the default working
# size, where the enlarged flow gained most on moving objects (airballoons at 4x: 0.8 dB over the
# flow at 144p; enlarged 2x, 0.2 dB). A tiny frame enlarged further is a blur DIS finds nothing in.
FLOW_SHORT_SIDE = 432
MAX_FLOW_SCALE = 3.0
# Landing priority: the colour error (mean absolute difference, 0..1) of the pixel's two ends,
# plus this for a pixel the forward-backward check calls occluded (larger than any colour error),
# plus this much per pixel of distance between where it lands and the pixel centre.
_OCCLUDED_PRIORITY = 2.0
_DISTANCE_PRIORITY = 0.01
# Two motions agree when their squared difference is within this many square pixels plus the
# share below of their squared lengths (the forward-backward tolerance of vgpnn.flow.occlusion).
_AGREE_PIXELS = 0.5
_AGREE_SHARE = 0.01
# A side that does not see the point still keeps this weight, so where neither side sees it
# (both checks fail: a wrong flow) the result is the plain time-weighted blend.
_UNSEEN_WEIGHT = 1e-3
# The colour difference (0..1, mean over channels) between the two samples above which a pixel
# both sides claim to see is called unreliable: the flow matched two different things.
_COLOUR_DISAGREEMENT = 0.1
# Step 4: an estimate's error variance is its samples' squared difference (mean over channels,
# colours in 0..1) averaged by a Gaussian of this many pixels, plus the floor below: about the
# squared error of 8-bit compressed footage (an 8/255 difference), below which a smaller
# difference says nothing about which motion is right.
_WEIGHT_SIGMA = 1.0
_VARIANCE_FLOOR = 1e-3
# Step 5: the local statistics of the Wiener shrinkage are Gaussian averages of this many pixels.
_SHRINK_SIGMA = 2.0


@dataclass
class PairFlows:
    """What a pair of frames needs for any number of in-between frames, computed once."""

    first: torch.Tensor  # (C, H, W) I0 in [0, 1]
    second: torch.Tensor  # (C, H, W) I1
    forward: torch.Tensor  # (2, H, W) flow I0 -> I1, pixels, channel 0 along x
    backward: torch.Tensor  # (2, H, W) flow I1 -> I0
    forward_priority: torch.Tensor  # (H, W) landing priority of I0's pixels (lower wins)
    backward_priority: torch.Tensor  # (H, W) ... and of I1's


def flows_between(first: torch.Tensor, second: torch.Tensor, preset: str = "fine") -> PairFlows:
    """The flows both ways between frames ``first`` and ``second`` (C, H, W) in [0, 1], bundled.

    DIS compares patches of 8 pixels on a grid of 4 whatever the frame's size, so on a small
    frame (144p) a patch covers a whole balloon or a leaf cluster, and a motion of several
    pixels between frames far apart (interpolating 4x) is found only roughly. Where the shorter
    side is under FLOW_SHORT_SIDE, the flows are also solved on the frames enlarged towards that
    size (at most MAX_FLOW_SCALE times), and the pair keeps whichever two flows explain more
    pixels: a pixel is explained when the flow carries it to a pixel of the other frame of
    about its colour (within _COLOUR_DISAGREEMENT) and the other flow brings it back (the
    forward-backward check). Agreement alone would not do: two flows that find nothing (zero
    on a blurred enlargement) agree everywhere. Not the enlarged flows always: on churning
    water they follow the churn itself, and their in-between frames scored 0.2-0.3 dB lower
    (water_glass at 144p). A blend of every flow's estimates (as step 4 weighs two) scored
    lower too: with more estimates, one matches two unrelated samples by chance more often."""
    gray = to_gray(torch.stack([first, second], dim=1))
    short = min(first.shape[1:])
    scales = (1.0,) if short >= FLOW_SHORT_SIDE else (1.0, min(MAX_FLOW_SCALE, FLOW_SHORT_SIDE / short))
    best = None
    for scale in scales:
        forward, backward = dis_flow(gray[0], gray[1], preset, scale), dis_flow(gray[1], gray[0], preset, scale)
        explained = _explained(gray[0], gray[1], forward, backward) + _explained(gray[1], gray[0], backward, forward)
        if best is None or explained > best[0]:
            best = (explained, forward, backward)
    return pair_flows(first, second, best[1], best[2])


def _explained(image: torch.Tensor, other: torch.Tensor, flow: torch.Tensor, flow_back: torch.Tensor) -> int:
    """How many pixels of ``image`` (H, W) ``flow`` carries to about their colour in ``other``
    while ``flow_back`` brings them back."""
    landed, _ = warp(other[None, None], flow[None])
    matched = (landed[0, 0] - image).abs() <= _COLOUR_DISAGREEMENT
    return int((matched & ~occlusion(flow[None], flow_back[None])[0]).sum())


def pair_flows(first: torch.Tensor, second: torch.Tensor, forward: torch.Tensor,
               backward: torch.Tensor) -> PairFlows:
    """Bundle frames (C, H, W) and flows (2, H, W) with each pixel's landing priority."""
    if first.dim() != 3 or first.shape != second.shape:
        raise ValueError(f"expected two frames (C, H, W) of one size, got {tuple(first.shape)} and {tuple(second.shape)}")
    if forward.shape != (2, *first.shape[1:]) or backward.shape != forward.shape:
        raise ValueError(f"expected flows (2, {first.shape[1]}, {first.shape[2]}), got {tuple(forward.shape)} "
                         f"and {tuple(backward.shape)}")
    return PairFlows(first, second, forward, backward, _priority(first, second, forward, backward),
                     _priority(second, first, backward, forward))


def _priority(image: torch.Tensor, other: torch.Tensor, flow: torch.Tensor, flow_back: torch.Tensor) -> torch.Tensor:
    """(H, W): how badly each pixel of ``image`` is explained by ``flow`` into ``other``."""
    landed, _ = warp(other[None], flow[None])
    error = (landed[0] - image).abs().mean(0)
    hidden = occlusion(flow[None], flow_back[None])[0]
    return error + _OCCLUDED_PRIORITY * hidden.to(error.dtype)


def motion_at(pair: PairFlows, t: float) -> torch.Tensor:
    """(2, H, W): the motion from I0 to I1 of the point seen at each pixel at time ``t``."""
    height, width = pair.forward.shape[1:]
    # I0's pixels go t of their flow; I1's go 1 - t of theirs, and their motion I0 -> I1 is -flow.
    first, second = (_landings(pair.forward, t, pair.forward_priority),
                     _landings(pair.backward, 1 - t, pair.backward_priority))
    where = torch.cat([first[0], second[0]])  # (N,) flat pixel index
    priority = torch.cat([first[1], second[1]])  # (N,); inf: landed outside the frame
    motion = torch.cat([pair.forward.reshape(2, -1).repeat(1, 4), -pair.backward.reshape(2, -1).repeat(1, 4)], 1)
    pixels = height * width
    best = torch.full((pixels,), float("inf"), dtype=priority.dtype, device=priority.device)
    best = best.scatter_reduce(0, where, priority, "amin")
    # Among equal priorities the last candidate wins: min and max are exact, so the result is the
    # same on every device and in every order of evaluation.
    candidates = torch.arange(where.numel(), device=where.device)
    winners = torch.where(priority == best[where], candidates, -1)
    chosen = torch.full((pixels,), -1, dtype=torch.long, device=where.device).scatter_reduce(0, where, winners, "amax")
    reached = torch.isfinite(best)
    result = motion[:, chosen.clamp_min(0)] * reached
    result = result.reshape(2, height, width)
    holes = ~reached.reshape(height, width)
    if bool(holes.any()) and bool(reached.any()):
        result = fill_free(result[:, None], holes[None])[:, 0]  # (2, 1, H, W) as a 1-frame video
    return result


def _landings(flow: torch.Tensor, step: float, priority: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each pixel of a frame lands after ``step`` of its ``flow`` (2, H, W): (4 H W,) flat
    indices of the 2x2 pixels around that point, corner by corner, and their priorities (inf for
    a corner outside the frame, whose index is then clamped to any pixel)."""
    height, width = flow.shape[1:]
    ys, xs = torch.meshgrid(torch.arange(height, device=flow.device, dtype=flow.dtype),
                            torch.arange(width, device=flow.device, dtype=flow.dtype), indexing="ij")
    x, y = xs + step * flow[0], ys + step * flow[1]
    left, top = torch.floor(x), torch.floor(y)
    corner_x = torch.stack([left, left + 1, left, left + 1])  # (4, H, W)
    corner_y = torch.stack([top, top, top + 1, top + 1])
    inside = (corner_x >= 0) & (corner_x < width) & (corner_y >= 0) & (corner_y < height)
    distance = (x - corner_x).abs() + (y - corner_y).abs()
    priorities = torch.where(inside, priority + _DISTANCE_PRIORITY * distance, float("inf"))
    where = (corner_y.clamp(0, height - 1) * width + corner_x.clamp(0, width - 1)).long()
    return where.reshape(-1), priorities.reshape(-1)


def tween(pair: PairFlows, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The frame (C, H, W) at time ``t`` in (0, 1) between the pair's frames, and (H, W) bool:
    True where it is reliable (see the module's notes, steps 4-5)."""
    if not 0 < t < 1:
        raise ValueError(f"an in-between frame needs 0 < t < 1, got {t}")
    splatted = motion_at(pair, t)[None]  # (1, 2, H, W)
    forward, backward = pair.forward[None], pair.backward[None]
    # (offset into I0, offset into I1) of each pixel, by each estimate of the motion at time t.
    estimates = [(-t * splatted, (1 - t) * splatted),
                 (-(1 - t) * t * forward + t * t * backward, (1 - t) ** 2 * forward - t * (1 - t) * backward)]
    frames, mismatches, reliable = zip(*(_sample(pair, t, *offsets) for offsets in estimates))
    variances = torch.stack([_gaussian_mean(mismatch.mean(0), _WEIGHT_SIGMA) for mismatch in mismatches])
    weights = 1 / (variances + _VARIANCE_FLOOR)
    weights = weights / weights.sum(0)  # (2, H, W)
    frame = sum(weight * estimate for weight, estimate in zip(weights, frames))
    # The average of two samples with independent errors has a quarter of their squared difference.
    uncertainty = _gaussian_mean(sum(weight * mismatch for weight, mismatch in zip(weights, mismatches)),
                                 _SHRINK_SIGMA) / 4
    return _shrink(frame, uncertainty).clamp(0, 1), torch.stack(reliable).all(0)


def _sample(pair: PairFlows, t: float, to_first: torch.Tensor, to_second: torch.Tensor):
    """The frame (C, H, W) whose pixels show I0 at their offset ``to_first`` (1, 2, H, W) and I1
    at ``to_second``, blended by visibility (step 3); the squared difference of the two samples
    (C, H, W); and the reliable pixels (H, W)."""
    motion = to_second - to_first  # (1, 2, H, W): the point's motion from I0 to I1
    from_first, inside_first = warp(pair.first[None], to_first, mode="bicubic")
    from_second, inside_second = warp(pair.second[None], to_second, mode="bicubic")
    flow_first, _ = warp(pair.forward[None], to_first)  # I0's own motion where the point was
    flow_second, _ = warp(pair.backward[None], to_second)
    seen_first = _agree(flow_first, motion) & inside_first
    seen_second = _agree(flow_second, -motion) & inside_second
    weight_first = (1 - t) * (seen_first.to(motion.dtype) + _UNSEEN_WEIGHT)  # (1, H, W)
    weight_second = t * (seen_second.to(motion.dtype) + _UNSEEN_WEIGHT)
    frame = (weight_first[:, None] * from_first + weight_second[:, None] * from_second) \
        / (weight_first + weight_second)[:, None]
    agree = (from_first - from_second).abs().mean(1) <= _COLOUR_DISAGREEMENT
    reliable = (seen_first & seen_second & agree) | (seen_first ^ seen_second)
    return frame[0], (from_first - from_second)[0].square(), reliable[0]


def _shrink(frame: torch.Tensor, uncertainty: torch.Tensor) -> torch.Tensor:
    """``frame`` (C, H, W) with its local detail scaled down by ``uncertainty`` (C, H, W), the
    variance of its error (step 5): a local Wiener filter."""
    mean = _gaussian_mean(frame, _SHRINK_SIGMA)
    detail = frame - mean
    variance = _gaussian_mean(detail.square(), _SHRINK_SIGMA)
    gain = (variance - uncertainty).clamp_min(0) / variance.clamp_min(1e-8)
    return mean + gain * detail


def _gaussian_mean(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each channel of ``images`` (..., H, W) averaged by a Gaussian of ``sigma`` pixels (edges
    replicated), as two 1-D passes."""
    radius = max(1, round(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-taps.square() / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    shape = images.shape
    planes = F.pad(images.reshape(-1, 1, *shape[-2:]), (radius,) * 4, mode="replicate")
    planes = F.conv2d(F.conv2d(planes, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
    return planes.reshape(shape)


def _agree(flow: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool: the flows (N, 2, H, W) agree within the forward-backward tolerance."""
    difference = (flow - motion).square().sum(1)
    scale = flow.square().sum(1) + motion.square().sum(1)
    return difference <= _AGREE_SHARE * scale + _AGREE_PIXELS
