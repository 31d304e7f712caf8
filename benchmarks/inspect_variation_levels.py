"""Level by level, how far variations move from the source: where diversity is made and where it is lost.

    python benchmarks/inspect_variation_levels.py ../shared/clips/hand_cup.mp4 --size 144 --variations 3

For each pyramid level (coarsest first) of ``--variations`` variations (seeds 0, 1, ...), prints
the level's shape and:

- identity: the share of the level's final nearest-neighbour field that points at the query's
  own position (0 offset: the variation copies the source there);
- dominant: the largest share of the field at one (dt, dy, dx) offset (a shifted copy: near 1);
- spread: per-voxel std across the variations of the level's output, over the source level's
  std (the diversity metric, level by level).

Means over the variations; then the coherence of the last level run against the source at
that level. ``--set name=value`` overrides a SynthesisConfig field (``--set noise_sigma=6``);
``--stop-level K`` stops after level K (the coarse levels take seconds, the finest minutes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vgpnn import SynthesisConfig, read_clip  # noqa: E402
from vgpnn import synthesis  # noqa: E402
from vgpnn.clip_tensor import frames_to_tensor  # noqa: E402
from vgpnn.metrics import coherence, diversity  # noqa: E402
from vgpnn.patches import field_offsets, grid_shape, largest_offset_share  # noqa: E402
from vgpnn.plan import Source, SynthesisPlan, Target  # noqa: E402


def field_shares(field: torch.Tensor, key_grid: tuple[int, int, int]) -> tuple[float, float]:
    """(identity share, dominant-offset share) of one field (T', H', W'), query grid = its shape."""
    offsets = field_offsets(field, key_grid)
    return float((offsets == 0).all(0).float().mean()), largest_offset_share(offsets)


class _Stop(Exception):
    """Raised to end the synthesis after ``--stop-level``."""


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.startswith("("):
        return tuple(int(x) for x in text.strip("()").split(",") if x)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", type=Path)
    parser.add_argument("--size", type=int, default=144)
    parser.add_argument("--frames", type=int, default=0)
    parser.add_argument("--variations", type=int, default=3)
    parser.add_argument("--stop-level", type=int, default=0, help="stop after this level (0: run to the finest)")
    parser.add_argument("--carry-layout", action="store_true", help="each level starts from the coarser level's layout carried up")
    parser.add_argument("--set", action="append", default=[], help="name=value: a SynthesisConfig field")
    args = parser.parse_args()
    overrides = dict((name, parse_value(value)) for name, value in (item.split("=", 1) for item in args.set))
    config = SynthesisConfig(**overrides)
    frames = read_clip(args.clip, short_side=args.size, max_frames=args.frames or None).frames
    source = frames_to_tensor(frames, torch.device("cpu"))
    plan = SynthesisPlan((Source(source),), Target(tuple(frames.shape[:3]), carry_layout=args.carry_layout), tuple(range(args.variations)), config)

    rows, finest = [], []
    run_level = synthesis._run_level

    def recording(plan_, levels, step, output, previous, is_first):
        result = run_level(plan_, levels, step, output, previous, is_first)
        values = levels.values(step.level)
        field = result[1][0] if result[1] is not None else None
        shares = [field_shares(f, grid_shape(values.shape, step.patch_size)) for f in field]
        spread = diversity(result[0], values) if result[0].shape[0] > 1 else float("nan")
        rows.append((step.level, step.target_shape, step.iterations,
                     sum(s[0] for s in shares) / len(shares), sum(s[1] for s in shares) / len(shares),
                     spread, float(values.std())))
        if step.level <= args.stop_level:
            finest.append((result[0], values))
            raise _Stop
        return result

    synthesis._run_level = recording
    try:
        synthesis.synthesize(plan)
    except _Stop:
        pass
    finally:
        synthesis._run_level = run_level
    print(f"{args.clip.stem} {tuple(frames.shape[:3])} config overrides {overrides}")
    print("level  shape (T,H,W)    iters  identity  dominant  spread  source std")
    for level, shape, iterations, identity, dominant, spread, std in rows:
        print(f"{level:5d}  {str(shape):15s}  {iterations:5d}  {identity:8.3f}  {dominant:8.3f}  {spread:6.3f}  {std:.3f}")
    if finest:
        outputs, values = finest[0]
        scores = [coherence(output, values) for output in outputs]
        print(f"coherence at level {args.stop_level}: {sum(scores) / len(scores):.3e}")


if __name__ == "__main__":
    main()
