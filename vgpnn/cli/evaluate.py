"""``vgpnn evaluate``: the weight-free quality figures of outputs against their source."""

from __future__ import annotations

import json
import math
import sys

import click

from ..errors import VgpnnError
from ..inputs import expand_inputs
from ..memory import available_cpu_bytes, check_fits
from ..video import read_clip
from . import main
from .common import cli_message, fail_cleanly
from .options import parse_patch_size, working_size_options

_PER_OUTPUT = ("coherence", "completeness", "nnf_div", "dominant_offset")
_FIXED = 2**29  # the search's score chunks, the interpreter and libraries


@main.command()
@click.argument("source_path", metavar="SOURCE", type=click.Path(path_type=str))
@click.argument("outputs", metavar="OUTPUT...", nargs=-1, required=True)
@working_size_options
@click.option("--patch-size", callback=parse_patch_size, default="3x7x7", show_default=True, metavar="TxHxW",
              help="Patch used by the figures.")
@click.option("--sample", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Patches sampled for coherence and completeness (exact nearest neighbours of each).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@fail_cleanly
def evaluate(source_path, outputs, short_side, max_frames, start_frame, patch_size, sample, as_json):
    """Quality of each OUTPUT made from SOURCE: coherence and completeness (lower is better:
    every part of the output looks like the source; the output keeps all of the source), NNFDIV
    (higher: re-composed rather than copied), the dominant-offset share (lower: the largest
    share of the output's patches whose nearest source patch sits at one offset from them; near
    1 for a shifted copy of the source) and, over two or more outputs of one shape,
    diversity (higher: the outputs differ from each other). SOURCE is read at the working size
    (--size, --max-frames, --start-frame); each OUTPUT with the same --size and --max-frames,
    from its first frame (--max-frames 0 reads every frame)."""
    from ..clip_tensor import frames_to_tensor  # torch: only once there is work
    from ..metrics import coherence, completeness, dominant_offset_share, nearest_offsets, nnf_div

    source_clip = read_clip(source_path, short_side=short_side, start_frame=start_frame,
                            max_frames=max_frames or None)
    source = frames_to_tensor(source_clip.frames)
    patch = tuple(patch_size)
    results, videos, failed = [], [], 0
    for path in expand_inputs(list(outputs)).inputs:
        try:
            video = frames_to_tensor(read_clip(path, short_side=short_side, max_frames=max_frames or None).frames)
            _check_memory(video, source, patch)
        except VgpnnError as error:
            failed += 1
            message = cli_message(error)
            prefix = "" if str(path) in message else f"{path}: "
            click.echo(f"error: {prefix}{message}", err=True)
            results.append({"output": str(path), "error": message})
            continue
        videos.append(video)
        offsets = nearest_offsets(video, source, patch)
        results.append({"output": str(path), "working_shape": list(video.shape[1:]),
                        "coherence": coherence(video, source, patch, sample),
                        "completeness": completeness(video, source, patch, sample),
                        "nnf_div": nnf_div(video, source, patch, offsets),
                        "dominant_offset": dominant_offset_share(video, source, patch, offsets)})
    scored = [r for r in results if "error" not in r]
    summary = {
        "source": source_path, "working_shape": list(source.shape[1:]), "patch_size": list(patch),
        "outputs": results,
        "mean": {name: sum(r[name] for r in scored) / len(scored) for name in _PER_OUTPUT} if scored else None,
        "diversity": _diversity(videos, source),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_table(summary, scored)
    sys.exit(1 if failed else 0)


def _check_memory(video: torch.Tensor, source: torch.Tensor, patch) -> None:
    """The figures unfold every patch of the larger video (float32); refuse what cannot fit."""
    positions = max(math.prod(max(1, n - p + 1) for n, p in zip(v.shape[1:], patch)) for v in (video, source))
    needed = 2 * positions * 3 * math.prod(patch) * 4 + _FIXED
    available = available_cpu_bytes()
    if available is not None:
        check_fits(needed, available, "this machine (RAM)")


def _diversity(videos: list[torch.Tensor], source: torch.Tensor) -> float | None:
    """Needs two or more outputs of one shape; None otherwise."""
    if len(videos) < 2 or len({tuple(v.shape) for v in videos}) != 1:
        return None
    import torch
    from ..metrics import diversity

    return diversity(torch.stack(videos), source)


def _print_table(summary: dict, scored: list[dict]) -> None:
    frames, height, width = summary["working_shape"]
    click.echo(f"source {summary['source']} at {width}x{height}x{frames}")
    if not scored:
        return
    def cells(name: str, figures: dict) -> tuple[str, ...]:
        return (name, f"{figures['coherence']:.3e}", f"{figures['completeness']:.3e}", f"{figures['nnf_div']:.3f}",
                f"{figures['dominant_offset']:.3f}")

    rows = [("output", "coherence", "completeness", "nnf_div", "dominant_offset")]
    rows += [cells(r["output"], r) for r in scored]
    if len(scored) > 1:
        rows.append(cells("mean", summary["mean"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if summary["diversity"] is not None:
        click.echo(f"diversity over {len(scored)} outputs: {summary['diversity']:.3f}")
    else:
        click.echo("diversity: needs two or more outputs of the same shape")
    click.echo("lower coherence, completeness and dominant_offset are better; higher nnf_div and diversity")
