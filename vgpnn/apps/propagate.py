"""Keyframe propagation: carry an edit painted on one or a few frames through the whole clip.

The method follows EbSynth (Jamriska et al., "Stylizing Video by Example", SIGGRAPH 2019): the
keyframe pair (original A, edited A') is the source, each frame B of the clip a target with
guides, and B' takes A' patches where (A, guides) best match (B, guides). Frame by frame:

1. Flow. OpenCV DIS flow (flow.py) from each frame to its neighbour on the way back to the
   keyframe a pass comes from.
2. Passes. From each keyframe k a pass walks away from k, frame by frame, in each direction
   that has frames to cover (up to the next keyframe, or the clip's end). Frame k itself is the
   edited keyframe, exactly as painted.
3. Guides of frame t: its colour, its edges (Sobel magnitude), the positional guide (A's pixel
   coordinates carried to t along the chained flow: where each pixel of t was on the keyframe)
   and the previous output of the pass warped to t (temporal coherence: what t should look like
   if nothing new appeared). The keyframe's guides: A's colour, A's edges, A's coordinates, A'.
4. Search (guided_search.py): each pixel's best key patch within a few pixels of where the
   positional guide says it came from, or among the key pixels nearest to it in appearance from
   anywhere (an inverted-file index over the key's colour and gradients). The positional cost counts only where the keyframe pair shows that the edit is
   tied to its place: where pixels that look alike in the original key were edited differently
   (a logo on a plain wall), and not on a tie thinner than 3 pixels over an edge of the original
   (a threshold-like edit switching there, which the frame's appearance places better than the
   flow). Elsewhere the edit is a function of appearance, and the look-alike is better than the
   flow. Why not the shared
   coarse-to-fine loop (synthesis.py) with these guides:
   its whole-key searches cost 13-58 s per 320x240 frame on the 2-core development machine, and
   the positional guide already says where to look.
5. Vote: the mean of the chosen A' patches covering each pixel (patches.vote), or with
   ``vote='sample'`` A' read at each pixel's match alone.
6. Error: the box-summed guide distance of each pixel's match, smoothed: how well the pass
   explains the frame there.
7. Blending. Between two keyframes each frame has one result from each side. They are mixed per
   pixel with weights (1 - distance share)^2 / (error + floor), the distance share running from 0
   at a pass's key to 1 at the other key: at a keyframe its own pass has all the weight, so the
   output moves from one key's result to the other's with no jump, and where one side explains
   the frame better (something the other key never saw), that side counts more.
8. Mask. Every pixel outside the mask is copied from the input at the end: there the output
   equals the input exactly.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..clip_tensor import frames_to_tensor, tensor_to_frames
from ..device import resolve_device
from ..errors import ConfigError
from ..flow import DIS_PRESETS, dis_flow, to_gray, warp
from ..patches import vote
from .guided_search import AppearanceIndex, open_ties, position_tied, window_search

# (frames done, frames in all): progress of the frame-by-frame passes
FrameProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class PropagateOptions:
    colour_weight: float = 1.0  # the frame's colour against the keyframe's
    edge_weight: float = 1.0  # the frame's edges (gradient magnitude) against the keyframe's
    # Positional guide, only where the keyframe pair says the edit is tied to its place
    # (guided_search.position_tied): a pixel this many working pixels away from where the flow
    # says it came from costs as much as a full-range difference of one colour channel. Strong: a logo painted
    # on a plain wall has nothing but position to hold it in place (at 100 it smeared across the
    # wall in the README example, though the stylisation benchmark, which rewards copying by
    # colour, gained 0.3-0.6 dB).
    position_scale: float = 24.0
    position_weight: float = 1.0
    # The previous output, warped, against the edited keyframe: a tie-breaker only. It may decide
    # between key pixels whose appearance explains the frame equally well (within noise: at 0.02
    # a full edit difference costs about what a grey level or two of noise over the six
    # appearance features does), never against appearance: every pixel it holds wrongly stays
    # wrong in every later frame (at 0.2 it cost 3.8 dB on the stylisation benchmark, hand_cup).
    temporal_weight: float = 0.02
    # Rows and columns of a patch (odd). Small: the match is decided by appearance first, and a
    # 7x7 box blurred which side of an edge a pixel takes (3 was 0.1-0.5 dB better).
    patch_size: int = 3
    # How each pixel takes its value: 'sample', the edited key at the pixel's match (bilinear, so
    # a match the flow got right is as sharp as the flow); 'mean', the mean of the matched
    # patches that cover it (smoother where matches disagree, but it blurs thin strokes and
    # mixes the two sides of an edge: 1.3 dB lower on the stylisation benchmark, bunny_audio).
    vote: str = "sample"
    radius: int = 2  # the search looks this many pixels around the flow's prediction
    # The key pixels nearest in appearance (colour, gradients) tried for each pixel besides the
    # window, from anywhere on the key: a local edit is a function of what the frame shows
    # (image analogies), so they reproduce it where the flow has drifted or something came into
    # view. On the stylisation benchmark alone they beat the key warped along the flow by 3 dB.
    appearance_candidates: int = 4
    # They are looked up for every this many pixels of every this many rows, the others taking a
    # looked-up neighbour's moved along (guided_search.AppearanceIndex.candidates). 2 halved the
    # time at 480p when the lookup was 3.8 of 5.0 CPU-seconds a frame (faiss), but a neighbour's look-alike is
    # often not the pixel's own where the edit changes from pixel to pixel (2.6 dB lower on the
    # stylisation benchmark, bunny_audio), so every pixel is looked up unless speed matters more.
    appearance_stride: int = 1
    flow_preset: str = "fine"  # DIS setting (flow.DIS_PRESETS)
    # Error smoothing: the per-pixel blend weights vary over about this many pixels, so where two
    # keys' results meet there is a gradual mix, not a seam.
    error_blur: int = 9
    device: str = "auto"

    def __post_init__(self) -> None:
        weights = (self.colour_weight, self.edge_weight, self.position_weight, self.temporal_weight)
        if min(weights) < 0 or not all(np.isfinite(weights)):
            raise ConfigError(f"guide weights must be finite and 0 or more, got {weights}")
        if not self.position_scale > 0:
            raise ConfigError(f"position scale must be positive, got {self.position_scale}")
        if self.flow_preset not in DIS_PRESETS:
            raise ConfigError(f"flow preset must be one of {', '.join(DIS_PRESETS)}, got {self.flow_preset!r}")
        if self.patch_size < 1 or self.patch_size % 2 == 0 or min(self.radius, self.appearance_candidates) < 0:
            raise ConfigError(f"patch size must be a positive odd number, the radius and candidates 0 or more, "
                              f"got {self.patch_size}, {self.radius} and {self.appearance_candidates}")
        if self.appearance_stride < 1:
            raise ConfigError(f"appearance stride must be at least 1, got {self.appearance_stride}")
        if self.vote not in ("sample", "mean"):
            raise ConfigError(f"vote must be 'sample' or 'mean', got {self.vote!r}")
        if self.error_blur < 1:
            raise ConfigError(f"error blur must be at least 1, got {self.error_blur}")


def propagate(frames: np.ndarray, keys: Mapping[int, np.ndarray], mask: np.ndarray | None = None,
              options: PropagateOptions = PropagateOptions(),
              progress: FrameProgress | None = None) -> np.ndarray:
    """The clip ``frames`` (T, H, W, 3) uint8 with the edits of ``keys`` carried through it.

    ``keys``: frame index (0-based, into ``frames``) -> the edited frame (H, W, 3) uint8.
    ``mask``: None, or (H, W) or (T, H, W) bool, True where the output may differ from the input.
    Returns (T, H, W, 3) uint8; at each key's frame, the key itself (inside the mask).
    """
    check_inputs(frames, keys, mask)
    device = resolve_device(options.device)
    edited = {int(k): frames_to_tensor(np.asarray(image)[None], device)[:, 0] for k, image in keys.items()}
    result = _Propagation(_Frames(frames, device), edited, options, progress).run()
    if mask is not None:
        # Bit for bit the input outside the mask, whatever the float round trip did.
        outside = ~np.broadcast_to(mask, frames.shape[:3])
        result[outside] = frames[outside]
    return result


def check_inputs(frames: np.ndarray, keys: Mapping[int, np.ndarray], mask: np.ndarray | None) -> None:
    """Raise ConfigError naming what was expected when the inputs do not fit together."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ConfigError(f"expected frames (T, H, W, 3) uint8, got {getattr(frames, 'shape', None)} "
                          f"{getattr(frames, 'dtype', type(frames).__name__)}")
    count, height, width = frames.shape[:3]
    if not keys:
        raise ConfigError("at least one keyframe is needed")
    for index, image in keys.items():
        if not 0 <= int(index) < count:
            raise ConfigError(f"keyframe {index} is out of range: the clip has {count} frames (0..{count - 1})")
        image = np.asarray(image)
        if image.shape != (height, width, 3) or image.dtype != np.uint8:
            raise ConfigError(f"keyframe {index} is {image.shape} {image.dtype}; expected the clip's frame size "
                              f"({height}, {width}, 3) uint8")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape not in ((height, width), (count, height, width)):
            raise ConfigError(f"the mask must be bool ({height}, {width}) or ({count}, {height}, {width}), got "
                              f"{mask.dtype} {mask.shape}")
        if not mask.any():
            raise ConfigError("the mask is empty: nothing may be edited")


