"""``vgpnn info``: what each input is, and what the default generate job on it would cost here."""

from __future__ import annotations

import json
import sys

import click

from ..config import SynthesisConfig
from ..device import DEVICES, resolve_device
from ..errors import InputError, VgpnnError
from ..apps.target_shape import TargetRequest, plan_target_shape, window_frames
from ..estimate import automatic_short_side, estimate_seconds, matmul_rate, plan_levels
from ..inputs import expand_inputs
from ..memory import available_bytes, estimate_bytes
from ..video import is_variable_frame_rate, probe_clip, seekable_input, working_shape
from . import main
from .common import cli_message, fail_cleanly
from .options import AUTO_SIZE, FiniteFloat, working_size_options

_GIB = 2**30


@main.command()
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@working_size_options(automatic=True)
@click.option("--duration", type=FiniteFloat(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Estimate `vgpnn retarget --duration SECONDS` instead of generate.")
@click.option("--frames", "target_frames", type=click.IntRange(min=1), default=None,
              help="Estimate `vgpnn retarget --frames N` instead of generate.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="Device to estimate for: auto is the CUDA GPU when there is one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list for scripts instead of a table.")
@fail_cleanly
def info(inputs, short_side, max_frames, start_frame, duration, target_frames, device, as_json):
    """Frames, frame rate, size, duration and audio of each INPUT, and an estimate of the time and
    peak memory of `vgpnn generate` with default settings (and the working size given here) on
    this machine, or of a retarget to another length (--duration, --frames). Times are
    estimates from a model of the work (README: "vgpnn info")."""
    if duration is not None and target_frames is not None:
        raise click.UsageError("give --duration or --frames, not both")
    length = {"duration": duration, "frames": target_frames}
    torch_device = resolve_device(device)
    rate = matmul_rate(torch_device)
    available = available_bytes(torch_device)
    entries, failed = [], 0
    for source in expand_inputs(list(inputs)).inputs:
        try:
            entries.append(_describe(source, short_side, max_frames, start_frame, torch_device, rate, available,
                                     length))
        except VgpnnError as error:
            failed += 1
            message = cli_message(error)
            prefix = "" if str(source) in message else f"{source}: "
            click.echo(f"error: {prefix}{message}", err=True)
            entries.append({"input": str(source), "error": message})
    if as_json:
        click.echo(json.dumps(entries, indent=2))
    else:
        _print_table([e for e in entries if "error" not in e], torch_device, available)
    sys.exit(1 if failed else 0)


def _describe(source, short_side, max_frames, start_frame, device, rate, available, length) -> dict:
    # A pipe or FIFO is copied once: it is probed and scanned for a variable frame rate.
    with seekable_input(source) as local:
        return _describe_local(source, local, short_side, max_frames, start_frame, device, rate,
                               available, length)


def _describe_local(source, local, short_side, max_frames, start_frame, device, rate, available, length) -> dict:
    probe = probe_clip(local)
    config = SynthesisConfig()

    def shape_at(side):
        return working_shape(probe, short_side=side, start_frame=start_frame, max_frames=max_frames or None)

    if short_side == AUTO_SIZE:
        short_side = automatic_short_side(min(probe["height"], probe["width"]), shape_at, config, device,
                                          lambda: rate)
    shape = shape_at(short_side)
    if shape[0] == 0:
        raise InputError(f"cannot use '{source}': --start-frame {start_frame} is past its "
                         f"{probe['frames']} frames")
    command, target = "generate", shape
    if any(value is not None for value in length.values()):
        command = "retarget"
        target = plan_target_shape(shape, probe["fps"], TargetRequest(**length, even=probe["kind"] != "image"))
    too_small = min(shape[1:]) < max(config.patch_size[1:])
    levels = [] if too_small else plan_levels(shape, target, config, device.type)
    window = None if command == "generate" else window_frames(shape, target)
    # A long retarget holds one window at a time (apps/target_shape.py).
    peak = estimate_bytes(device, shape, target if window is None else (window, *target[1:]), 1)
    fps = probe["fps"]
    return {
        "input": str(source), "kind": probe["kind"], "width": probe["width"], "height": probe["height"],
        "frames": probe["frames"], "fps": None if fps is None else str(fps),
        "fps_value": None if fps is None else round(float(fps), 3),
        "duration_seconds": None if probe["duration"] is None else round(probe["duration"], 3),
        "audio": probe["has_audio"], "variable_frame_rate": is_variable_frame_rate(local),
        "default_job": {
            "command": command, "working_shape": list(shape), "output_shape": list(target),
            "pyramid_levels": len(levels),
            "device": str(device), "estimated_seconds_per_variation": round(estimate_seconds(levels, device, rate), 1),
            "estimated_peak_bytes": peak, "available_bytes": available,
            "fits": None if available is None else peak <= available,
            "problem": (f"frames of {shape[2]}x{shape[1]} are smaller than the {config.patch_size[2]}x"
                        f"{config.patch_size[1]} patch" if too_small else None),
            "note": "estimates from a model of the work scaled by this machine's measured speed"},
    }


def _seconds(job: dict) -> str:
    if job["problem"]:
        return "too small"
    seconds = job["estimated_seconds_per_variation"]
    return "<1" if seconds < 1 else f"~{seconds:.0f}"


def _print_table(entries: list[dict], device, available) -> None:
    if not entries:
        return
    header = ("input", "kind", "size", "frames", "fps", "seconds", "audio", "job WxHxT", "est. s/out", "est. peak")
    rows = [header]
    for e in entries:
        job = e["default_job"]
        frames, height, width = job["output_shape"]
        fps = "-" if e["fps_value"] is None else f"{e['fps_value']:g}" + (" vfr" if e["variable_frame_rate"] else "")
        peak = f"{job['estimated_peak_bytes'] / _GIB:.1f} GiB" + ("" if job["fits"] in (True, None) else " (too big)")
        rows.append((e["input"], e["kind"], f"{e['width']}x{e['height']}", str(e["frames"]), fps,
                     "-" if e["duration_seconds"] is None else f"{e['duration_seconds']:.2f}",
                     "yes" if e["audio"] else "no", f"{width}x{height}x{frames}",
                     _seconds(job), peak))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    free = "unknown" if available is None else f"{available / _GIB:.1f} GiB"
    command = entries[0]["default_job"]["command"]
    click.echo(f"estimates for `vgpnn {command}` with default settings on {device} "
               f"({free} free); time is modelled, not measured")
