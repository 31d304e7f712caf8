"""``vgpnn retarget``: the clip at another aspect ratio, size or length, or as a seamless loop."""

from __future__ import annotations


import click

from ..apps.target_shape import KEEP_SIDES, TargetRequest, plan_target_shape
from ..config import SynthesisConfig
from ..schedule import check_shapes
from . import main
from .batch import inputs_argument
from .job import JobSettings, Plan, run_command
from .options import FiniteFloat, finite_float, synthesis_command_options


def _parse_pair(separator: str, what: str, integers: bool):
    def parse(ctx, param, value):
        if value is None:
            return None
        parts = value.lower().split(separator)
        try:
            numbers = tuple(int(p) if integers else finite_float(p) for p in parts)
        except ValueError:
            numbers = ()
        if len(numbers) != 2 or min(numbers) <= 0:
            raise click.BadParameter(f"expected {what}, got {value!r}")
        return numbers
    return parse


@main.command()
@inputs_argument
@click.option("--aspect", callback=_parse_pair(":", "two positive numbers W:H such as 9:16 or 2.39:1", False),
              metavar="W:H", help="New aspect ratio. One side is kept and the other re-composed: by default "
                                  "the one that shrinks (the output fits inside the input); see --keep.")
@click.option("--keep", type=click.Choice(KEEP_SIDES), default="auto", show_default=True,
              help="Which side --aspect keeps: width, height, or auto (the one that lets the other shrink).")
@click.option("--size", "target_size", callback=_parse_pair("x", "WIDTHxHEIGHT in pixels such as 256x256", True),
              metavar="WxH", help="New width and height in pixels (of the working clip; see --working-size).")
@click.option("--width", type=click.IntRange(min=1), default=None, help="New width in pixels; the height is kept.")
@click.option("--height", type=click.IntRange(min=1), default=None, help="New height in pixels; the width is kept.")
@click.option("--width-scale", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Multiply the width by this (e.g. 1.5 for wider).")
@click.option("--height-scale", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Multiply the height by this.")
@click.option("--duration", type=FiniteFloat(min=0, min_open=True), default=None, metavar="SECONDS",
              help="New length in seconds; motion keeps its speed (more events, not slow motion).")
@click.option("--frames", type=click.IntRange(min=1), default=None, help="New length in frames.")
@click.option("--time-scale", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Multiply the length by this (2: twice as long, 0.5: half).")
@click.option("--loop", is_flag=True, help="Make the output loop seamlessly: its last frame leads into the first.")
@synthesis_command_options(
    size_alias=False, variation_noise=SynthesisConfig.noise_sigma,
    default_name="after the input and the request, e.g. clip_9x16.mp4 or clip_t2_loop.mp4, and "
                 "clip_9x16_{seed}.mp4 with --seed or -n above 1")
def retarget(inputs, aspect, keep, target_size, width, height, width_scale, height_scale, duration, frames,
             time_scale, loop, shared):
    """Re-compose INPUT at another aspect ratio or size without squashing or cropping, make it
    longer or shorter with motion at its natural speed, or make it loop seamlessly (any
    combination). Sizes are of the working clip (see --working-size) and rounded to even numbers for
    video. Without --variations or --seed the result has no noise: one faithful retarget; with
    them, each output gets its own noise for different re-compositions.

    \b
    Outputs are named after the request in a folder, e.g. clip_9x16.mp4, clip_t2_loop.mp4.

    
    Examples:
      vgpnn retarget clip.mp4 --aspect 9:16
      vgpnn retarget clip.mp4 --duration 15 --loop
      vgpnn retarget clip.mp4 --width-scale 1.5 --time-scale 2 -n 3 --seed 0
    """
    if target_size is not None:
        width, height = target_size
    request = TargetRequest(aspect=aspect, keep=keep, width=width, height=height, width_scale=width_scale,
                            height_scale=height_scale, frames=frames, duration=duration, time_scale=time_scale)
    asked_space = any(x is not None for x in (aspect, width, height, width_scale, height_scale))
    if not (asked_space or request.changes_length or loop):
        raise click.UsageError("nothing to change: give a new size (--aspect, --size, --width, --height, "
                               "--width-scale, --height-scale), a new length (--duration, --frames, "
                               "--time-scale) or --loop")
    config = shared.config()
    settings = JobSettings("retarget", tuple(inputs), shared, parameters={
                               "aspect": aspect, "keep": keep, "width": width, "height": height,
                               "width_scale": width_scale, "height_scale": height_scale, "frames": frames,
                               "duration": duration, "time_scale": time_scale, "loop": loop})
    explicit_coarsest_frames = click.get_current_context().get_parameter_source("coarsest_frames").name != "DEFAULT"

    default_stem = "_".join(part for part in ("{name}", request.label(), "loop" if loop else "",
                                              "{seed}" if shared.varied else "") if part)

    def plan(clip):
        request_for_clip = TargetRequest(**{**request.__dict__, "even": clip.kind != "image"})
        shape = plan_target_shape(tuple(clip.frames.shape[:3]), clip.fps, request_for_clip)
        check_shapes(tuple(clip.frames.shape[:3]), shape, config)
        length_kept = shape[0] == clip.frames.shape[0]
        notes = [f"output {shape[2]}x{shape[1]}, {shape[0]} frames"
                 + (f" ({float(shape[0] / clip.fps):.2f} s)" if clip.fps else "") + (", looping" if loop else "")]
        return Plan(target_shape=shape, keep_audio=length_kept,
                    audio_notice="audio not copied: the output's length differs from the input's", notes=notes)

    def synthesise(clip, plan, seeds, on_variation, progress):
        from ..apps.retarget import RetargetOptions, retarget as retarget_clip  # torch: only once there is work

        options = RetargetOptions(loop=loop, variations=len(seeds), seed=seeds[0], device=shared.device,
                                  batch_size=shared.batch_size, shrink_time=True if explicit_coarsest_frames else None)
        retarget_clip(clip.frames, plan.target_shape, config, options, on_variation=on_variation, progress=progress)

    run_command(settings, config, default_stem, plan, synthesise)