class _Frames:
    """The clip as the passes ask for it: kept as the uint8 frames it came as, each frame made
    float on the device when a pass needs it (the last few kept, since a pass asks for a frame
    and its neighbour). Why not the whole clip as float planes on the device: colour, luminance,
    edges and gradients cost 28 bytes a pixel a frame, 22 GB for 10 seconds of 1080p."""

    def __init__(self, frames: np.ndarray, device: torch.device, keep: int = 4):
        self.frames, self.device, self.keep = frames, device, keep
        self.count, self.height, self.width = frames.shape[:3]
        self._recent: dict[int, torch.Tensor] = {}

    def colour(self, t: int) -> torch.Tensor:
        """(3, H, W) float in [0, 1] on the device."""
        if t not in self._recent:
            if len(self._recent) >= self.keep:
                self._recent.pop(next(iter(self._recent)))  # the oldest
            self._recent[t] = frames_to_tensor(self.frames[t:t + 1], self.device)[:, 0]
        return self._recent[t]

    def gray(self, t: int) -> torch.Tensor:
        """(H, W) luminance on the device."""
        return to_gray(self.colour(t)[:, None])[0]

    def gray_on_host(self, t: int) -> torch.Tensor:
        """(H, W) luminance on the CPU, made afresh (for the flow threads: no shared state)."""
        return to_gray(frames_to_tensor(self.frames[t:t + 1]))[0]


