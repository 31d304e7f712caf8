"""Ray Data entry point: a dataset of clips in, a dataset of variations out, one row per output.

For a training-data pipeline that already runs on Ray::

    import ray
    from vgpnn.cluster.data import make_variations

    clips = ray.data.read_binary_files("/mnt/clips/", include_paths=True)  # one row per file
    variations = make_variations(clips, variations=4, seed=0, actors=8, gpus_per_actor=0.25)
    for row in variations.iter_rows():  # or variations.write_parquet("/mnt/augmented/"), ...
        row["frames"]  # (T, H, W, 3) uint8: output `row["index"]` of clip `row["path"]`

Rows in: ``path`` (str) and, optionally, ``bytes`` (the file's content, as
``read_binary_files`` gives it; without it each worker reads ``path`` from a file system all
nodes share).

Rows out, one per output: ``path`` (the clip's), ``index`` (0 .. variations - 1), ``seed``,
``frames`` ((T, H, W, 3) uint8 RGB), ``fps`` (a fraction as text, such as '30000/1001', for
:func:`vgpnn.video.write_video`; empty for a still image) and ``device``.

Output ``index`` of every clip uses ``seed + index``, as on the command line, so a row's
frames are those of ``vgpnn generate CLIP -n VARIATIONS --seed SEED`` with the same working
size, frame range and method settings, bit for bit on the same kind of device.

:class:`Variations` is the class-based function ``map_batches`` runs on a pool of actors:
each actor picks its device once (the GPU share Ray gave it, or the CPU) and keeps it for
every clip it is handed. A clip that cannot be read or synthesised raises a
:class:`vgpnn.VgpnnError` naming it, which fails the dataset unless Ray Data is told to
tolerate failed blocks (``ray.data.DataContext.get_current().max_errored_blocks``).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import VgpnnError
from . import import_ray, numeric_settings, use_numeric_settings, worker_environment


class Variations:
    """Makes ``variations`` outputs of each clip in a batch of rows (see the module's notes)."""

    def __init__(self, variations: int = 1, seed: int = 0, config=None, short_side: int | None = 144,
                 max_frames: int | None = 30, start_frame: int = 0, device: str = "auto", batch_size: int = 1,
                 numeric: dict[str, int] | None = None):
        from ..apps.generate import GenerateOptions
        from ..config import SynthesisConfig
        from ..device import resolve_device

        if numeric is not None:
            use_numeric_settings(numeric)
        self.config = config if config is not None else SynthesisConfig()
        self.device = resolve_device(device)  # once per actor: its GPU share, or the CPU
        self.options = GenerateOptions(variations, seed, str(self.device), batch_size)
        self.short_side, self.max_frames, self.start_frame = short_side, max_frames, start_frame

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        rows: dict[str, list] = {name: [] for name in ("path", "index", "seed", "frames", "fps", "device")}
        contents = batch.get("bytes")
        for number, path in enumerate(batch["path"]):
            clip = self._read(str(path), None if contents is None else contents[number])
            for index, frames in enumerate(self._generate(clip.frames)):
                rows["path"].append(str(path))
                rows["index"].append(index)
                rows["seed"].append(self.options.seed + index)
                rows["frames"].append(frames)
                rows["fps"].append(str(clip.fps) if clip.fps is not None else "")  # "": a still image
                rows["device"].append(str(self.device))
        return rows

    def _generate(self, frames: np.ndarray) -> list[np.ndarray]:
        from ..apps.generate import generate
        return generate(frames, self.config, self.options)

    def _read(self, path: str, content: bytes | None):
        from ..video import read_clip
        if content is None:
            return read_clip(path, short_side=self.short_side, start_frame=self.start_frame, max_frames=self.max_frames)
        # The decoder wants a file; the extension tells it the format, as the name did.
        with tempfile.TemporaryDirectory(prefix="vgpnn-clip-") as folder:
            copy = Path(folder) / Path(path).name
            copy.write_bytes(bytes(content))
            try:
                clip = read_clip(copy, short_side=self.short_side, start_frame=self.start_frame,
                                 max_frames=self.max_frames)
            except VgpnnError as error:  # name the clip as the dataset does, not the copy
                raise type(error)(str(error).replace(str(copy), path)) from error
        return replace(clip, path=Path(path))

def make_variations(clips, *, variations: int = 1, seed: int = 0, config=None, short_side: int | None = 144,
                    max_frames: int | None = 30, start_frame: int = 0, device: str = "auto", batch_size: int = 1,
                    actors: int = 1, gpus_per_actor: float = 0, cpus_per_actor: float = 1):
    """``clips`` (a ``ray.data.Dataset`` of rows with ``path`` and maybe ``bytes``) as a dataset
    of variations, one row per output, made by a pool of ``actors`` :class:`Variations` actors
    that each reserve ``gpus_per_actor`` GPUs (a fraction shares one) and ``cpus_per_actor``
    CPUs. The actors use this process's torch thread count, so results match a run here."""
    ray = import_ray()
    numeric = numeric_settings()
    return clips.map_batches(
        Variations,
        fn_constructor_kwargs=dict(variations=variations, seed=seed, config=config, short_side=short_side,
                                   max_frames=max_frames, start_frame=start_frame, device=device,
                                   batch_size=batch_size, numeric=numeric),
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=1,  # one clip per call: a clip already makes `variations` rows
        num_gpus=gpus_per_actor, num_cpus=cpus_per_actor,
        runtime_env={"env_vars": worker_environment(numeric)})


__all__ = ["Variations", "make_variations"]
