"""PatchMatch as fused CUDA kernels (Triton), on true patch distances.

The torch PatchMatch gathered a descriptor per proposal into device memory, then took
distances, an argmin and a select: five passes over (moves x positions) tensors, and the
gathers alone were a third of the GPU's time. Here one program takes a block of query
positions, loads their patches once into registers, and for each proposal gathers the key
patch straight from the key video (small enough to stay in L2), adds up the squared
differences and keeps the nearest, writing only the updated field and distances. Comparing
whole patches instead of 24-number descriptors also makes the matches as good as exact
search's where PatchMatch finds them.

Two kernels:
- ``improve``: score given proposals (M per position), as :class:`vgpnn.nn.patch_scores.PatchScores`
  does in torch; used to score a starting field.
- ``propagate``: one PatchMatch step made whole inside the kernel: the proposals of the 6
  neighbours at a jump distance, with and without a random jitter, and optionally one random
  key, are computed in registers from the field as it was before the step (read from one
  buffer, written to another, so the result does not depend on the order programs run in).
  This replaces some twenty small torch operations per step, and their launches.
Both keep :func:`vgpnn.nn.patch_scores._keep_nearest`'s semantics: proposals are tried in
order and one replaces the current match only when strictly nearer. Distances are float32
sums in a different order than the torch oracle's, so they agree to rounding. Random draws
come from Philox (``tl.rand``) keyed by one seed per video and call and by the position, so a
video's result depends on its seed alone, not on the batch or the launch shape.

Imported by :mod:`vgpnn.kernels` only for float32 CUDA videos once triton has imported.
"""

from __future__ import annotations

import torch

import triton
import triton.language as tl

from .triton_jit import generic_kernel

DRAWS = 8  # random draws reserved per position and step (6 jitters and a random key)
BLOCK = 8  # query positions per program; with WARPS, about 32 tile floats per thread (fastest on an H200)
WARPS = 2


@triton.jit
def _offsets(plane, height, width, CHANNELS: tl.constexpr, PT: tl.constexpr, PH: tl.constexpr,
             PW: tl.constexpr, DPAD: tl.constexpr):
    """Offsets of patch element j (channel c at in-patch offset (dt, dy, dx), as unfold
    orders them) from the patch's first voxel, and which j are inside the patch."""
    j = tl.arange(0, DPAD)
    c = j // (PT * PH * PW)
    dt = (j // (PH * PW)) % PT
    dy = (j // PW) % PH
    dx = j % PW
    return c * plane + (dt * height + dy) * width + dx, j < CHANNELS * PT * PH * PW


@triton.jit
def _key_distance(query, key_ptr, proposal, key_offset, both, key_height, key_width, key_grid_h, key_grid_w):
    kt = proposal // (key_grid_h * key_grid_w)
    ky = (proposal // key_grid_w) % key_grid_h
    kx = proposal % key_grid_w
    key_first = (kt * key_height + ky) * key_width + kx
    key = tl.load(key_ptr + key_first[:, None] + key_offset[None, :], mask=both, other=0.0)
    difference = query - key
    return tl.sum(difference * difference, axis=1)


@triton.jit
def _keep_nearer(query, key_ptr, valid_ptr, proposal, key_offset, both, inside, best, field,
                 key_height, key_width, key_grid_h, key_grid_w, HAS_VALID: tl.constexpr):
    """The proposal replaces the current match where it is strictly nearer (and allowed)."""
    distance = _key_distance(query, key_ptr, proposal, key_offset, both,
                             key_height, key_width, key_grid_h, key_grid_w)
    if HAS_VALID:
        allowed = tl.load(valid_ptr + proposal, mask=inside, other=0)
        distance = tl.where(allowed != 0, distance, float("inf"))
    better = distance < best
    return tl.where(better, distance, best), tl.where(better, proposal, field)


@generic_kernel
def _improve_kernel(query_ptr, key_ptr, proposal_ptr, valid_ptr, field_ptr, best_ptr,
                    n, start, moves, batch, positions,
                    query_plane, query_height, query_width, query_grid_h, query_grid_w,
                    key_plane, key_height, key_width, key_grid_h, key_grid_w,
                    CHANNELS: tl.constexpr, PT: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
                    DPAD: tl.constexpr, HAS_VALID: tl.constexpr, BLOCK: tl.constexpr):
    b = tl.program_id(1)
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = i < n
    position = start + i
    query_offset, in_patch = _offsets(query_plane, query_height, query_width, CHANNELS, PT, PH, PW, DPAD)
    key_offset, _unused = _offsets(key_plane, key_height, key_width, CHANNELS, PT, PH, PW, DPAD)
    qt = position // (query_grid_h * query_grid_w)
    qy = (position // query_grid_w) % query_grid_h
    qx = position % query_grid_w
    query_first = b.to(tl.int64) * CHANNELS * query_plane + (qt * query_height + qy) * query_width + qx
    both = inside[:, None] & in_patch[None, :]
    query = tl.load(query_ptr + query_first[:, None] + query_offset[None, :], mask=both, other=0.0)
    row = b.to(tl.int64) * positions + position
    best = tl.load(best_ptr + row, mask=inside, other=float("inf"))
    field = tl.load(field_ptr + row, mask=inside, other=0)
    for m in range(moves):
        proposal = tl.load(proposal_ptr + (m * batch + b).to(tl.int64) * n + i, mask=inside, other=0)
        best, field = _keep_nearer(query, key_ptr, valid_ptr, proposal, key_offset, both, inside, best, field,
                                   key_height, key_width, key_grid_h, key_grid_w, HAS_VALID)
    tl.store(best_ptr + row, best, mask=inside)
    tl.store(field_ptr + row, field, mask=inside)


@generic_kernel
def _propagate_kernel(query_ptr, key_ptr, field_in, best_in, field_out, best_out, valid_ptr, seed_ptr,
                      positions, step, along_t, along_y, along_x, random_key, key_total,
                      query_plane, query_height, query_width, query_grid_t, query_grid_h, query_grid_w,
                      key_plane, key_height, key_width, key_grid_t, key_grid_h, key_grid_w,
                      CHANNELS: tl.constexpr, PT: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
                      DPAD: tl.constexpr, HAS_VALID: tl.constexpr, JITTER: tl.constexpr,
                      DRAWS: tl.constexpr, BLOCK: tl.constexpr):
    b = tl.program_id(1)
    position = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = position < positions
    qt = position // (query_grid_h * query_grid_w)
    qy = (position // query_grid_w) % query_grid_h
    qx = position % query_grid_w
    query_offset, in_patch = _offsets(query_plane, query_height, query_width, CHANNELS, PT, PH, PW, DPAD)
    key_offset, _unused = _offsets(key_plane, key_height, key_width, CHANNELS, PT, PH, PW, DPAD)
    both = inside[:, None] & in_patch[None, :]
    query_first = b.to(tl.int64) * CHANNELS * query_plane + (qt * query_height + qy) * query_width + qx
    query = tl.load(query_ptr + query_first[:, None] + query_offset[None, :], mask=both, other=0.0)
    row = b.to(tl.int64) * positions
    best = tl.load(best_in + row + position, mask=inside, other=float("inf"))
    field = tl.load(field_in + row + position, mask=inside, other=0)
    seed = tl.load(seed_ptr + b)
    # A runtime loop over the moves, not an unrolled one: unrolled, the compiler keeps
    # several key tiles in flight and spills registers (3x slower on an H100).
    for move in range(6 * (1 + JITTER)):
        axis = move // (2 * (1 + JITTER))
        sign = (move // (1 + JITTER)) % 2
        jittered = move % (1 + JITTER)
        enabled = tl.where(axis == 0, along_t, tl.where(axis == 1, along_y, along_x))
        if enabled != 0:
            here = tl.where(axis == 0, qt, tl.where(axis == 1, qy, qx))
            last = tl.where(axis == 0, query_grid_t, tl.where(axis == 1, query_grid_h, query_grid_w)) - 1
            stride = tl.where(axis == 0, query_grid_h * query_grid_w, tl.where(axis == 1, query_grid_w, 1))
            # The neighbour `step` away (clamped into the grid) and its match, shifted back
            # by the same amount: where this position's match would be if the neighbour's
            # match is part of a shifted copy.
            there = tl.minimum(tl.maximum(here + step * (1 - 2 * sign), 0), last)
            shift = there - here
            matched = tl.load(field_in + row + position + shift * stride, mask=inside, other=0)
            mt = matched // (key_grid_h * key_grid_w) - tl.where(axis == 0, shift, 0)
            my = (matched // key_grid_w) % key_grid_h - tl.where(axis == 1, shift, 0)
            mx = matched % key_grid_w - tl.where(axis == 2, shift, 0)
            if jittered != 0:
                draw = (position * DRAWS + axis * 2 + sign).to(tl.int64)
                ut, uy, ux, _spare = tl.rand4x(seed, draw)
                span = 2 * step + 1
                mt = mt + (ut * span).to(tl.int64) - step
                my = my + (uy * span).to(tl.int64) - step
                mx = mx + (ux * span).to(tl.int64) - step
            mt = tl.minimum(tl.maximum(mt, 0), key_grid_t - 1)
            my = tl.minimum(tl.maximum(my, 0), key_grid_h - 1)
            mx = tl.minimum(tl.maximum(mx, 0), key_grid_w - 1)
            proposal = (mt * key_grid_h + my) * key_grid_w + mx
            best, field = _keep_nearer(query, key_ptr, valid_ptr, proposal, key_offset, both, inside, best,
                                       field, key_height, key_width, key_grid_h, key_grid_w, HAS_VALID)
    if random_key != 0:
        draw = (position * DRAWS + 6).to(tl.int64)  # past the position's six jitter draws
        bits = tl.randint(seed, draw).to(tl.uint32, bitcast=True).to(tl.int64)
        proposal = bits % key_total
        best, field = _keep_nearer(query, key_ptr, valid_ptr, proposal, key_offset, both, inside, best,
                                   field, key_height, key_width, key_grid_h, key_grid_w, HAS_VALID)
    tl.store(best_out + row + position, best, mask=inside)
    tl.store(field_out + row + position, field, mask=inside)


def improve(queries: torch.Tensor, keys: torch.Tensor, patch_size, proposals: torch.Tensor, start: int,
            field: torch.Tensor, best: torch.Tensor, valid: torch.Tensor | None) -> None:
    """queries (B, C, Tq, Hq, Wq), keys (C, Tk, Hk, Wk), proposals (M, B, n) key positions for
    query positions [start, start + n); field (B, Nq) int64 and best (B, Nq) float32 are
    updated in place."""
    pt, ph, pw = patch_size
    batch, channels, query_frames, query_height, query_width = queries.shape
    _, key_frames, key_height, key_width = keys.shape
    moves, _, n = proposals.shape
    proposals = proposals.contiguous()
    valid_bytes = valid.to(torch.uint8).contiguous() if valid is not None else proposals  # unused if None
    dpad = triton.next_power_of_2(channels * pt * ph * pw)
    grid = (triton.cdiv(n, BLOCK), batch)
    with torch.cuda.device(queries.device):
        _improve_kernel[grid](
            queries, keys, proposals, valid_bytes, field, best,
            n, start, moves, batch, field.shape[1],
            query_frames * query_height * query_width, query_height, query_width,
            query_height - ph + 1, query_width - pw + 1,
            key_frames * key_height * key_width, key_height, key_width,
            key_height - ph + 1, key_width - pw + 1,
            CHANNELS=channels, PT=pt, PH=ph, PW=pw, DPAD=dpad, HAS_VALID=valid is not None,
            BLOCK=BLOCK, num_warps=WARPS)


def propagate_rounds(queries: torch.Tensor, keys: torch.Tensor, patch_size, field: torch.Tensor,
                     best: torch.Tensor, valid: torch.Tensor | None, rounds: int, steps: tuple[int, ...],
                     generators: list[torch.Generator], jitter: bool = True, random_key: bool = True) -> torch.Tensor:
    """PatchMatch rounds on the GPU: for each round, a propagation step per jump distance in
    ``steps`` (an axis takes part while the step is shorter than the grid along it, or is 1),
    with one random key tried in the last step (``jitter`` and ``random_key`` off leave the
    deterministic part, which tests compare with the torch PatchMatch). field (B, Nq) int64 and best (B, Nq) float32
    are the starting matches and their distances; returns the final field."""
    pt, ph, pw = patch_size
    batch, channels, query_frames, query_height, query_width = queries.shape
    _, key_frames, key_height, key_width = keys.shape
    query_grid = (query_frames - pt + 1, query_height - ph + 1, query_width - pw + 1)
    key_grid = (key_frames - pt + 1, key_height - ph + 1, key_width - pw + 1)
    positions = field.shape[1]
    calls = rounds * len(steps)
    # One seed per video and step, drawn from that video's generator only.
    seeds = torch.stack([torch.randint(0, 2**62, (max(1, calls),), generator=g, device=g.device)
                         for g in generators], 1).to(queries.device)  # (calls, B)
    valid_bytes = valid.to(torch.uint8).contiguous() if valid is not None else field  # unused if None
    field, best = field.contiguous(), best.contiguous()
    spare_field, spare_best = torch.empty_like(field), torch.empty_like(best)
    dpad = triton.next_power_of_2(channels * pt * ph * pw)
    grid = (triton.cdiv(positions, BLOCK), batch)
    call = 0
    with torch.cuda.device(queries.device):
        for _ in range(rounds):
            for index, step in enumerate(steps):
                along = [int(step < query_grid[axis] or step == 1) for axis in range(3)]
                _propagate_kernel[grid](
                    queries, keys, field, best, spare_field, spare_best, valid_bytes, seeds[call],
                    positions, step, *along, int(random_key and index == len(steps) - 1), key_grid[0] * key_grid[1] * key_grid[2],
                    query_frames * query_height * query_width, query_height, query_width, *query_grid,
                    key_frames * key_height * key_width, key_height, key_width, *key_grid,
                    CHANNELS=channels, PT=pt, PH=ph, PW=pw, DPAD=dpad, HAS_VALID=valid is not None,
                    JITTER=int(jitter), DRAWS=DRAWS, BLOCK=BLOCK, num_warps=WARPS)
                field, spare_field = spare_field, field
                best, spare_best = spare_best, best
                call += 1
    return field
