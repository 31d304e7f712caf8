"""The ``vgpnn`` command line: parse options, call the library, write files, report progress.

Exit status: 0 when every output was written, 1 on a failure (bad input, unwritable output),
2 on a usage error, 130 when interrupted. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import sys
import time
from pathlib import Path

import click
import torch

from . import __version__
from .apps.generate import GenerateOptions, generate as generate_clips
from .config import SynthesisConfig
from .device import DEVICES, resolve_device
from .errors import ConfigError, OutputError, VgpnnError
from .naming import FORMATS, default_format, plan_outputs
from .nn import BACKENDS
from .preview import contact_sheet
from .progress import ProgressBars
from .video import read_clip, write_video

DEFAULT_SHORT_SIDE = 144
DEFAULT_MAX_FRAMES = 30


def _fail_cleanly(command):
    """Turn our errors into one line and an exit status; keep tracebacks for real bugs."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ConfigError as error:
            raise click.UsageError(str(error)) from error
        except VgpnnError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)
        except (MemoryError, torch.cuda.OutOfMemoryError):
            click.echo("error: out of memory; use a smaller --size, fewer --max-frames or a smaller "
                       "--batch-size", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted; no partial output was left behind", err=True)
            sys.exit(130)
    return wrapper


def _parse_patch_size(ctx, param, value):
    if value is None:
        return None
    parts = value.lower().split("x")
    try:
        numbers = tuple(int(p) for p in parts)
    except ValueError:
        numbers = ()
    if len(numbers) == 1:
        numbers = (3, numbers[0], numbers[0])
    if len(numbers) != 3 or min(numbers) < 1:
        raise click.BadParameter(f"expected FRAMESxROWSxCOLUMNS such as 3x7x7 (or one number for "
                                 f"square patches of 3 frames), got {value!r}")
    return numbers


def _parse_size(ctx, param, value):
    if value is None or value.lower() == "native":
        return None
    try:
        size = int(value)
    except ValueError:
        raise click.BadParameter(f"expected a number of pixels or 'native', got {value!r}") from None
    if size < 1:
        raise click.BadParameter(f"expected a positive number of pixels or 'native', got {value!r}")
    return size


def working_size_options(command):
    """How much of the input the engine sees: resolution and frame range."""
    options = [
        click.option("--size", "short_side", default=str(DEFAULT_SHORT_SIDE), show_default=True,
                     callback=_parse_size, metavar="PIXELS|native",
                     help="Working size: the input is downscaled so its shorter side is this many "
                          "pixels (never upscaled); 'native' keeps the input's resolution."),
        click.option("--max-frames", type=click.IntRange(min=0), default=DEFAULT_MAX_FRAMES,
                     show_default=True, help="Use at most this many frames of the input (0: all)."),
        click.option("--start-frame", type=click.IntRange(min=0), default=0, show_default=True,
                     help="First input frame to use."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def method_options(command):
    """The VGPNN method's knobs, shared by every command that synthesises."""
    defaults = SynthesisConfig()
    options = [
        click.option("--noise", "noise_sigma", type=click.FloatRange(min=0), default=None,
                     help=f"Std of the noise added to the coarsest level, on a 0..1 pixel scale "
                          f"[default: {defaults.noise_sigma} for variations]. Larger: more different "
                          "from the input."),
        click.option("--patch-size", callback=_parse_patch_size, default=None, metavar="TxHxW",
                     help="Patch frames x rows x columns [default: 3x7x7]."),
        click.option("--iterations", type=click.IntRange(min=1), default=defaults.iterations,
                     show_default=True, help="EM iterations per pyramid level."),
        click.option("--pyramid-factor", type=click.FloatRange(0.3, 0.99), default=defaults.pyramid_factor,
                     show_default=True, help="Each pyramid level is this fraction of the next finer one."),
        click.option("--coarsest-frames", type=click.IntRange(min=1), default=defaults.coarsest_frames,
                     show_default=True, help="The pyramid stops shrinking time at this many frames."),
        click.option("--coarsest-size", type=click.IntRange(min=1), default=defaults.coarsest_short_side,
                     show_default=True, help="The pyramid stops shrinking space when the shorter side has this many pixels."),
        click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
                     help="Nearest-neighbour search: exact, patchmatch, faiss, or auto (exact on small "
                          "levels, faiss on large CPU levels, patchmatch on large GPU levels)."),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                     help="Where to compute: auto uses a CUDA GPU when there is one."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def output_options(command):
    options = [
        click.option("-o", "--output", default=None, metavar="FILE|DIR|TEMPLATE",
                     help="Output file, folder, or name template with {name}, {seed}, {index}, {ext} "
                          "[default: the current folder, named {name}_{seed}.{ext}]."),
        click.option("--format", "output_format", type=click.Choice(FORMATS), default=None,
                     help="Output format when -o is a folder [default: mp4 for videos, the input's "
                          "format for images]; 'frames' writes folders of PNG frames."),
        click.option("-y", "--overwrite", is_flag=True, help="Replace existing outputs."),
        click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors; no progress bars."),
        click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write a JSON record of inputs, parameters, seeds, timings and outputs."),
        click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write a contact sheet (PNG): source frames in the first row, each output below."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vgpnn")
def main():
    """Make new videos out of one short video, with no training (VGPNN)."""


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-n", "--variations", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many different clips to make.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the first variation; variation i uses seed + i [default: random, printed].")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Variations synthesised together; on a GPU, 8 together took about a quarter less time each "
                   "than one by one (144p, H100), for more memory. Results do not depend on it.")
@working_size_options
@method_options
@output_options
@_fail_cleanly
def generate(input_path, variations, seed, batch_size, short_side, max_frames, start_frame, noise_sigma,
             patch_size, iterations, pyramid_factor, coarsest_frames, coarsest_size, backend,
             device, output, output_format, overwrite, quiet, report, preview):
    """Make variations of INPUT: same size, frame rate and length, re-composed from its own
    space-time patches. INPUT is a video file, a GIF, a folder of numbered frames or an image
    (then the outputs are images)."""
    say = (lambda text: None) if quiet else (lambda text: click.echo(text, err=True))
    config = SynthesisConfig(
        patch_size=patch_size or SynthesisConfig.patch_size, iterations=iterations,
        pyramid_factor=pyramid_factor, coarsest_frames=coarsest_frames,
        coarsest_short_side=coarsest_size, backend=backend,
        noise_sigma=SynthesisConfig.noise_sigma if noise_sigma is None else noise_sigma)
    torch_device = resolve_device(device)
    if seed is None:
        seed = secrets.randbelow(2**31 - variations)
    seeds = [seed + i for i in range(variations)]

    clip = read_clip(input_path, short_side=short_side, start_frame=start_frame,
                     max_frames=max_frames or None)
    outputs = plan_outputs(output, input_path, seeds,
                           output_format or default_format(clip.kind, input_path))
    _check_outputs(outputs + ([preview] if preview else []), input_path, overwrite)
    _notice_working_size(say, clip, short_side, max_frames)
    say(f"seed {seed}" + (f" (variations use {seeds[0]}..{seeds[-1]})" if variations > 1 else "")
        + f"; device {torch_device}")

    whole_clip = len(clip.frames) == clip.original_frame_count and start_frame == 0
    keep_audio = clip.kind == "video" and clip.has_audio and whole_clip
    if clip.has_audio and not keep_audio:
        say("audio not copied: the outputs cover only part of the input (use --max-frames 0)")
    records, sheet_rows = [], [clip.frames]
    started = time.perf_counter()
    bars = ProgressBars(enabled=not quiet and sys.stderr.isatty(), total=variations)

    def write_one(index, frames, levels):
        path = write_video(outputs[index], frames, clip.fps, overwrite=overwrite,
                           audio_from=clip.path if keep_audio else None)
        records.append({"output": str(path), "seed": seeds[index], "seconds": round(time.perf_counter() - started, 3),
                        "backends": sorted({b for level in levels for b in level.backends})})
        sheet_rows.append(frames)
        bars.variation_done()
        if not quiet:
            bars.write(str(path))

    try:
        generate_clips(clip.frames, config, GenerateOptions(variations, seed, device, batch_size),
                       on_variation=write_one, progress=bars.level_done)
    finally:
        bars.close()
    if preview is not None:
        write_video(preview, contact_sheet(sheet_rows), None, overwrite=overwrite)
    if report is not None:
        _write_report(report, {
            "command": "generate", "input": str(input_path), "seed": seed, "variations": variations,
            "batch_size": batch_size,
            "device": str(torch_device), "working_shape": list(clip.frames.shape[:3]),
            "fps": str(clip.fps), "parameters": _config_record(config) | {
                "size": short_side, "max_frames": max_frames, "start_frame": start_frame},
            "outputs": records, "seconds": round(time.perf_counter() - started, 3)}, overwrite=True)


def _config_record(config: SynthesisConfig) -> dict:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def _check_outputs(outputs: list[Path], input_path: Path, overwrite: bool) -> None:
    source = input_path.resolve()
    for path in outputs:
        if path.resolve() == source:
            raise OutputError(f"output '{path}' is the input itself; choose another -o")
        if path.exists() and not overwrite:
            raise OutputError(f"output '{path}' exists; pass -y/--overwrite to replace it")


def _notice_working_size(say, clip, short_side, max_frames) -> None:
    frames, height, width = clip.frames.shape[:3]
    original_height, original_width = clip.original_size
    if (height, width) != (original_height, original_width):
        say(f"working at {width}x{height} (input is {original_width}x{original_height}; "
            f"--size {short_side}; use --size native for full resolution)")
    if frames < clip.original_frame_count:
        say(f"using {frames} of {clip.original_frame_count} frames (--max-frames {max_frames}; "
            "0 for all)")


def _write_report(path: Path, record: dict, overwrite: bool) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(record, indent=2, default=str) + "\n")
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise OutputError(f"cannot write report '{path}': {error.strerror or error}") from error
