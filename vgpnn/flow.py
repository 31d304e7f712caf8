"""Classical dense optical flow (no network weights).

Two estimators live here:

- :func:`dis_flow` / :func:`frame_flows`: OpenCV's DIS (Dense Inverse Search, Kroeger et al.
  2016) between any two frames. It is a well-kept, fast CPU implementation (a 360p pair in about
  0.1 s on one core), about 10x faster than our Horn-Schunck for about the same warp error on
  one-frame steps and less on larger ones (benchmarks/bench_flow.py measures both). Everything that moves
  pixels along the motion (propagate, interpolate) uses it; OpenCV is imported only then.
- :func:`optical_flow`: our coarse-to-fine Horn-Schunck on torch tensors, described below. It
  runs on any device and fills flat regions smoothly; the analogy's motion guide uses its speed.

:func:`warp` moves an image along a flow and :func:`occlusion` finds the pixels a flow cannot
explain (forward-backward check); both are plain tensor code.

Why Horn-Schunck for the motion guide: its smoothness term spreads motion into flat regions, so
a painted blob moving over a flat background gets motion inside it, not only along its edges
(Lucas-Kanade leaves flat interiors at zero), which is what ranking motion into bins needs.
Step by step:

1. Pair every frame with the next one (all pairs are solved at once, as a batch).
2. Build a pyramid of each pair, halving until the shorter side is about 16 pixels.
3. From coarse to fine: upscale the flow so far, warp the second frame back by it, and solve
   the linearised Horn-Schunck equations for the remaining motion (Jacobi iterations in which
   each pixel moves toward its neighbours' average flow, corrected by the brightness error);
   a 3x3 median then removes isolated wild vectors. Twice per level.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .flow_presets import DIS_PRESETS  # noqa: F401  (here too: the flow's own name for them)

LUMA = (0.299, 0.587, 0.114)  # BT.601 luminance weights of R, G, B: the one gray level of the package
# Horn-Schunck's smoothness weight, squared, for intensities in [0, 1]: about the squared
# gradient of a faint edge, so weak texture follows its neighbours and strong edges speak for themselves.
SMOOTHNESS = 1e-3
# Each Jacobi step keeps this share of the neighbours' average flow (a weak pull toward zero
# motion): where there is no brightness evidence at all, in the flat inside of a painted region,
# motion fades with distance from where it was seen instead of flooding the whole frame. It costs
# about 2% of the speed on textured motion (measured), which the ranked bins do not mind.
_KEEP = 0.98
# Neighbour weights of the Horn-Schunck average (the classic 1/6 sides, 1/12 corners).
_AVERAGE = torch.tensor([[1, 2, 1], [2, 0, 2], [1, 2, 1]], dtype=torch.float32) / 12


def to_gray(video: torch.Tensor) -> torch.Tensor:
    """(3, T, H, W) -> (T, H, W) luminance."""
    if video.dim() != 4 or video.shape[0] != 3:
        raise ValueError(f"expected a video (3, T, H, W), got {tuple(video.shape)}")
    weights = torch.tensor(LUMA, dtype=video.dtype, device=video.device)
    return torch.einsum("cthw,c->thw", video, weights)


def optical_flow(gray: torch.Tensor, iterations: int = 40, warps: int = 2, smallest: int = 16) -> torch.Tensor:
    """Flow from each frame to the next of ``gray`` (T, H, W), T >= 2: (T - 1, 2, H, W), in
    pixels per frame, channel 0 along x (columns), channel 1 along y (rows)."""
    if gray.dim() != 3 or gray.shape[0] < 2:
        raise ValueError(f"expected grayscale frames (T, H, W) with T >= 2, got {tuple(gray.shape)}")
    first, second = gray[:-1, None], gray[1:, None]  # (T-1, 1, H, W) each
    height, width = gray.shape[1:]
    levels = 1
    while min(height, width) >> levels >= smallest and levels < 6:
        levels += 1
    flow = None
    for level in range(levels - 1, -1, -1):
        size = (max(1, height >> level), max(1, width >> level))
        a, b = _blur(_shrink(first, size)), _blur(_shrink(second, size))
        if flow is None:
            flow = a.new_zeros(a.shape[0], 2, *size)
        else:
            ratio = torch.tensor([size[1] / flow.shape[3], size[0] / flow.shape[2]], device=a.device)
            flow = F.interpolate(flow, size=size, mode="bilinear", align_corners=False) * ratio[None, :, None, None]
        for _ in range(warps):
            warped, inside = _warp(b, flow)
            flow = _median3(flow + _horn_schunck_step(a, warped, inside, flow, iterations))
    return flow


DIS_SMALLEST = 12  # pixels: OpenCV's DIS needs frames at least this wide and this high
DIS_THIN_SAFE = 32  # pixels: a short side from which no frame crashed DIS (dis_safe_shape)


def dis_safe_shape(height: int, width: int) -> tuple[int, int]:
    """The smallest (height, width) at least the frame's that OpenCV's DIS takes safely.

    DIS refuses a side under 12 pixels (3x40 and 12x5 both fail), and OpenCV 5.1 crashes the
    process on some thin frames that pass that check: 12x40, 12x48, 16x100, 28x100 (height x
    width, every preset), as its pyramid runs out of rows before the long side has run out of
    levels. Every square of 12 to 32 pixels ran, and every frame tried with a short side of 32
    or more (32, 33, 40, 48, 64 and 100 by long sides up to 3000, both orientations, every
    preset). So the short side is padded to 32, or to the long side where that is shorter:
    never more than 31 pixels are added. tests/test_flow.py runs the thin frames that crashed."""
    height, width = max(height, DIS_SMALLEST), max(width, DIS_SMALLEST)
    short = max(min(height, width), min(max(height, width), DIS_THIN_SAFE))
    return (short, width) if height <= width else (height, short)


def dis_flow(first: torch.Tensor, second: torch.Tensor, preset: str = "fine", scale: float = 1.0) -> torch.Tensor:
    """OpenCV DIS flow from grayscale frame ``first`` (H, W) in [0, 1] to ``second``: (2, H, W)
    in pixels, channel 0 along x, so that first[y, x] ~ second[y + f[1], x + f[0]].

    ``scale`` > 1 solves it on the frames enlarged that many times (bicubic) and brings the flow
    back to the frames' size: DIS matches patches of 8 pixels on a grid of 4, which on a small
    frame are coarse against the things that move (see vgpnn.apps.tween.flows_between)."""
    if first.dim() != 2 or first.shape != second.shape:
        raise ValueError(f"expected two grayscale frames (H, W) of one size, got {tuple(first.shape)} "
                         f"and {tuple(second.shape)}")
    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; expected one of {', '.join(DIS_PRESETS)}")
    if scale < 1:
        raise ValueError(f"a flow is solved at the frames' size or enlarged, got scale {scale}")
    if scale > 1:
        height, width = first.shape
        size = (round(height * scale), round(width * scale))
        first, second = (F.interpolate(frame[None, None], size=size, mode="bicubic", align_corners=False)[0, 0]
                         .clamp(0, 1) for frame in (first, second))
        flow = dis_flow(first, second, preset)
        ratio = torch.tensor([width / size[1], height / size[0]], device=flow.device)[:, None, None]
        return F.interpolate(flow[None], size=(height, width), mode="area")[0] * ratio
    import cv2  # only the flow users pay for OpenCV's import

    name, finest = DIS_PRESETS[preset]
    solver = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{name}"))
    if finest is not None:
        solver.setFinestScale(finest)
    height, width = first.shape
    safe_height, safe_width = dis_safe_shape(height, width)
    pad = ((0, safe_height - height), (0, safe_width - width))  # edge pixels, cropped off below
    flow = solver.calc(np.pad(_to_uint8(first), pad, "edge"), np.pad(_to_uint8(second), pad, "edge"), None)
    return torch.from_numpy(np.ascontiguousarray(flow[:height, :width])).permute(2, 0, 1).to(first.device, torch.float32)


def frame_flows(gray: torch.Tensor, pairs: Sequence[tuple[int, int]], preset: str = "fine") -> torch.Tensor:
    """DIS flow for each (from, to) frame pair of ``gray`` (T, H, W): (len(pairs), 2, H, W)."""
    if gray.dim() != 3:
        raise ValueError(f"expected grayscale frames (T, H, W), got {tuple(gray.shape)}")
    flows = [dis_flow(gray[a], gray[b], preset) for a, b in pairs]
    if not flows:
        return gray.new_zeros(0, 2, *gray.shape[1:])
    return torch.stack(flows)


def warp(images: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """Backward warping: output pixel p takes ``images`` (N, C, H, W) at p + flow(p), with ``flow``
    (N, 2, H, W); also (N, H, W) bool, True where that point lies inside the frame. ``mode``:
    "bilinear", or "bicubic" (sharper between pixels; may overshoot the input's range)."""
    if images.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2 or images.shape[0] != flow.shape[0] \
            or images.shape[2:] != flow.shape[2:]:
        raise ValueError(f"expected images (N, C, H, W) and flow (N, 2, H, W), got {tuple(images.shape)} "
                         f"and {tuple(flow.shape)}")
    warped, inside = _warp(images, flow.to(images.dtype), mode)
    return warped, inside[:, 0]


def occlusion(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool: True where the flows (N, 2, H, W) from A to B and from B to A disagree, so
    the pixel of A is hidden in B or the flow is wrong there, or where it leaves the frame.

    The forward-backward test of Sundaram et al. (2010): following ``forward`` and then
    ``backward`` should come back to the start, within a tolerance that grows with the motion."""
    returned, inside = warp(backward, forward)
    loop = (forward + returned).square().sum(1)
    scale = forward.square().sum(1) + returned.square().sum(1)
    return (loop > 0.01 * scale + 0.5) | ~inside


def flow_magnitude(video: torch.Tensor) -> torch.Tensor:
    """Per-frame motion speed (T, H, W) of ``video`` (3, T, H, W): each frame gets the mean of
    its incoming and outgoing flow lengths (the ends get the one they have). A still image: zeros."""
    gray = to_gray(video)
    if gray.shape[0] < 2:
        return torch.zeros_like(gray)
    speed = optical_flow(gray).norm(dim=1)  # (T-1, H, W)
    padded = torch.cat([speed[:1], speed, speed[-1:]])  # frame t sees pairs t-1 and t
    return (padded[:-1] + padded[1:]) / 2


def _to_uint8(gray: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray((gray.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy())


def _shrink(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="area")


def _median3(flow: torch.Tensor) -> torch.Tensor:
    """3x3 median of each flow channel: removes the isolated wild vectors that warping can
    leave at occlusions and borders, which would otherwise become a motion bin of their own."""
    n, c, height, width = flow.shape
    windows = F.unfold(F.pad(flow, (1, 1, 1, 1), mode="replicate"), 3)  # (N, C * 9, H * W)
    return windows.reshape(n, c, 9, height, width).median(dim=2).values


def _blur(images: torch.Tensor) -> torch.Tensor:
    """A 3x3 binomial blur: the linearised brightness constancy holds only over smooth images."""
    kernel = torch.tensor([1.0, 2.0, 1.0], dtype=images.dtype, device=images.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16)[None, None]
    return F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel)


def _warp(images: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``images`` (N, C, H, W) at each pixel plus its flow: the second frame moved back
    onto the first; and (N, 1, H, W) bool, where that sample lies inside the frame."""
    n, _, height, width = images.shape
    ys, xs = torch.meshgrid(torch.arange(height, device=images.device, dtype=images.dtype),
                            torch.arange(width, device=images.device, dtype=images.dtype), indexing="ij")
    x = (xs + flow[:, 0]) * (2 / max(1, width - 1)) - 1
    y = (ys + flow[:, 1]) * (2 / max(1, height - 1)) - 1
    grid = torch.stack([x, y], dim=-1)  # (N, H, W, 2) in [-1, 1]
    inside = (grid.abs() <= 1).all(-1)[:, None]
    return F.grid_sample(images, grid, mode=mode, padding_mode="border", align_corners=True), inside


def _horn_schunck_step(first: torch.Tensor, warped: torch.Tensor, inside: torch.Tensor, flow: torch.Tensor,
                       iterations: int) -> torch.Tensor:
    """The flow increment (N, 2, H, W) that explains ``warped`` - ``first`` on top of ``flow``.
    Where the warp left the frame (``inside`` False) there is no brightness evidence, only smoothness:
    the border's replicated pixels would otherwise pull the flow ever further out."""
    mean = (first + warped) / 2
    padded = F.pad(mean, (1, 1, 1, 1), mode="replicate")
    grad_x = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2  # (N, 1, H, W)
    grad_y = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    evidence = inside.to(first.dtype)
    grad_x, grad_y = grad_x * evidence, grad_y * evidence
    grad_t = (warped - first) * evidence
    denominator = SMOOTHNESS + grad_x.square() + grad_y.square()
    kernel = _AVERAGE.to(first)[None, None].repeat(2, 1, 1, 1)  # one 3x3 average per flow channel
    increment = torch.zeros_like(flow)
    for _ in range(iterations):
        # Smoothness acts on the whole flow, so the increment pulls toward the neighbours' total.
        total = F.pad(flow + increment, (1, 1, 1, 1), mode="replicate")
        average = F.conv2d(total, kernel, groups=2) * _KEEP - flow
        error = (grad_x * average[:, :1] + grad_y * average[:, 1:] + grad_t) / denominator
        increment = average - torch.cat([grad_x, grad_y], dim=1) * error
    return increment
