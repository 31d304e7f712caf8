"""Parameters of the coarse-to-fine synthesis, validated once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .errors import ConfigError
from .nn import BACKENDS, make_backend


# median: per-voxel median of the covering patches; mean: their mean; best: each voxel from the
# one covering patch closest to their median (keeps texture where patches disagree).
VOTES = ("median", "mean", "best")


@dataclass(frozen=True)
class SynthesisConfig:
    patch_size: tuple[int, int, int] = (3, 7, 7)  # frames, rows, columns of a patch
    pyramid_factor: float = 0.85  # each level is this fraction of the next finer, per axis
    coarsest_frames: int = 3  # time stops shrinking at this many frames
    coarsest_short_side: int = 15  # space stops shrinking when the shorter side is this
    iterations: int = 5  # EM iterations per level (the coarsest level gets one)
    noise_sigma: float = 2.5  # std of the noise added to the coarsest guess (0..1 pixel scale)
    max_copy_share: float = 0.35  # a noisy sample with more of its early field at one offset starts again (1: never)
    recompose_tries: int = 8  # starts a copy-like sample gets; the best is kept (recompose.py)
    vote: str = "median"  # how overlapping patches are folded (VOTES); with fixed voxels, the consensus free voxels are measured against
    backend: str = "auto"  # nearest-neighbour backend: auto, exact, patchmatch, faiss
    backend_options: Mapping[str, Any] = ()  # keyword arguments of the named backend, e.g. {'chunk': 97}
    large_level_voxels: int = 3_000_000  # levels larger than this get 1 iteration and small patches
    large_level_patch_size: tuple[int, int, int] = (3, 5, 5)  # the patch used on such levels

    def __post_init__(self) -> None:
        for name in ("patch_size", "large_level_patch_size"):
            size = getattr(self, name)
            if len(size) != 3 or min(size) < 1:
                raise ConfigError(f"{name} must be three positive integers (frames, rows, columns), got {size}")
        if not 0.3 <= self.pyramid_factor < 1.0:
            raise ConfigError(f"pyramid factor must be in [0.3, 1), got {self.pyramid_factor}")
        if self.coarsest_frames < 1 or self.coarsest_short_side < 1:
            raise ConfigError("coarsest frames and coarsest short side must be at least 1, got "
                              f"{self.coarsest_frames} and {self.coarsest_short_side}")
        if self.iterations < 1:
            raise ConfigError(f"iterations per level must be at least 1, got {self.iterations}")
        if self.noise_sigma < 0:
            raise ConfigError(f"noise strength must be 0 or more, got {self.noise_sigma}")
        if not 0 < self.max_copy_share <= 1:
            raise ConfigError(f"max copy share must be in (0, 1], got {self.max_copy_share}")
        if self.recompose_tries < 1:
            raise ConfigError(f"recompose tries must be at least 1, got {self.recompose_tries}")
        if self.vote not in VOTES:
            raise ConfigError(f"vote must be one of {', '.join(VOTES)}, got {self.vote!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        self._check_backend_options()

    def _check_backend_options(self) -> None:
        try:
            options = dict(self.backend_options)
        except (TypeError, ValueError):
            raise ConfigError(f"backend options must map names to values, got {self.backend_options!r}") from None
        # Pairs rather than a dict, so a config stays hashable like its other fields.
        object.__setattr__(self, "backend_options", tuple(sorted(options.items())))
        if not options:
            return
        if self.backend == "auto":
            raise ConfigError("backend options need a named backend (exact, patchmatch or faiss), not 'auto'")
        try:
            make_backend(self.backend, **options)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"backend options {options} do not fit the {self.backend} backend: {error}") from None


