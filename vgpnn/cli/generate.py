"""``vgpnn generate``: variations of each input clip, same size, fps and length."""

from __future__ import annotations


from ..apps.generate import GenerateOptions, generate as generate_clips
from ..config import SynthesisConfig
from . import main
from .batch import inputs_argument
from .job import JobSettings, Plan, run_command
from .options import config_from_options, synthesis_command_options


@main.command()
@inputs_argument
@synthesis_command_options()
def generate(inputs, variations, seed, batch_size, short_side, max_frames, start_frame, noise_sigma,
             patch_size, iterations, pyramid_factor, coarsest_frames, coarsest_size, backend,
             device, output, output_format, overwrite, quiet, report, preview, skip_existing):
    """Make variations of each INPUT: same size, frame rate and length, re-composed from its own
    space-time patches. An INPUT is a video file, a GIF, a folder of numbered frames, an image
    (then the outputs are images), a folder of videos (each is an input) or a glob pattern."""
    config = config_from_options(patch_size, iterations, pyramid_factor, coarsest_frames, coarsest_size,
                                 backend, noise_sigma, default_noise=SynthesisConfig.noise_sigma)
    settings = JobSettings("generate", tuple(inputs), variations, seed, batch_size, short_side, max_frames,
                           start_frame, device, output, output_format, overwrite, quiet, report, preview,
                           skip_existing)

    def plan(clip):
        return Plan(target_shape=tuple(clip.frames.shape[:3]), keep_audio=True)

    def synthesise(clip, plan, seeds, on_variation, progress):
        generate_clips(clip.frames, config, GenerateOptions(len(seeds), seeds[0], device, batch_size),
                       on_variation=on_variation, progress=progress)

    run_command(settings, config, "{name}_{seed}", plan, synthesise)
