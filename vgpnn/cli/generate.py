"""``vgpnn generate``: variations of each input clip, same size, fps and length."""

from __future__ import annotations

from . import main
from .batch import inputs_argument
from .job import JobSettings, Plan, run_command
from .options import synthesis_command_options


@main.command()
@inputs_argument
@synthesis_command_options()
def generate(inputs, shared):
    """Make variations of each INPUT: same size, frame rate and length, re-composed from its own
    space-time patches. An INPUT is a video file, a GIF, a folder of numbered frames, an image
    (then the outputs are images), a folder of videos (each is an input) or a glob pattern."""
    config = shared.config()

    def plan(clip):
        return Plan(target_shape=tuple(clip.frames.shape[:3]), keep_audio=True)

    def synthesise(clip, plan, seeds, on_variation, progress):
        from ..apps.generate import GenerateOptions, generate as generate_clips  # torch: only once there is work

        generate_clips(clip.frames, config, GenerateOptions(len(seeds), seeds[0], shared.device, shared.batch_size),
                       on_variation=on_variation, progress=progress)

    run_command(JobSettings("generate", tuple(inputs), shared), config, "{name}_{seed}", plan, synthesise)
