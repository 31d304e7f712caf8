"""``vgpnn generate``: variations of a clip, same size, fps and length."""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

import click

from ..apps.generate import GenerateOptions, generate as generate_clips
from ..config import SynthesisConfig
from ..device import resolve_device
from ..naming import default_format, plan_outputs
from ..preview import contact_sheet
from ..progress import ProgressBars
from ..video import read_clip, write_video
from . import main
from .common import check_outputs, config_record, fail_cleanly, notice_working_size, write_report
from .options import config_from_options, method_options, output_options, working_size_options


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
@fail_cleanly
def generate(input_path, variations, seed, batch_size, short_side, max_frames, start_frame, noise_sigma,
             patch_size, iterations, pyramid_factor, coarsest_frames, coarsest_size, backend,
             device, output, output_format, overwrite, quiet, report, preview):
    """Make variations of INPUT: same size, frame rate and length, re-composed from its own
    space-time patches. INPUT is a video file, a GIF, a folder of numbered frames or an image
    (then the outputs are images)."""
    say = (lambda text: None) if quiet else (lambda text: click.echo(text, err=True))
    config = config_from_options(patch_size, iterations, pyramid_factor, coarsest_frames, coarsest_size,
                                 backend, noise_sigma, default_noise=SynthesisConfig.noise_sigma)
    torch_device = resolve_device(device)
    if seed is None:
        seed = secrets.randbelow(2**31 - variations)
    seeds = [seed + i for i in range(variations)]

    clip = read_clip(input_path, short_side=short_side, start_frame=start_frame,
                     max_frames=max_frames or None)
    outputs = plan_outputs(output, input_path, seeds,
                           output_format or default_format(clip.kind, input_path))
    check_outputs(outputs + ([preview] if preview else []), input_path, overwrite)
    notice_working_size(say, clip, short_side, max_frames)
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
        write_report(report, {
            "command": "generate", "input": str(input_path), "seed": seed, "variations": variations,
            "batch_size": batch_size,
            "device": str(torch_device), "working_shape": list(clip.frames.shape[:3]),
            "fps": str(clip.fps), "parameters": config_record(config) | {
                "size": short_side, "max_frames": max_frames, "start_frame": start_frame},
            "outputs": records, "seconds": round(time.perf_counter() - started, 3)}, overwrite=True)


