"""``vgpnn generate``: variations of a clip, same size, fps and length."""

from __future__ import annotations

from pathlib import Path

import click

from ..apps.generate import GenerateOptions, generate as generate_clips
from ..config import SynthesisConfig
from . import main
from .common import fail_cleanly
from .job import JobSettings, Plan, run_job
from .options import (config_from_options, method_options, output_options, variation_options,
                      working_size_options)


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@variation_options
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
    config = config_from_options(patch_size, iterations, pyramid_factor, coarsest_frames, coarsest_size,
                                 backend, noise_sigma, default_noise=SynthesisConfig.noise_sigma)
    settings = JobSettings("generate", variations, seed, batch_size, short_side, max_frames, start_frame,
                           device, output, output_format, overwrite, quiet, report, preview)

    def plan(clip):
        return Plan(target_shape=tuple(clip.frames.shape[:3]), default_stem="{name}_{seed}", keep_audio=True)

    def synthesise(clip, plan, seeds, on_variation, progress):
        generate_clips(clip.frames, config, GenerateOptions(len(seeds), seeds[0], device, batch_size),
                       on_variation=on_variation, progress=progress)

    run_job(settings, input_path, config, plan, synthesise)
