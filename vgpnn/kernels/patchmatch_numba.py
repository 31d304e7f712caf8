"""PatchMatch on whole patches as a compiled, multi-threaded CPU kernel (numba): the CPU twin
of :mod:`.patch_scores_triton`.

The torch PatchMatch on a CPU compares 24-number descriptors (gathering whole patches for 12
proposals per position in torch would move 12 x 441 floats per position per step), and its
steps are a score of tensor operations each. Here one compiled loop over query positions,
spread over all cores, does a whole step per position: it reads the patch distances straight
from the two videos, so no patch, proposal or descriptor is ever stored, and the matches are
as good as exact search's where PatchMatch finds them.

Per search:
1. Start from the given field (another EM iteration of the same level), or from random keys
   (drawn among the allowed ones); each start is scored in the first step.
2. ``rounds`` times, for each jump step in ``steps`` (largest first): from each of the 6
   space-time neighbours at that distance, propose the neighbour's match shifted back by the
   same step; then the best match so far moved by a random jitter of up to the step per axis;
   in the last step of a round also one random key. A proposal replaces the match only when
   strictly nearer. Every position reads the field as it was before the step and writes a
   second buffer (as the Triton kernel does), so the result does not depend on how positions
   are spread over threads.

The one difference from the Triton kernel is the jitter: Triton jitters each of the 6
neighbour proposals (12 proposals a step, scored side by side by a GPU's threads); here the
jitter is applied once, around the best match after propagation (PatchMatch's random search),
because on a CPU each proposal is a serial distance. On the 256x144x15 example's finest level
(its first two EM iterations) that made a search 1.5x faster (CPU time) for a mean patch
distance 0.2 to 0.4 % higher, and one round from a previous field instead of two another 1.7
to 1.9x for 0.3 to 1 % (see PatchMatch).

What makes it fast on a CPU, without changing any result:
- Both videos are laid out channels-last, so a patch row is ``pw * C`` contiguous floats.
- A proposal equal to the current match, or to one already tried in the same step, is not
  scored (it cannot be strictly nearer): neighbours on a coherent field often propose the same
  key (on the 256x144x15 example's finest level, 6 to 18 % less time in paired runs, same fields).
- A distance is abandoned as soon as its partial sum (of non-negative terms, so it never
  decreases) reaches the current best: most proposals lose within a few rows.

Random numbers are counter-based: a 64-bit hash of (seed, position, step, draw), so each
position's draws are the same whatever thread computes it and however many there are, and a
video's result depends on its seed alone. Sums are float32 in a fixed order (rows, then
columns and channels), so results are identical run to run and across thread counts.
``fastmath`` stays off: the kernel compares against infinity (forbidden keys, no match yet).

Imported by :mod:`vgpnn.kernels` only once numba has imported.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .numba_cache import cached_njit

DRAWS = 2  # random draws (of 3 numbers) reserved per position and step: a jitter and a random key

# splitmix64's constants (Steele, Lea and Flood, "Fast splittable pseudorandom number
# generators", 2014): a bijective mix of a 64-bit counter into well-spread bits.
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@cached_njit(inline="always")
def _mix(value):
    value = (value ^ (value >> np.uint64(30))) * _MIX1
    value = (value ^ (value >> np.uint64(27))) * _MIX2
    return value ^ (value >> np.uint64(31))


@cached_njit(inline="always")
def _draw(seed, counter):
    """A 64-bit random number for ``counter`` under ``seed`` (both uint64)."""
    return _mix(seed + (counter + np.uint64(1)) * _GAMMA)


@cached_njit(inline="always")
def _below(bits, bound):
    """bits (uint64) to an integer in [0, bound): the top 32 bits scaled, no modulo bias worth
    the name for the grid sizes here (below 2**31)."""
    return np.int64(((bits >> np.uint64(32)) * np.uint64(bound)) >> np.uint64(32))


def _distance_for(row_length_: int, frames: int, rows: int):
    """The patch distance below, compiled for one patch shape (``frames`` x ``rows`` rows of
    ``row_length_`` floats, compile-time constants, so its loops are unrolled). The same sums in
    the same order: only faster (on the example's finest level, PatchMatch took 0.77x the time
    with the default patch's shape fixed)."""

    @cached_njit(inline="always")
    def distance(queries, b, qt, qy, qx, keys, kt, ky, kx, limit):
        return _distance_rows(queries, b, qt, qy, qx, keys, kt, ky, kx, frames, rows, 3, row_length_, limit)

    return distance


@cached_njit(inline="always")
def _distance_rows(queries, b, qt, qy, qx, keys, kt, ky, kx, pt, ph, channels, row_length, limit):
    """Sum of squared differences between the query patch at (qt, qy, qx) of video b and the
    key patch at (kt, ky, kx), both channels-last with each frame row flattened; stops early
    once it reaches ``limit`` (then the partial sum, already >= limit, is returned).

    Each patch row is summed in four interleaved running sums, combined at the row's end: one
    running sum is a chain of dependent additions (each waits for the last), four independent
    ones keep the CPU's adders busy and let the compiler pack them into one vector register.
    The order is fixed, so the result is too."""
    total = np.float32(0.0)
    start_q = qx * channels
    start_k = kx * channels
    blocked = row_length - row_length % 4
    for dt in range(pt):
        for dy in range(ph):
            query_row = queries[b, qt + dt, qy + dy]
            key_row = keys[kt + dt, ky + dy]
            s0 = s1 = s2 = s3 = np.float32(0.0)
            for i in range(0, blocked, 4):
                d0 = query_row[start_q + i] - key_row[start_k + i]
                d1 = query_row[start_q + i + 1] - key_row[start_k + i + 1]
                d2 = query_row[start_q + i + 2] - key_row[start_k + i + 2]
                d3 = query_row[start_q + i + 3] - key_row[start_k + i + 3]
                s0 += d0 * d0
                s1 += d1 * d1
                s2 += d2 * d2
                s3 += d3 * d3
            for i in range(blocked, row_length):
                d0 = query_row[start_q + i] - key_row[start_k + i]
                s0 += d0 * d0
            total += (s0 + s1) + (s2 + s3)
            if total >= limit:
                return total
    return total


# The default patch (3 frames of 7 rows of 7 RGB pixels) and the large levels' (3, 5, 5).
_distance_rgb7 = _distance_for(7 * 3, 3, 7)
_distance_rgb5 = _distance_for(5 * 3, 3, 5)


@cached_njit()  # called, not inlined: one copy of the three shapes' loops, not one per call site
def _distance(queries, b, qt, qy, qx, keys, kt, ky, kx, pt, ph, channels, row_length, limit):
    if channels == 3 and row_length == 7 * 3 and pt == 3 and ph == 7:
        return _distance_rgb7(queries, b, qt, qy, qx, keys, kt, ky, kx, limit)
    if channels == 3 and row_length == 5 * 3 and pt == 3 and ph == 5:
        return _distance_rgb5(queries, b, qt, qy, qx, keys, kt, ky, kx, limit)
    return _distance_rows(queries, b, qt, qy, qx, keys, kt, ky, kx, pt, ph, channels, row_length, limit)


@cached_njit(inline="always")
def _try(queries, b, qt, qy, qx, keys, proposal, key_h, key_w, pt, ph, channels, row_length, valid, has_valid,
         current_match, current_best):
    """(match, distance) after trying ``proposal``: it wins only when strictly nearer."""
    if proposal == current_match:
        return current_match, current_best
    if has_valid and valid[proposal] == 0:
        return current_match, current_best
    distance = _distance(queries, b, qt, qy, qx, keys, proposal // (key_h * key_w), (proposal // key_w) % key_h,
                         proposal % key_w, pt, ph, channels, row_length, current_best)
    if distance < current_best:
        return proposal, distance
    return current_match, current_best


@cached_njit(parallel=True)
def _step(queries, keys, pt, ph, pw, channels, key_grid, field_in, best_in, field_out, best_out, valid, has_valid,
          seeds, step, along, jitter, random_key):
    """One propagation step (module docstring, step 2) for every position of every video."""
    batch, positions = field_in.shape
    grid_t = queries.shape[1] - pt + 1
    grid_h = queries.shape[2] - ph + 1
    grid_w = queries.shape[3] // channels - pw + 1
    key_t, key_h, key_w = key_grid[0], key_grid[1], key_grid[2]
    key_total = key_t * key_h * key_w
    row_length = pw * channels
    span = 2 * step + 1
    for flat in prange(batch * positions):
        b = flat // positions
        n = flat % positions
        seed = seeds[b]
        qt = n // (grid_h * grid_w)
        qy = (n // grid_w) % grid_h
        qx = n % grid_w
        here = (qt, qy, qx)
        last = (grid_t - 1, grid_h - 1, grid_w - 1)
        strides = (grid_h * grid_w, grid_w, 1)
        match = field_in[b, n]
        best = best_in[b, n]
        if best == np.inf and (not has_valid or valid[match] != 0):
            # The start's own distance, measured on its first step (forbidden: stays infinite)
            best = _distance(queries, b, qt, qy, qx, keys, match // (key_h * key_w), (match // key_w) % key_h,
                             match % key_w, pt, ph, channels, row_length, np.float32(np.inf))
        tried0 = tried1 = tried2 = tried3 = tried4 = np.int64(-1)  # this step's earlier proposals
        for axis in range(3):
            if not along[axis]:
                continue
            for sign in range(2):
                there = min(max(here[axis] + (step if sign == 0 else -step), 0), last[axis])
                shift = there - here[axis]
                neighbour = field_in[b, n + shift * strides[axis]]
                mt = neighbour // (key_h * key_w)
                my = (neighbour // key_w) % key_h
                mx = neighbour % key_w
                if axis == 0:
                    mt -= shift
                elif axis == 1:
                    my -= shift
                else:
                    mx -= shift
                proposal = (min(max(mt, 0), key_t - 1) * key_h + min(max(my, 0), key_h - 1)) * key_w \
                    + min(max(mx, 0), key_w - 1)
                # A proposal already tried in this step lost then, and the best has only come
                # down since (or it won and is the match): skipping it changes nothing.
                if proposal != tried0 and proposal != tried1 and proposal != tried2 and proposal != tried3 \
                        and proposal != tried4:
                    match, best = _try(queries, b, qt, qy, qx, keys, proposal, key_h, key_w, pt, ph, channels,
                                       row_length, valid, has_valid, match, best)
                tried0, tried1, tried2, tried3, tried4 = proposal, tried0, tried1, tried2, tried3
        if jitter:
            # Random search around the best match so far, within the step along each axis.
            counter = np.uint64(n * DRAWS) * np.uint64(3)
            mt = match // (key_h * key_w) + _below(_draw(seed, counter), span) - step
            my = (match // key_w) % key_h + _below(_draw(seed, counter + np.uint64(1)), span) - step
            mx = match % key_w + _below(_draw(seed, counter + np.uint64(2)), span) - step
            proposal = (min(max(mt, 0), key_t - 1) * key_h + min(max(my, 0), key_h - 1)) * key_w \
                + min(max(mx, 0), key_w - 1)
            match, best = _try(queries, b, qt, qy, qx, keys, proposal, key_h, key_w, pt, ph, channels,
                               row_length, valid, has_valid, match, best)
        if random_key:
            proposal = _below(_draw(seed, np.uint64(n * DRAWS + 1) * np.uint64(3)), key_total)
            match, best = _try(queries, b, qt, qy, qx, keys, proposal, key_h, key_w, pt, ph, channels,
                               row_length, valid, has_valid, match, best)
        field_out[b, n] = match
        best_out[b, n] = best


def _mix_python(value: int) -> int:
    """:func:`_mix` on a Python integer (no compilation for the few numbers drawn per search)."""
    value = ((value ^ (value >> 30)) * int(_MIX1)) % 2**64
    value = ((value ^ (value >> 27)) * int(_MIX2)) % 2**64
    return value ^ (value >> 31)


def _call_seeds(seeds: np.ndarray, call: int) -> np.ndarray:
    """One seed per video for the ``call``-th step (call -1: the random start), a hash of the
    video's seed and the call's number, so steps never reuse each other's draws."""
    return np.array([_mix_python((int(seed) + (call + 2**20 + 1) * int(_GAMMA)) % 2**64) for seed in seeds],
                    dtype=np.uint64)


def _random_field(seeds: np.ndarray, positions: int, allowed: np.ndarray) -> np.ndarray:
    """(B, positions) keys drawn uniformly from ``allowed`` (flat key positions), position n of
    video b from a hash of (its seed, n): numpy's uint64 arithmetic wraps as the kernel's does."""
    counters = np.arange(positions, dtype=np.uint64)
    fields = []
    with np.errstate(over="ignore"):
        for seed in seeds:
            bits = np.uint64(seed) + (counters + np.uint64(1)) * _GAMMA
            bits = (bits ^ (bits >> np.uint64(30))) * _MIX1
            bits = (bits ^ (bits >> np.uint64(27))) * _MIX2
            bits = bits ^ (bits >> np.uint64(31))
            index = ((bits >> np.uint64(32)) * np.uint64(allowed.shape[0])) >> np.uint64(32)
            fields.append(allowed[index.astype(np.int64)])
    return np.stack(fields)


def search(queries: np.ndarray, keys: np.ndarray, patch_size, seeds, initial_field: np.ndarray | None,
           valid: np.ndarray | None, rounds: int, steps: tuple[int, ...], jitter: bool = True,
           random_key: bool = True) -> np.ndarray:
    """queries (B, C, Tq, Hq, Wq) and keys (C, Tk, Hk, Wk) float32; seeds: one int per video;
    initial_field (B, Nq) int64 or None (random start); valid (Nk,) bool key positions allowed
    or None. Returns the field (B, Nq) int64 (module docstring for the steps)."""
    pt, ph, pw = patch_size
    batch, channels, frames, height, width = queries.shape
    # channels-last with each frame row flattened: a patch row is pw * C contiguous floats
    queries_last = np.ascontiguousarray(queries.transpose(0, 2, 3, 4, 1)).reshape(batch, frames, height, width * channels)
    keys_last = np.ascontiguousarray(keys.transpose(1, 2, 3, 0)).reshape(keys.shape[1], keys.shape[2], -1)
    query_grid = tuple(int(s - p + 1) for s, p in zip(queries.shape[2:], patch_size))
    key_grid = np.array([s - p + 1 for s, p in zip(keys.shape[1:], patch_size)], dtype=np.int64)
    positions = query_grid[0] * query_grid[1] * query_grid[2]
    seed_array = np.array([int(seed) % 2**64 for seed in seeds], dtype=np.uint64)
    has_valid = valid is not None
    valid_bytes = (np.ascontiguousarray(valid, dtype=np.uint8) if has_valid else np.zeros(1, np.uint8))
    if initial_field is not None:
        field = np.ascontiguousarray(initial_field, dtype=np.int64).copy()
    else:
        allowed = (np.flatnonzero(valid_bytes) if has_valid else np.arange(int(np.prod(key_grid)), dtype=np.int64))
        field = _random_field(_call_seeds(seed_array, -1), positions, allowed.astype(np.int64))
    # Infinity: not measured yet; the first step measures each start (one compiled loop, not two).
    best = np.full((batch, positions), np.inf, dtype=np.float32)
    spare_field, spare_best = np.empty_like(field), np.empty_like(best)
    call = 0
    for _ in range(rounds):
        for index, step in enumerate(steps):
            along = np.array([step < query_grid[axis] or step == 1 for axis in range(3)], dtype=np.bool_)
            _step(queries_last, keys_last, pt, ph, pw, channels, key_grid, field, best, spare_field, spare_best,
                  valid_bytes, has_valid, _call_seeds(seed_array, call), step, along, int(jitter),
                  bool(random_key and index == len(steps) - 1))
            field, spare_field = spare_field, field
            best, spare_best = spare_best, best
            call += 1
    return field


def cached() -> bool:
    """Whether numba's on-disk cache holds a valid compiled :func:`_step` (True also where no
    cache can be kept, or numba's cache is not laid out as expected: nothing to compile ahead)."""
    try:
        return bool(_step._cache._cache_file._load_index())  # numba's own check: index present, source unchanged
    except Exception:  # noqa: BLE001 - another numba version, or no cache at all
        return True


def compile_into_cache() -> None:
    """Compile :func:`_step` into the on-disk cache with one tiny search: every search calls it
    with the same argument types, so every later process loads it from there."""
    generator = np.random.default_rng(0)
    queries = generator.random((1, 3, 4, 8, 8), dtype=np.float32)
    keys = generator.random((3, 4, 8, 8), dtype=np.float32)
    search(queries, keys, (3, 3, 3), [0], None, None, rounds=1, steps=(1,))
