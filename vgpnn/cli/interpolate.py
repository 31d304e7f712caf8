"""``vgpnn interpolate``: more frames per second, every input frame kept as it is."""

from __future__ import annotations

from fractions import Fraction

import click

from ..errors import InputError
from ..flow_presets import DIS_PRESETS
from . import main
from .batch import inputs_argument
from .job import JobSettings, Plan, run_command
from .options import FiniteFloat, synthesis_command_options


@main.command()
@inputs_argument
@click.option("--factor", type=click.IntRange(min=2), default=None,
              help="New frames per input frame: N - 1 new frames between each pair, N times the frame "
                   "rate, (frames - 1) x N + 1 frames in all [default: 2, unless --fps is given].")
@click.option("--fps", "rate", type=FiniteFloat(min=0, min_open=True), default=None, metavar="RATE",
              help="Frame rate to reach. A whole multiple of the input's is that factor; otherwise the "
                   "smallest whole factor that reaches at least RATE is used (every input frame kept; "
                   "the output's rate is that multiple, e.g. 25 fps asked for 60 gives 75), or, with "
                   "--exact-fps, exactly RATE.")
@click.option("--exact-fps", is_flag=True,
              help="With --fps: frames at exactly RATE per second. Input frames that fall between the new "
                   "frame times are replaced by new frames at those times (only those on the grid are kept).")
@click.option("--flow", type=click.Choice(list(DIS_PRESETS)), default="fine", show_default=True,
              help="Optical flow setting (OpenCV DIS): fine works at full resolution; the others are faster.")
@click.option("--repair/--no-repair", default=False, show_default=True,
              help="Re-make the pixels the warp cannot be sure of (the two frames disagree) from the clip's "
                   "own patches. Much slower, and not shown to score better than the warp against real "
                   "frames (see the README).")
@click.option("--cuts/--no-cuts", "find_cuts", default=True, show_default=True,
              help="Find scene cuts and hold frames across them instead of morphing one shot into the next.")
@synthesis_command_options(variation_noise=0.0, default_short_side=None, default_max_frames=0,
                           default_name="{name}_x{factor}.mp4 or {name}_{fps}fps.mp4")
def interpolate(inputs, factor, rate, exact_fps, flow, repair, find_cuts, shared):
    """Make INPUT smoother: new frames between its frames, from the motion between them (optical
    flow both ways, both neighbours warped to the new frame's time and blended where each sees
    the point), optionally repaired from the clip's own patches. Every input frame is kept
    unchanged (at the working size: full resolution by default); audio is kept. Across a scene
    cut nothing is morphed: the new frames hold the frame before or after it.

    \b
    Examples:
      vgpnn interpolate clip.mp4 --factor 2 -o smooth.mp4
      vgpnn interpolate clip.mp4 --fps 60
      vgpnn interpolate clip.mp4 --fps 60 --exact-fps --working-size 360
    """
    if factor is not None and rate is not None:
        raise click.UsageError("give either --factor or --fps, not both")
    if exact_fps and rate is None:
        raise click.UsageError("--exact-fps needs --fps")
    if shared.variations > 1:
        raise click.UsageError("interpolate makes one output per input; -n/--variations does not apply")
    if shared.noise_sigma:
        raise click.UsageError("interpolate adds no noise; --noise does not apply")
    if rate is None:
        factor = factor or 2
    from ..apps.interpolate import (InterpolateOptions, detect_scene_cuts, factor_for_rate,  # torch: only with work
                                    interpolate as interpolate_clip, resampled_times, whole_factor_times)

    config = shared.config()
    settings = JobSettings("interpolate", tuple(inputs), shared, parameters={
        "factor": factor, "fps": rate, "exact_fps": exact_fps, "flow": flow, "repair": repair, "cuts": find_cuts},
        estimate=False)  # flow and warps, and at most a repair of parts: not what the engine's model walks
    found: dict = {}
    if rate is None:
        default_stem = f"{{name}}_x{factor}"
    else:
        default_stem = f"{{name}}_{rate:g}fps"
    default_stem += "_{seed}" if shared.seed is not None else ""

    def plan(clip):
        count, height, width = clip.frames.shape[:3]
        if count < 2:
            raise InputError(f"'{clip.path}' is a single image; expected a video of at least 2 frames to "
                             "interpolate between")
        fps = clip.fps or Fraction(25)
        if rate is None:
            times, new_fps, how = whole_factor_times(count, factor), fps * factor, f"{factor} x"
        elif exact_fps:
            new_fps = Fraction(str(rate))
            times, how = resampled_times(count, fps, new_fps), "exactly"
        else:
            whole = factor_for_rate(fps, rate)
            times, new_fps = whole_factor_times(count, whole), fps * whole
            how = f"{whole} x" + ("" if abs(float(new_fps) - rate) <= 1e-3 * rate else f"; {rate:g} fps asked")
        kept = sum(time.denominator == 1 for time in times)
        found["times"] = times
        found["cuts"] = detect_scene_cuts(clip.frames, shared.device) if find_cuts else []
        notes = [f"output {width}x{height}, {len(times)} frames at {float(new_fps):.3f} fps ({how}); "
                 f"{kept} of the {count} input frames kept unchanged"]
        if found["cuts"]:
            shown = ", ".join(str(cut + 1) for cut in found["cuts"][:8])
            notes.append(f"scene cut{'s' * (len(found['cuts']) > 1)} after input frame{'s' * (len(found['cuts']) > 1)} "
                         f"{shown}{' ...' if len(found['cuts']) > 8 else ''}: frames held there, not morphed")
        return Plan(target_shape=(len(times), height, width), keep_audio=True, notes=notes, fps=new_fps)

    def synthesise(clip, plan, seeds, on_variation, progress):
        options = InterpolateOptions(device=shared.device, flow=flow, repair=repair, detect_cuts=find_cuts,
                                     seed=seeds[0])
        result = interpolate_clip(clip.frames, None, times=found["times"], cuts=found["cuts"], config=config,
                                  options=options, progress=progress)
        on_variation(0, result.frames, result.levels)

    run_command(settings, config, default_stem, plan, synthesise)
