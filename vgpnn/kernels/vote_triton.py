"""The vote as fused CUDA kernels (Triton): the same result as the CPU kernel, bit for bit.

The torch vote gathers every contribution of every voxel (up to pt * ph * pw = 147 copies of
the video) into device memory before it can take a median, and that traffic was about half
of the GPU's time. Here one program takes a block of voxels, computes which chosen patches
cover each of them, gathers their values straight into registers and reduces there:

- median: the block's contributions form a (voxels, 2^k) tile padded with +inf; a radix
  select on the floats' bit patterns finds each voxel's value of rank (count - 1) // 2, the
  lower middle value that ``torch.nanmedian`` and the CPU kernel's quickselect return.
  (A bitonic ``tl.sort`` of the tile was slower than the torch vote on an H100.)
- mean: contributions are added in float64 in the CPU kernel's order (frame, row, column
  offset) and divided by their count, so the rounding is the CPU kernel's too.

Imported by :mod:`vgpnn.kernels` only for float32 CUDA tensors once triton has imported;
elsewhere the torch vote runs.
"""

from __future__ import annotations

import contextlib

import torch

import triton
import triton.language as tl

from .triton_jit import generic_kernel

# Launch shapes. The median's tile, (voxels, window) floats, lives in registers, so its voxel
# count shrinks as the window grows; the mean holds one accumulator per voxel.
MEDIAN_TILE = 4096  # window elements per median program
MEDIAN_WARPS = 4
MEAN_BLOCK = 128
MEAN_WARPS = 4