class _Propagation:
    """The passes from every keyframe and their blend (module notes, steps 1-8)."""

    def __init__(self, clip: _Frames, edited: dict[int, torch.Tensor], options: PropagateOptions,
                 progress: FrameProgress | None):
        self.clip, self.edited = clip, edited
        self.options, self.progress = options, progress
        self.frames = clip.count
        ys, xs = torch.meshgrid(torch.arange(clip.height, device=clip.device, dtype=torch.float32),
                                torch.arange(clip.width, device=clip.device, dtype=torch.float32), indexing="ij")
        self.coordinates = torch.stack([xs, ys])  # (2, H, W) each pixel's own (x, y)
        self.done = 0
        self.total = sum(len(frames) for _, frames in self._passes())

    def _passes(self) -> list[tuple[int, list[int]]]:
        """(keyframe, the frames its pass visits in order, not the key itself)."""
        keys = sorted(self.edited)
        passes = []
        for position, key in enumerate(keys):
            before = keys[position - 1] if position > 0 else -1
            after = keys[position + 1] if position + 1 < len(keys) else self.frames
            passes.append((key, list(range(key - 1, before, -1))))
            passes.append((key, list(range(key + 1, after))))
        return [(key, frames) for key, frames in passes if frames]

    def run(self) -> np.ndarray:
        """(T, H, W, 3) uint8."""
        keys = sorted(self.edited)
        output = np.empty((self.frames, self.clip.height, self.clip.width, 3), dtype=np.uint8)
        for key in keys:
            output[key] = _to_frame(self.edited[key])
        # A frame between two keys waits for its second result; others are written at once. The
        # waiting results are kept on the host in half precision (8 bytes a pixel): a long
        # interval between keys holds one for each of its frames.
        waiting: dict[int, tuple[float, torch.Tensor, torch.Tensor]] = {}  # t -> (share, edit, error)
        for key, visits in self._passes():
            ahead = visits[0] > key
            others = [k for k in keys if (k > key if ahead else k < key)]
            # The distance share runs from 0 at this key to 1 at the next key on this side.
            span = abs((min(others) if ahead else max(others)) - key) if others else self.frames
            for t, edit, error in self._walk(key, visits):
                share = abs(t - key) / span
                if not others:
                    output[t] = _to_frame(edit)
                elif t in waiting:
                    first, first_edit, first_error = waiting.pop(t)
                    part = (first, first_edit.to(edit.device, torch.float32), first_error.to(edit.device, torch.float32))
                    output[t] = _to_frame(_blend([part, (share, edit, error)]))
                else:
                    waiting[t] = (share, edit.to("cpu", torch.float16), error.to("cpu", torch.float16))
        assert not waiting, f"frames {sorted(waiting)} got one result, not two"
        return output

    def _appearance(self, t: int) -> torch.Tensor:
        """(6, H, W) weighted appearance of frame t: colour, gradients (x, y) and edge strength."""
        options = self.options
        gray = self.clip.gray(t)[None]
        return torch.cat([self.clip.colour(t) * options.colour_weight, _gradients(gray)[:, 0] * options.edge_weight,
                          _edges(gray) * options.edge_weight])

    def _features(self, t: int, temporal: torch.Tensor) -> torch.Tensor:
        """(9, H, W) weighted per-pixel features of frame t: appearance, temporal."""
        return torch.cat([self._appearance(t), temporal * self.options.temporal_weight])

    def _walk(self, key: int, visits: list[int]):
        """Yield (t, edited frame (3, H, W), error (H, W)) for each frame of one pass."""
        options = self.options
        key_features = self._features(key, self.edited[key])
        pad = options.patch_size // 2
        # Padded so that every key pixel is the centre of a whole patch (edges repeated).
        values = F.pad(self.edited[key][None], (pad, pad, pad, pad), mode="replicate")[0][:, None]  # (3, 1, H+2p, W+2p)
        positions, previous_output = self.coordinates, self.edited[key]
        index = AppearanceIndex(self._appearance(key))
        tied = position_tied(self._appearance(key), self.edited[key], index)
        # A tie thinner than 3 pixels is kept only where the original key is flat. On an edge the
        # frame's own appearance places a pixel to within a pixel, better than chained flow, and a
        # thin tie there is where an appearance-defined edit switches (an ink line drawn where the
        # gradient passes a level: open_ties); on a flat wall nothing but the flow can place a
        # thin painted stroke (the letters of a logo).
        flat = _smoothed(_gradients(self.clip.gray(key)[None])[:, 0].abs().sum(0), 3) < _FLAT
        tied = torch.where(flat, tied, open_ties(tied))
        step = 1 if visits[0] > key else -1
        with _FlowPrefetch(self.clip, [(t, t - step) for t in visits], self.options.flow_preset) as flows:
            yield from self._visit(key, visits, flows, key_features, values, positions, previous_output, index, tied)

    def _visit(self, key, visits, flows, key_features, values, positions, previous_output, index, tied):
        """The frames of one pass, each from the one before it (see ``_walk``)."""
        options = self.options
        pad = options.patch_size // 2
        height, width = self.clip.height, self.clip.width
        for t in visits:
            flow = _steady(flows.next().to(self.clip.device), self.clip.gray(t),
                           self.clip.gray(t - (1 if t > key else -1)))[None]
            moved, _ = warp(torch.cat([positions, previous_output])[None], flow)
            positions, carried = moved[0, :2], moved[0, 2:]
            appearance = self._appearance(t)
            candidates = (index.candidates(appearance, options.appearance_candidates, options.appearance_stride)
                          if options.appearance_candidates else ())
            matches, distance = window_search(self._features(t, carried), key_features, positions, options.radius,
                                              options.patch_size, options.position_weight / options.position_scale,
                                              candidates, tied)
            size = options.patch_size
            if options.vote == "mean":
                # One patch per target pixel, centred on it: its top-left in the padded key is the match.
                whole = matches.round().long()
                field = (whole[1] * width + whole[0])[None, None]  # (1, 1, H, W)
                made = vote(values, field, (1, height + 2 * pad, width + 2 * pad), (1, size, size), "mean")
                made = made[0, :, 0, pad:pad + height, pad:pad + width]
            else:
                made = warp(self.edited[key][None], (matches - self.coordinates)[None])[0][0]
            error = _smoothed(distance / size**2, options.error_blur)
            previous_output = made
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total)
            yield t, made, error



