"""Space-time patches: their grid, unfolding into rows, and folding chosen patches back (the vote).

A patch is a (frames, rows, columns) box, stride 1, no padding. A video (C, T, H, W) has a
patch grid of (T - pt + 1, H - ph + 1, W - pw + 1) positions; a *field* holds, for every
position of a query video's grid, the flat index of a position in a key video's grid.
"""

from __future__ import annotations

import torch

from . import kernels

PatchSize = tuple[int, int, int]  # (frames, rows, columns)


def grid_shape(video_shape: tuple[int, ...], patch_size: PatchSize) -> tuple[int, int, int]:
    """Patch-grid shape of a video whose last three dims are (T, H, W)."""
    t, h, w = video_shape[-3:]
    pt, ph, pw = patch_size
    grid = (t - pt + 1, h - ph + 1, w - pw + 1)
    if min(grid) < 1:
        raise ValueError(f"video (T, H, W) = {(t, h, w)} is smaller than the patch {patch_size}")
    return grid


def unfold(video: torch.Tensor, patch_size: PatchSize, frames: slice | None = None) -> torch.Tensor:
    """Rows of patches of ``video`` (C, T, H, W): (positions, C * pt * ph * pw).

    ``frames`` selects a range of grid frames, so callers can unfold a large video in chunks.
    """
    pt, ph, pw = patch_size
    if frames is not None:
        start = frames.start or 0
        stop = video.shape[1] - pt + 1 if frames.stop is None else frames.stop
        video = video[:, start:stop + pt - 1]
    channels = video.shape[0]
    boxes = video.unfold(1, pt, 1).unfold(2, ph, 1).unfold(3, pw, 1)  # (C, T', H', W', pt, ph, pw)
    boxes = boxes.permute(1, 2, 3, 0, 4, 5, 6)  # (T', H', W', C, pt, ph, pw)
    return boxes.reshape(-1, channels * pt * ph * pw)


def patch_rows(video: torch.Tensor, flat: torch.Tensor, patch_size: PatchSize) -> torch.Tensor:
    """The rows of :func:`unfold` at flat grid positions ``flat`` (n,) only: (n, C * pt * ph * pw),
    gathered without unfolding the whole video (a field's chosen keys, a sample of positions)."""
    t, y, x = grid_coordinates(flat, grid_shape(video.shape, patch_size))
    box = torch.stack(torch.meshgrid(*(torch.arange(n, device=flat.device) for n in patch_size), indexing="ij"))
    box = box.reshape(3, -1)  # (3, pt * ph * pw): a patch's voxel offsets, in unfold's order
    voxels = video[:, t[:, None] + box[0], y[:, None] + box[1], x[:, None] + box[2]]  # (C, n, pt * ph * pw)
    return voxels.permute(1, 0, 2).reshape(flat.shape[0], -1)


