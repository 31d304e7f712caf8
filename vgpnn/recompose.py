"""Variations that re-compose the source instead of copying it.

Noise on the coarsest guess is meant to rearrange the source, but the search pulls every
arrangement back towards one the source itself already has, and on many clips it wins: a
plain background (a cup on a white wall) lets a whole frame shifted by a few pixels look as
coherent as any re-composition. Which way a sample goes is decided in its first levels and
never undone: on a 75-frame clip at 144 px, of six seeds four had 89-100% of their field at
one (dt, dy, dx) offset two levels after the coarsest, and kept 88-100% to the finest level
(shifted copies), while the two that had 35% and 46% there ended at 17% and 65%.

So, for a target with nothing fixed and nothing guiding it, each sample's field is checked
``CHECK_AFTER`` levels in (:func:`copy_share`). A sample whose share is above
``SynthesisConfig.max_copy_share`` starts again from fresh noise, drawn from a seed derived
from its own (:func:`retry_seed`) and a little stronger each time (:func:`retry_sigma`), up to
``SynthesisConfig.recompose_tries`` starts in all. Every start is tried, and of those under the
limit the one whose patches are closest to the source patches its field chose
(:func:`start_error`) is kept; where none is under it, the one with the smallest share. A
start's share and its coherence go together (bunny_audio, 30 frames at 144 px: a first start
at 0.36 of its field at one offset had a quarter of the coherence figure, the mean distance to
the nearest source patch, of the starts under 0.35, which ranged over 2 times), so the first
start under the limit is not always the best one. Those levels are the smallest of the
pyramid, so a retry costs a small fraction of a variation, and a sample stays a function of
its own seed.
"""

from __future__ import annotations

import torch

from .patches import field_offsets, largest_offset_share, patch_rows

CHECK_AFTER = 3  # levels run (coarsest first) before a sample's layout is checked


def copy_share(field: torch.Tensor, key_grid: tuple[int, int, int]) -> torch.Tensor:
    """(B,) for a (B, T', H', W') field of flat indices into ``key_grid``: the largest share of
    each sample's query positions whose chosen key sits at one (dt, dy, dx) offset from them."""
    return torch.tensor([largest_offset_share(field_offsets(sample, key_grid)) for sample in field])


def start_error(output: torch.Tensor, keys: torch.Tensor, field: torch.Tensor, patch_size,
                samples: int = 4096) -> torch.Tensor:
    """(B,): how far each sample of ``output`` (B, C, T, H, W) is from the key patches its
    ``field`` (B, T', H', W') chose in ``keys`` (C, T, H, W): the mean squared difference over
    up to ``samples`` query positions spread evenly over the grid (a start's coherence)."""
    count = field[0].numel()
    positions = torch.linspace(0, count - 1, min(samples, count), device=field.device).long()
    return torch.stack([(patch_rows(sample, positions, patch_size)
                         - patch_rows(keys, chosen.reshape(-1)[positions], patch_size)).square().mean()
                        for sample, chosen in zip(output, field)])


def retry_seed(seed: int, attempt: int) -> int:
    """The noise seed of a sample's ``attempt``-th new start (attempt 0 is the seed itself)."""
    return seed if attempt == 0 else (seed * 7_919 + attempt * 104_729 + 1) % 2**63


def retry_sigma(sigma: float, attempt: int) -> float:
    """The noise of a sample's ``attempt``-th start: a little stronger each time, up to 3.4x by
    the eighth, since a layout that fell back to a copy from one draw tends to from the next."""
    return sigma * 2 ** (attempt / 4)