class _FlowPrefetch:
    """DIS flows of a pass's frame pairs, in order, computed ahead in threads: OpenCV releases
    the interpreter lock, so flows run on the other cores while the search runs (on a GPU the
    flow would otherwise be most of the time). At most ``ahead`` flows wait in memory."""

    def __init__(self, clip: _Frames, pairs: list[tuple[int, int]], preset: str):
        self.clip, self.pairs, self.preset = clip, pairs, preset
        workers = max(1, min(8, os.cpu_count() or 1))
        self.ahead = 2 * workers
        self.pool = ThreadPoolExecutor(workers)
        self.pending: deque = deque()
        self.submitted = 0
        self._fill()

    def _fill(self) -> None:
        while self.submitted < len(self.pairs) and len(self.pending) < self.ahead:
            t, previous = self.pairs[self.submitted]
            self.pending.append(self.pool.submit(_flow, self.clip, t, previous, self.preset))
            self.submitted += 1

    def next(self) -> torch.Tensor:
        flow = self.pending.popleft().result()
        self._fill()
        return flow

    def __enter__(self) -> "_FlowPrefetch":
        return self

    def __exit__(self, *exc) -> None:
        # Interrupted or done: flows not started are dropped, none is waited for.
        self.pool.shutdown(wait=False, cancel_futures=True)