def grid_coordinates(flat: torch.Tensor, grid: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(t, y, x) of flat indices into a (T', H', W') patch grid; flat indices are >= 0."""
    plane = grid[1] * grid[2]
    t = flat // plane
    rest = flat - t * plane
    y = rest // grid[2]
    return t, y, rest - y * grid[2]


def field_offsets(field: torch.Tensor, key_grid: tuple[int, int, int]) -> torch.Tensor:
    """(3, T', H', W') int64: for a (T', H', W') field of flat indices into ``key_grid``, the
    (dt, dy, dx) from each query position to the key it chose."""
    keys = torch.stack(grid_coordinates(field, key_grid)).long()
    here = torch.stack(torch.meshgrid(*(torch.arange(n, device=field.device) for n in field.shape), indexing="ij"))
    return keys - here


def largest_offset_share(offsets: torch.Tensor) -> float:
    """The largest share of positions of ``offsets`` (3, ...) that sit at one (dt, dy, dx): near 1
    for a shifted copy, small for a field that gathers from many places."""
    _, counts = torch.unique(offsets.reshape(3, -1), dim=1, return_counts=True)
    return float(counts.max()) / offsets[0].numel()


def field_to_voxel_index(field: torch.Tensor, key_shape: tuple[int, int, int],
                         patch_size: PatchSize) -> torch.Tensor:
    """Flat voxel index (into a (T, H, W) video) of the first voxel of each chosen key patch."""
    _, kh, kw = key_shape
    t, y, x = grid_coordinates(field, grid_shape(key_shape, patch_size))
    return (t * kh + y) * kw + x


def vote(values: torch.Tensor, field: torch.Tensor, output_shape: tuple[int, int, int],
         patch_size: PatchSize, reduce: str = "median", max_elements: int = 2**27) -> torch.Tensor:
    """Fold the patches of ``values`` chosen by ``field`` into videos, voxel by voxel.

    values: (C, Tv, Hv, Wv); field: (B, T', H', W') flat indices into ``values``'s patch grid,
    T' = T - pt + 1 etc. for ``output_shape`` = (T, H, W). Returns (B, C, T, H, W).

    Each output voxel is covered by up to pt * ph * pw patches; its value is the median (or
    mean) of what they say. The contribution of the patch at p through in-patch offset o is
    ``values[chosen(p) + o]``, gathered straight from ``values``, so no patch is materialised.
    A compiled kernel (:func:`vgpnn.kernels.vote`: numba on a CPU, Triton on CUDA) does this
    voxel by voxel where one applies; otherwise the torch code below, their oracle, gathers
    frame chunks of at most ``max_elements`` values. All return the same medians; the torch
    mean may differ in the last bit.
    """
    if reduce not in ("median", "mean"):
        raise ValueError(f"reduce must be 'median' or 'mean', got {reduce!r}")
    batch = field.shape[0]
    channels = values.shape[0]
    pt, ph, pw = patch_size
    frames, height, width = output_shape
    if tuple(field.shape[1:]) != grid_shape(output_shape, patch_size):
        raise ValueError(f"field {tuple(field.shape)} does not fit output {output_shape}")
    value_shape = tuple(values.shape[1:])
    base = field_to_voxel_index(field, value_shape, patch_size)
    compiled = kernels.vote(values, base, patch_size, reduce, output_shape)
    if compiled is not None:
        return compiled
    # Pad with -1 (no patch) so every voxel can look back by any in-patch offset.
    padded = torch.full((batch, frames + pt - 1, height + ph - 1, width + pw - 1), -1,
                        dtype=torch.int64, device=field.device)
    padded[:, pt - 1:pt - 1 + base.shape[1], ph - 1:ph - 1 + base.shape[2],
           pw - 1:pw - 1 + base.shape[3]] = base
    _, vh, vw = value_shape
    # Window element j of the padded field looks back by pt - 1 - j frames (rows, columns alike):
    # the voxel sits at in-patch offset (pt - 1 - jt, ph - 1 - jy, pw - 1 - jx) of that patch.
    reverse = lambda n: torch.arange(n - 1, -1, -1, device=field.device)
    offset_index = ((reverse(pt)[:, None, None] * vh + reverse(ph)[None, :, None]) * vw
                    + reverse(pw)[None, None, :]).reshape(-1)  # (pt * ph * pw,)
    windows = padded.unfold(1, pt, 1).unfold(2, ph, 1).unfold(3, pw, 1)  # (B, T, H, W, pt, ph, pw)
    flat_values = values.reshape(channels, -1)
    output = values.new_empty(batch, channels, frames, height, width)
    per_frame = offset_index.numel() * batch * height * width * channels
    chunk = max(1, max_elements // per_frame)
    for start in range(0, frames, chunk):
        stop = min(frames, start + chunk)
        sources = windows[:, start:stop].reshape(batch, stop - start, height, width, -1)
        missing = sources < 0
        sources = torch.where(missing, 0, sources + offset_index)  # (B, f, H, W, offsets)
        gathered = flat_values[:, sources]  # (C, B, f, H, W, offsets)
        if reduce == "median":
            folded = gathered.masked_fill_(missing, float("nan")).nanmedian(dim=-1).values
        else:
            kept = (~missing).to(values.dtype)
            folded = (gathered * kept).sum(-1) / kept.sum(-1)
        output[:, :, start:stop] = folded.transpose(0, 1)
    return output


def rescale_field(field: torch.Tensor, key_grid: tuple[int, int, int], new_query_grid: tuple[int, int, int],
                  new_key_grid: tuple[int, int, int]) -> torch.Tensor:
    """Carry a field (B, T', H', W') to a finer level's grids: each new position takes the match
    of the proportionally nearest old position, with the matched key position scaled likewise.
    A good start for PatchMatch at the next level, far better than a random one."""
    old_query_grid = tuple(field.shape[1:])
    device = field.device

    def nearest(new: int, old: int) -> torch.Tensor:
        return ((torch.arange(new, device=device) + 0.5) * old / new).long().clamp_max(old - 1)

    picked = field[:, nearest(new_query_grid[0], old_query_grid[0])[:, None, None],
                   nearest(new_query_grid[1], old_query_grid[1])[None, :, None],
                   nearest(new_query_grid[2], old_query_grid[2])[None, None, :]]
    coords = grid_coordinates(picked, key_grid)
    scaled = [((c.double() + 0.5) * new / old - 0.5).round().long().clamp(0, new - 1)
              for c, new, old in zip(coords, new_key_grid, key_grid)]
    return (scaled[0] * new_key_grid[1] + scaled[1]) * new_key_grid[2] + scaled[2]


def carry_field(field: torch.Tensor, query_shapes: tuple[tuple[int, int, int], tuple[int, int, int]],
                key_shapes: tuple[tuple[int, int, int], tuple[int, int, int]],
                patch_sizes: tuple[PatchSize, PatchSize], new_query_grid: tuple[int, int, int]) -> torch.Tensor:
    """Carry a coarser level's arrangement (B, T', H', W') to a finer level, keeping each piece's
    offset: every new position takes the displacement (key position minus query position) of
    the old position under its centre, scaled like the keys' video, so a copied piece stays one
    copied piece with its edges where they were. ``query_shapes`` and ``key_shapes`` are the
    (coarser, finer) videos' (T, H, W); ``patch_sizes`` the two levels' patches;
    ``new_query_grid`` the finer query grid (a loop's has T positions in time).

    Why not resize the coarser output and search again, as the method does: a piece moved by a
    whole pixel at the coarser level moves by a fraction of one at the finer level (1 / 0.85),
    and thin or moving details of it then match other places or other moments better than their
    own, which the median vote blurs into something the source never shows."""
    old_grid = tuple(field.shape[1:])
    old_key_grid = grid_shape(key_shapes[0], patch_sizes[0])
    new_key_grid = grid_shape(key_shapes[1], patch_sizes[1])
    device = field.device
    old_positions, new_positions, key_scales = [], [], []
    for axis in range(3):
        old_centre, new_centre = (patch_sizes[0][axis] - 1) / 2, (patch_sizes[1][axis] - 1) / 2
        query_scale = query_shapes[1][axis] / query_shapes[0][axis]
        new = torch.arange(new_query_grid[axis], device=device)
        old = ((new + new_centre + 0.5) / query_scale - 0.5 - old_centre).round().long().clamp(0, old_grid[axis] - 1)
        old_positions.append(old)
        new_positions.append(new)
        key_scales.append(key_shapes[1][axis] / key_shapes[0][axis])
    picked = field[:, old_positions[0][:, None, None], old_positions[1][None, :, None], old_positions[2][None, None, :]]
    old_keys = grid_coordinates(picked, old_key_grid)
    views = ((-1, 1, 1), (1, -1, 1), (1, 1, -1))
    new_keys = [(new_positions[axis].view(views[axis])
                 + ((old_keys[axis] - old_positions[axis].view(views[axis])) * key_scales[axis]).round().long())
                .clamp(0, new_key_grid[axis] - 1) for axis in range(3)]
    return (new_keys[0] * new_key_grid[1] + new_keys[1]) * new_key_grid[2] + new_keys[2]
