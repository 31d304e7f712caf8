"""``vgpnn extend``: the clip, then more of it (or, with --backward, new frames before it)."""

from __future__ import annotations

import click

from ..config import SynthesisConfig
from ..errors import ConfigError
from . import main
from .batch import inputs_argument
from .job import JobSettings, Plan, run_command
from .options import FiniteFloat, synthesis_command_options


def total_frames(frames: int | None, duration: float | None, fps) -> int:
    """The output's length in frames, from --frames or --duration (seconds at the clip's rate)."""
    if frames is not None:
        return frames
    if not fps:
        raise ConfigError("--duration needs a clip with a frame rate; use --frames")
    return round(duration * float(fps))


@main.command()
@inputs_argument
@click.option("--frames", type=click.IntRange(min=1), default=None,
              help="Length of the output in frames, the input's included (more than the input has).")
@click.option("--duration", type=FiniteFloat(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Length of the output in seconds, the input's included.")
@click.option("--backward", is_flag=True, help="Put the new frames before the input: the output leads into it.")
@synthesis_command_options(
    variation_noise=SynthesisConfig.noise_sigma,
    default_name="after the input and the length, e.g. clip_extended_300f.mp4 or clip_extended_20s_backward.mp4, "
                 "and clip_extended_300f_{seed}.mp4 with --seed or -n above 1")
def extend(inputs, frames, duration, backward, shared):
    """Continue INPUT past its end: the output starts with the input's frames, unchanged (at the
    working size, see --working-size and --max-frames), and goes on with new frames made of the
    clip's own space-time patches, moving at the clip's own pace, with no jump where the input
    ends. --backward puts the new frames first, leading into the input's first frame.

    Long extensions are made in windows of about the clip's length, so time grows with the
    number of new frames and memory does not. Audio: a forward extension keeps the input's
    sound under the input's frames and is silent after them; --backward copies no audio.
    Without --variations or --seed there is no noise: one faithful continuation; with them,
    each output goes on differently. --batch-size has no effect: each output is a chain of
    windows, each window continuing the output's own frames.

    \b
    Examples:
      vgpnn extend clip.mp4 --frames 300 -o longer.mp4
      vgpnn extend clip.mp4 --duration 20 --backward
      vgpnn extend clip.mp4 --frames 120 -n 3 --seed 0 --preview sheet.png
    """
    if (frames is None) == (duration is None):
        raise click.UsageError("give the output's length once: --frames N or --duration SECONDS "
                               "(the input's frames included)")
    from ..apps.extend import ExtendOptions, check_extension, extend as extend_clip, window_plan  # torch: only with work

    config = shared.config()
    settings = JobSettings("extend", tuple(inputs), shared,
                           parameters={"frames": frames, "duration": duration, "backward": backward})
    request = f"{frames}f" if frames is not None else f"{duration:g}s"
    default_stem = "_".join(part for part in ("{name}", "extended", request, "backward" if backward else "",
                                              "{seed}" if shared.varied else "") if part)

    def plan(clip):
        count = clip.frames.shape[0]
        length = total_frames(frames, duration, clip.fps)
        check_extension(count, length)
        windows = window_plan(count, length, config)
        height, width = clip.frames.shape[1:3]
        seconds = f" ({length / float(clip.fps):.2f} s)" if clip.fps else ""
        where = "before" if backward else "after"
        notes = [f"output {width}x{height}, {length} frames{seconds}: {length - count} new frames {where} the "
                 f"input's {count}, in {windows.windows} window{'s' * (windows.windows != 1)}"]
        return Plan(target_shape=(length, height, width), keep_audio=not backward, notes=notes,
                    audio_notice="audio not copied: with --backward the input's sound would start late")

    def synthesise(clip, plan, seeds, on_variation, progress):
        options = ExtendOptions(backward=backward, variations=len(seeds), seed=seeds[0], device=shared.device)
        extend_clip(clip.frames, plan.target_shape[0], config, options, on_variation=on_variation, progress=progress)

    run_command(settings, config, default_stem, plan, synthesise)