def _flow(clip: _Frames, t: int, previous: int, preset: str) -> torch.Tensor:
    """DIS flow from frame t to frame ``previous``, on the CPU (run in a flow thread)."""
    return dis_flow(clip.gray_on_host(t), clip.gray_on_host(previous), preset)


def _to_frame(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded."""
    return tensor_to_frames(image[:, None])[0]


def _steady(flow: torch.Tensor, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """``flow`` (2, H, W) from frame ``current`` to ``previous`` (grayscale (H, W)), with the
    frame's overall motion (the median flow: camera shake or a pan) wherever that explains the
    neighbourhood about as well as the dense flow does.

    Why: in flat, textureless regions (a plain wall) DIS fills in motion from the nearest
    texture, so a wall beside a moving hand "moves" with it; nothing in the frame shows it, but a
    logo painted on that wall would slide along. Judged by the frames alone the two motions
    explain such a region equally well, and the overall motion is the likelier one there.
    """
    overall = flow.flatten(1).median(dim=1).values.view(2, 1, 1).expand_as(flow)
    both = torch.stack([flow, overall])  # (2, 2, H, W)
    moved, _ = warp(previous[None, None].expand(2, 1, -1, -1), both)
    error = (moved[:, 0] - current).abs()  # (2, H, W)
    error = _box_mean(error, _STEADY_BOX)
    # Only where the frame is flat: in texture (leaves, grass) a small real motion explains the
    # frame hardly better than none, and holding it still would freeze the edit there.
    padded = F.pad(current[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    gradient = (padded[1:-1, 2:] - padded[1:-1, :-2]).abs() + (padded[2:, 1:-1] - padded[:-2, 1:-1]).abs()
    texture = _box_mean(gradient[None], _STEADY_BOX)[0]
    keep_overall = (error[1] <= error[0] + _STEADY_TOLERANCE) & (texture < _FLAT)
    return torch.where(keep_overall[None], overall, flow)


_STEADY_BOX = 15  # pixels: the neighbourhood a motion must explain
_STEADY_TOLERANCE = 2 / 255  # mean gray-level difference under which two motions count as equally good
# A region is flat when the mean gray-level step to the next pixel (across plus down) is below
# this: a plain wall measures 0.4-1.1 grey levels, leaves and grass 20-40 (shared clips, 144p).
_FLAT = 4 / 255


def _blend(parts: list[tuple[float, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Mix one frame's results from each side: weight (1 - distance share)^2 / (error + floor).

    Why squared: a pass's error comes mostly from the chained flow's drift and from what its key
    never saw, both of which grow about linearly with the distance d from its key, so its error
    variance grows as d^2, and inverse-variance weights go as 1 / d^2 (for two sides,
    (1 - share)^2 against share^2). Linear weights gave the far key too much say next to the
    other key: 4 of 18 frames worse than the nearer key alone (stylisation benchmark,
    bunny_audio)."""
    total = weighted = None
    for share, edit, error in parts:
        weight = (1 - share) ** 2 / (error + _ERROR_FLOOR)  # (H, W)
        total = weight if total is None else total + weight
        weighted = edit * weight if weighted is None else weighted + edit * weight
    return weighted / total


_ERROR_FLOOR = 0.01  # errors below about 2.5 grey levels count as equally good


def _edges(gray: torch.Tensor) -> torch.Tensor:
    """(T, H, W) Sobel gradient magnitude of ``gray`` (T, H, W), about [0, 1]."""
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=gray.dtype,
                         device=gray.device) / 8
    kernels = torch.stack([sobel, sobel.T])[:, None]  # (2, 1, 3, 3)
    gradients = F.conv2d(F.pad(gray[:, None], (1, 1, 1, 1), mode="replicate"), kernels)
    return gradients.norm(dim=1).mul(2).clamp(0, 1)


