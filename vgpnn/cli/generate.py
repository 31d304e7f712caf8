"""``vgpnn generate``: variations of each input clip, same size, fps and length."""

from __future__ import annotations

import secrets
import sys
import time

import click

from ..apps.generate import GenerateOptions, generate as generate_clips
from ..config import SynthesisConfig
from ..device import resolve_device
from ..inputs import input_kind
from ..naming import default_format, plan_outputs
from ..preview import contact_sheet
from ..progress import ProgressBars
from ..video import is_variable_frame_rate, read_clip, write_video
from . import main
from .batch import BatchSettings, Job, PlannedOutput, inputs_argument, run_batch, skip_existing_option
from .common import config_record, fail_cleanly, notice_working_size, refuse_if_too_big
from .options import config_from_options, method_options, output_options, working_size_options


@main.command()
@inputs_argument
@click.option("-n", "--variations", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many different clips to make of each input.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the first variation; variation i uses seed + i, for every input "
                   "[default: random, printed].")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Variations synthesised together; on a GPU, 8 together took about a quarter less time each "
                   "than one by one (144p, H100), for more memory. Results do not depend on it.")
@working_size_options
@method_options
@output_options
@skip_existing_option
@fail_cleanly
def generate(inputs, variations, seed, batch_size, short_side, max_frames, start_frame, noise_sigma,
             patch_size, iterations, pyramid_factor, coarsest_frames, coarsest_size, backend,
             device, output, output_format, overwrite, quiet, report, preview, skip_existing):
    """Make variations of each INPUT: same size, frame rate and length, re-composed from its own
    space-time patches. An INPUT is a video file, a GIF, a folder of numbered frames, an image
    (then the outputs are images), a folder of videos (each is an input) or a glob pattern."""
    config = config_from_options(patch_size, iterations, pyramid_factor, coarsest_frames, coarsest_size,
                                 backend, noise_sigma, default_noise=SynthesisConfig.noise_sigma)
    torch_device = resolve_device(device)
    if seed is None:
        seed = secrets.randbelow(2**31 - variations)
    seeds = [seed + i for i in range(variations)]
    # Said once, when the first input has been read: an input that fails says only its error.
    announce_seed = [f"seed {seed}" + (f" (variations use {seeds[0]}..{seeds[-1]})" if variations > 1 else "")
                     + f"; device {torch_device}"]
    parameters = config_record(config) | {
        "variations": variations, "seed": seed, "batch_size": batch_size, "size": short_side or "native",
        "max_frames": max_frames, "start_frame": start_frame, "device": device, "output": output,
        "format": output_format, "overwrite": overwrite, "skip_existing": skip_existing,
        "preview": None if preview is None else str(preview), "report": None if report is None else str(report)}

    def plan(source):
        output_paths = plan_outputs(output, source, seeds, output_format or default_format(input_kind(source), source))
        return [PlannedOutput(path, {"seed": s}) for path, s in zip(output_paths, seeds)]

    def make(job: Job):
        started = time.perf_counter()
        refuse_if_too_big(job.source, short_side, start_frame, max_frames, torch_device,
                          min(batch_size, len(job.todo)), backend)
        clip = read_clip(job.source, short_side=short_side, start_frame=start_frame,
                         max_frames=max_frames or None)
        read_seconds = time.perf_counter() - started
        while announce_seed:
            job.say(announce_seed.pop())
        notice_working_size(job.say, clip, short_side, max_frames)
        if clip.stated_frame_count and clip.original_frame_count < clip.stated_frame_count:
            job.say(f"'{clip.path}' looks truncated or damaged: {clip.original_frame_count} of the "
                    f"{clip.stated_frame_count} frames it lists could be decoded; using those")
        elif clip.kind == "video" and is_variable_frame_rate(clip.path):
            job.say(f"'{clip.path}' has a variable frame rate; its frames are taken as evenly spaced at "
                    f"the average rate, {float(clip.fps):.3f} fps")
        whole_clip = len(clip.frames) == clip.original_frame_count and start_frame == 0
        keep_audio = clip.kind == "video" and clip.has_audio and whole_clip
        if clip.has_audio and not keep_audio:
            job.say("audio not copied: the outputs cover only part of the input (use --max-frames 0)")
        sheet_rows = [clip.frames]
        bars = ProgressBars(enabled=not quiet and sys.stderr.isatty(), total=len(job.todo))

        def write_one(index, frames, levels):
            write_started = time.perf_counter()
            write_video(job.outputs[index].path, frames, clip.fps, overwrite=job.overwrite,
                        audio_from=clip.path if keep_audio else None)
            job.written(index, {
                "device": str(torch_device), "backends": sorted({b for level in levels for b in level.backends}),
                "working_shape": list(clip.frames.shape[:3]), "fps": str(clip.fps), "audio": keep_audio,
                "seconds": {"read": round(read_seconds, 3),
                            "synthesis": round(sum(level.seconds for level in levels), 3),
                            "write": round(time.perf_counter() - write_started, 3)}})
            sheet_rows.append(frames)
            bars.variation_done()

        try:
            for run in _consecutive_runs(job.todo):
                generate_clips(clip.frames, config, GenerateOptions(len(run), seeds[run[0]], device, batch_size),
                               on_variation=lambda i, frames, levels, first=run[0]: write_one(first + i, frames, levels),
                               progress=bars.level_done)
        finally:
            bars.close()
        if job.preview is not None:
            write_video(job.preview, contact_sheet(sheet_rows), None, overwrite=True)

    settings = BatchSettings("generate", tuple(inputs), overwrite, skip_existing, quiet, report,
                             None if preview is None else str(preview), parameters)
    sys.exit(run_batch(settings, plan, make))


def _consecutive_runs(indices: list[int]) -> list[list[int]]:
    """[0, 1, 3, 4, 5] -> [[0, 1], [3, 4, 5]]: seeds of a run are consecutive, as generate() takes them."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs
