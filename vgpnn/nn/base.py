"""The one interface every nearest-neighbour backend implements.

A search takes a batch of query videos and one key video and returns a *field*: for every
patch position of each query, the flat index of the key patch position nearest to it (sum of
squared differences over the patch). Backends differ in how exact and how fast they are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from ..patches import PatchSize, grid_shape


@dataclass
class SearchRequest:
    """Everything one nearest-neighbour search needs."""

    queries: torch.Tensor  # (B, C, Tq, Hq, Wq) videos whose patches look for neighbours
    keys: torch.Tensor  # (C, Tk, Hk, Wk) video whose patches are the candidates
    patch_size: PatchSize  # (frames, rows, columns) of a patch
    valid_keys: torch.Tensor | None = None  # (Tk', Hk', Wk') bool: key positions allowed; None = all
    initial_field: torch.Tensor | None = None  # (B, Tq', Hq', Wq') a previous answer to improve on
    seeds: tuple[int, ...] = ()  # one per query video: its random draws depend on nothing else
    # The initial field is an earlier EM iteration's answer for these same positions (not a
    # coarser level's carried up): only local improvements are left to find.
    refining: bool = False
    # A large level (schedule rule 3): approximate backends spend the least search that still
    # improves the initial field (PatchMatch: one round).
    quick: bool = False

    def sample_seeds(self) -> tuple[int, ...]:
        return self.seeds if self.seeds else (0,) * self.queries.shape[0]

    def __post_init__(self) -> None:
        if self.queries.dim() != 5 or self.keys.dim() != 4:
            raise ValueError(f"expected queries (B, C, T, H, W) and keys (C, T, H, W), got "
                             f"{tuple(self.queries.shape)} and {tuple(self.keys.shape)}")
        if self.queries.shape[1] != self.keys.shape[0]:
            raise ValueError(f"queries have {self.queries.shape[1]} channels, keys {self.keys.shape[0]}")
        if self.seeds and len(self.seeds) != self.queries.shape[0]:
            raise ValueError(f"{self.queries.shape[0]} query videos but {len(self.seeds)} seeds")
        if self.valid_keys is not None and tuple(self.valid_keys.shape) != self.key_grid:
            raise ValueError(f"valid_keys must have the key grid's shape {self.key_grid}, "
                             f"got {tuple(self.valid_keys.shape)}")

    @property
    def query_grid(self) -> tuple[int, int, int]:
        return grid_shape(self.queries.shape, self.patch_size)

    @property
    def key_grid(self) -> tuple[int, int, int]:
        return grid_shape(self.keys.shape, self.patch_size)

    @property
    def patch_dims(self) -> int:
        pt, ph, pw = self.patch_size
        return self.keys.shape[0] * pt * ph * pw

    def work(self) -> float:
        """Multiply-adds of an exhaustive search for one query video: queries x keys x patch
        dims. Per video, so the backend chosen (and so a video's result) is the same however
        many videos share the batch."""
        q, k = self.query_grid, self.key_grid
        return float(q[0] * q[1] * q[2]) * k[0] * k[1] * k[2] * self.patch_dims


def key_generator() -> torch.Generator:
    """Randomness about the keys alone (sampling them for an index) comes from a fixed seed, so
    it is the same whatever the queries' seeds and however the queries are batched."""
    return torch.Generator().manual_seed(0)


class NearestNeighbourBackend(ABC):
    """A way to answer a :class:`SearchRequest`."""

    name: str = ""
    exact: bool = False  # True when the answer always equals exhaustive search

    @abstractmethod
    def search(self, request: SearchRequest) -> torch.Tensor:
        """Return the field, (B, Tq', Hq', Wq') int64, on the queries' device."""