def _gradients(gray: torch.Tensor) -> torch.Tensor:
    """(2, T, H, W) signed central differences (x, y) of ``gray`` (T, H, W): unlike the edge
    strength they tell which side of an edge a pixel is on."""
    padded = F.pad(gray[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    return torch.stack([padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2], padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]])


def _box_mean(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W): the mean of each ``size`` x ``size`` box (odd) of ``images`` (N, H, W), over
    the part of the box inside the image. By running sums, one axis at a time (in float64, so
    the differences of large sums keep float32's precision): the cost per pixel does not grow
    with the box, where a pooling's does (a 15-pixel box pooled at 854x480 took 50 ms a frame
    on 2 cores)."""
    pad = size // 2
    total = images.double()
    for axis in (1, 2):
        length = total.shape[axis]
        sums = F.pad(total.cumsum(axis).movedim(axis, -1), (1, 0))  # sums[..., i]: the first i values
        # Extended so that every box's two ends are plain slices: zeros before, the full sum after.
        sums = torch.cat([sums[..., :1].expand(*sums.shape[:-1], pad), sums,
                          sums[..., -1:].expand(*sums.shape[:-1], pad)], dim=-1)
        total = (sums[..., 2 * pad + 1:] - sums[..., :length]).movedim(-1, axis)
    height, width = images.shape[1:]
    count = lambda length: (torch.arange(length, device=images.device).add(pad + 1).clamp(max=length)
                            - torch.arange(length, device=images.device).sub(pad).clamp(min=0))
    area = count(height).view(-1, 1) * count(width).view(1, -1)
    return (total / area).to(images.dtype)


def _smoothed(image: torch.Tensor, size: int) -> torch.Tensor:
    """(H, W) box-blurred over ``size`` pixels (edges replicated)."""
    pad = size // 2
    padded = F.pad(image[None, None], (pad, pad, pad, pad), mode="replicate")
    return F.avg_pool2d(padded, size, stride=1)[0, 0]