@generic_kernel
def _median_kernel(values_ptr, base_ptr, out_ptr, voxels, frames, height, width,
                   grid_t, grid_h, grid_w, value_height, value_width, value_count,
                   CHANNELS: tl.constexpr, PT: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
                   WINDOW: tl.constexpr, BLOCK: tl.constexpr):
    voxel = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # (BLOCK,)
    inside = voxel < voxels
    x = (voxel % width).to(tl.int32)
    y = ((voxel // width) % height).to(tl.int32)
    t = ((voxel // (width * height)) % frames).to(tl.int32)
    b = voxel // (width * height * frames)
    # Window element j is the in-patch offset (dt, dy, dx) the voxel sits at in the patch
    # that starts dt frames, dy rows and dx columns before it.
    j = tl.arange(0, WINDOW)
    dt = j // (PH * PW)
    dy = (j // PW) % PH
    dx = j % PW
    gt = t[:, None] - dt[None, :]
    gy = y[:, None] - dy[None, :]
    gx = x[:, None] - dx[None, :]
    covered = ((j < PT * PH * PW)[None, :] & inside[:, None]
               & (gt >= 0) & (gt < grid_t) & (gy >= 0) & (gy < grid_h) & (gx >= 0) & (gx < grid_w))
    position = ((b[:, None] * grid_t + gt) * grid_h + gy) * grid_w + gx
    start = tl.load(base_ptr + position, mask=covered, other=0)
    source = start + ((dt * value_height + dy) * value_width + dx)[None, :]
    count = tl.sum(covered.to(tl.int32), axis=1)
    middle = (count - 1) // 2
    plane = frames * height * width
    within = voxel - b * plane
    for c in range(CHANNELS):
        said = tl.load(values_ptr + c * value_count + source, mask=covered, other=float("inf"))
        # Integer keys in the floats' order: negative floats have their magnitude bits flipped.
        bits = said.to(tl.int32, bitcast=True)
        key = bits ^ ((bits >> 31) & 0x7FFFFFFF)
        # Radix select: build, from the top bit down, the largest key with at most `middle`
        # keys below it; that is the middle key itself. The +inf padding is never counted
        # below it. 32 counting passes over the tile instead of a sort.
        chosen = tl.where(tl.sum((key < 0).to(tl.int32), axis=1) <= middle, 0, -2147483648)
        for bit in range(30, -1, -1):
            trial = chosen | (1 << bit)
            below = tl.sum((key < trial[:, None]).to(tl.int32), axis=1)
            chosen = tl.where(below <= middle, trial, chosen)
        median = (chosen ^ ((chosen >> 31) & 0x7FFFFFFF)).to(tl.float32, bitcast=True)
        tl.store(out_ptr + (b * CHANNELS + c) * plane + within, median, mask=inside)


@generic_kernel
def _mean_kernel(values_ptr, base_ptr, out_ptr, voxels, frames, height, width,
                 grid_t, grid_h, grid_w, value_height, value_width, value_count,
                 CHANNELS: tl.constexpr, PT: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
                 BLOCK: tl.constexpr):
    voxel = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = voxel < voxels
    x = (voxel % width).to(tl.int32)
    y = ((voxel // width) % height).to(tl.int32)
    t = ((voxel // (width * height)) % frames).to(tl.int32)
    b = voxel // (width * height * frames)
    plane = frames * height * width
    within = voxel - b * plane
    for c in tl.static_range(CHANNELS):
        total = tl.zeros((BLOCK,), dtype=tl.float64)
        count = tl.zeros((BLOCK,), dtype=tl.int32)
        for dt in range(PT):
            for dy in range(PH):
                for dx in range(PW):
                    gt = t - dt
                    gy = y - dy
                    gx = x - dx
                    covered = (inside & (gt >= 0) & (gt < grid_t) & (gy >= 0) & (gy < grid_h)
                               & (gx >= 0) & (gx < grid_w))
                    start = tl.load(base_ptr + ((b * grid_t + gt) * grid_h + gy) * grid_w + gx,
                                    mask=covered, other=0)
                    source = start + (dt * value_height + dy) * value_width + dx
                    said = tl.load(values_ptr + c * value_count + source, mask=covered, other=0.0)
                    total += said.to(tl.float64)
                    count += covered.to(tl.int32)
        mean = total / tl.maximum(count, 1).to(tl.float64)
        tl.store(out_ptr + (b * CHANNELS + c) * plane + within, mean.to(tl.float32), mask=inside)


def run_vote(values: torch.Tensor, base: torch.Tensor, patch_size: tuple[int, int, int], reduce: str,
             output_shape: tuple[int, int, int]) -> torch.Tensor:
    """values (C, Tv, Hv, Wv) float32 on CUDA, base (B, T', H', W') voxel index of each chosen
    patch's first voxel; returns (B, C, T, H, W) float32."""
    channels, _, value_height, value_width = values.shape
    batch, grid_t, grid_h, grid_w = base.shape
    frames, height, width = output_shape
    values = values.contiguous()
    base = base.to(torch.int32).contiguous()
    out = values.new_empty(batch, channels, frames, height, width)
    voxels = batch * frames * height * width
    arguments = (values, base, out, voxels, frames, height, width, grid_t, grid_h, grid_w,
                 value_height, value_width, values[0].numel())
    # Triton launches on the current device, which need not be the tensors' one.
    with torch.cuda.device(values.device) if values.is_cuda else contextlib.nullcontext():
        _launch(arguments, channels, patch_size, reduce, voxels)
    return out


def _launch(arguments, channels, patch_size, reduce, voxels) -> None:
    pt, ph, pw = patch_size
    if reduce == "median":
        window = max(16, triton.next_power_of_2(pt * ph * pw))  # the sort needs a power of 2
        block = max(2, MEDIAN_TILE // window)
        _median_kernel[(triton.cdiv(voxels, block),)](
            *arguments, CHANNELS=channels, PT=pt, PH=ph, PW=pw, WINDOW=window, BLOCK=block,
            num_warps=MEDIAN_WARPS)
    else:
        _mean_kernel[(triton.cdiv(voxels, MEAN_BLOCK),)](
            *arguments, CHANNELS=channels, PT=pt, PH=ph, PW=pw, BLOCK=MEAN_BLOCK, num_warps=MEAN_WARPS)
