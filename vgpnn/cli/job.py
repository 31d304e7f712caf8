"""The flow every synthesising command shares, one input at a time inside the batch runner.

Per input: check memory from the headers -> read the clip -> notices (downscaled, trimmed,
damaged, variable frame rate) -> the command's plan for this clip -> synthesise, writing each
output as soon as it exists, with its report record -> preview sheet. A command supplies only
what differs: how its outputs are named, its plan for a clip and the call into the library.
The runner (``batch.py``) does expansion, resume, failures, Ctrl-C, the report and the summary.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable

from .. import kernels
from ..config import SynthesisConfig
from ..device import resolve_device, start_cuda_driver
from ..inputs import input_kind
from ..naming import default_format, plan_outputs
from ..preview import contact_sheet
from .progress import ProgressBars
from ..video import Clip, is_variable_frame_rate, read_clip, seekable_input, write_video
from ..errors import OutputError
from .batch import BatchSettings, Job, PlannedOutput, run_batch
from .options import AUTO_SIZE, DEFAULT_SHORT_SIDE, SharedOptions
from .common import config_record, notice_working_size, refuse_if_too_big


@dataclass(frozen=True)
class JobSettings:
    """One synthesising command's run: its name, inputs and options."""

    command: str  # the subcommand, for the report
    inputs: tuple[str, ...]  # INPUT arguments as given
    shared: SharedOptions  # the options every synthesising command shares
    parameters: dict = field(default_factory=dict)  # the command's own options, for the report
    other_inputs: tuple[Path, ...] = ()  # inputs besides INPUT... (analogy's APPEARANCE): never overwritten
    engine_memory: bool = True  # check the synthesis engine's memory model before reading (False: the command does not run the engine)
    estimate: bool = True  # say the engine's modelled cost before work, and weight the levels bar by it (False: the command's work is not the engine's)
    # With estimate False: the command's own cost model, (working shape, device type) -> seconds
    # per output on the reference device (vgpnn.estimate), said before work as the engine's is.
    own_cost: Callable[[tuple[int, int, int], str], float] | None = None


@dataclass
class Plan:
    """What a command decided for one clip."""

    target_shape: tuple[int, int, int]
    keep_audio: bool  # copy the input's audio track (only sensible when the length is kept)
    audio_notice: str = "audio not copied"  # said when keep_audio is False and the input has audio
    notes: list[str] = field(default_factory=list)  # said before synthesis starts
    sheet_rows: list = field(default_factory=list)  # extra clips for the preview, after the input's row
    fps: Fraction | None = None  # the outputs' frame rate; None: the input's


# (clip, plan, seeds, on_variation(index into seeds, frames, levels), progress)
Synthesise = Callable[[Clip, Plan, list[int], Callable, Callable], None]


def run_command(settings: JobSettings, config: SynthesisConfig, default_stem: str,
                plan_clip: Callable[[Clip], Plan], synthesise: Synthesise) -> None:
    """Run the command over every input and exit with the batch's status."""
    options = settings.shared
    # Resolved here, so a device this machine lacks is a usage error before any work; on Ray, in
    # each task: the device is the worker's, and the driver may have no GPU at all.
    local_device = None
    if options.executor == "local":
        start_cuda_driver(options.device)  # runs while resolve_device imports torch
        local_device = resolve_device(options.device)
    seed = options.first_seed if options.first_seed is not None else secrets.randbelow(2**31 - options.variations)
    seeds = [seed + i for i in range(options.variations)]
    parameters = config_record(config) | settings.parameters | {
        "variations": options.variations, "seed": seed, "batch_size": options.batch_size,
        "size": options.short_side or "native", "max_frames": options.max_frames,
        "start_frame": options.start_frame, "device": options.device, "output": options.output,
        "format": options.output_format, "overwrite": options.overwrite,
        "skip_existing": options.skip_existing,
        "preview": None if options.preview is None else str(options.preview),
        "report": None if options.report is None else str(options.report)}

    rates = {}  # the device's measured speed, once per run (vgpnn.estimate)

    def plan(source: Path) -> list[PlannedOutput]:
        paths = plan_outputs(options.output, source, seeds,
                             options.output_format or default_format(input_kind(source), source),
                             default_stem=default_stem)
        protected = {os.path.realpath(other) for other in settings.other_inputs}
        for path in paths:
            if os.path.realpath(path) in protected:
                raise OutputError(f"output '{path}' is an input of this command; choose another -o")
        return [PlannedOutput(path, {"seed": s}) for path, s in zip(paths, seeds)]

    def make(job: Job) -> None:
        # A pipe or FIFO is copied once; every read below (memory check, clip, frame rate,
        # audio) uses the copy, and messages still name the input as given.
        with seekable_input(job.source) as source:
            make_from(job, source)

    def make_from(job: Job, source: Path) -> None:
        started = time.perf_counter()
        torch_device = local_device or resolve_device(options.device)
        kernels.prepare(torch_device)  # GPU set-up in the background while the input is probed and read
        short_side = _working_side(source, options, config, torch_device, rates)
        if settings.engine_memory:
            refuse_if_too_big(source, short_side, options.start_frame, options.max_frames,
                              torch_device, min(options.batch_size, len(job.todo)), config)
        clip = read_clip(source, short_side=short_side, start_frame=options.start_frame,
                         max_frames=options.max_frames or None)
        read_seconds = time.perf_counter() - started
        # Said once, when the first input has been read: an input that fails says only its error.
        job.say_once(f"seed {seed}" + (f" (outputs use {seeds[0]}..{seeds[-1]})" if len(seeds) > 1 else "")
                     + f"; device {torch_device}")
        _notices(job.say, clip, settings, job.source, short_side, torch_device)
        clip_plan = plan_clip(clip)
        for note in clip_plan.notes:
            job.say(note)
        whole_clip = len(clip.frames) == clip.original_frame_count and options.start_frame == 0
        keep_audio = clip_plan.keep_audio and clip.kind == "video" and clip.has_audio and whole_clip
        if clip.has_audio and not keep_audio:
            job.say(clip_plan.audio_notice if not clip_plan.keep_audio
                    else "audio not copied: the outputs cover only part of the input (use --max-frames 0)")
        sheet_rows = [clip.frames, *clip_plan.sheet_rows]
        weights = None
        if settings.estimate:
            weights = _estimate(job.say, tuple(clip.frames.shape[:3]), clip_plan.target_shape, config, torch_device,
                                len(job.todo), rates)
        elif settings.own_cost is not None:
            _say_cost(job.say, settings.own_cost(tuple(clip.frames.shape[:3]), torch_device.type), torch_device,
                      len(job.todo), rates)
        bars = ProgressBars(enabled=not options.quiet and sys.stderr.isatty(), total=len(job.todo),
                            level_weights=weights)

        fps = clip_plan.fps or clip.fps

        def write_one(index, frames, levels):
            write_started = time.perf_counter()
            write_video(job.outputs[index].path, frames, fps, overwrite=job.overwrite,
                        audio_from=clip.path if keep_audio else None)
            job.written(index, {
                "device": str(torch_device), "backends": sorted({b for level in levels for b in level.backends}),
                "working_shape": list(clip.frames.shape[:3]), "output_shape": list(frames.shape[:3]),
                "fps": str(fps), "audio": keep_audio,
                "seconds": {"read": round(read_seconds, 3),
                            "synthesis": round(sum(level.seconds for level in levels), 3),
                            "write": round(time.perf_counter() - write_started, 3)}})
            sheet_rows.append(frames)
            bars.variation_done()

        try:
            for run in _consecutive_runs(job.todo):
                synthesise(clip, clip_plan, [seeds[i] for i in run],
                           lambda i, frames, levels, first=run[0]: write_one(first + i, frames, levels),
                           bars.level_done)
        finally:
            bars.close()
        if job.preview is not None:
            write_video(job.preview, contact_sheet(sheet_rows), None, overwrite=True)

    batch = BatchSettings(settings.command, settings.inputs, options.overwrite, options.skip_existing,
                          options.quiet, options.report, None if options.preview is None else str(options.preview),
                          parameters, options.execution)
    sys.exit(run_batch(batch, plan, make))


PairSynthesise = Callable[[Clip, Clip, Plan, list[int], Callable, Callable], None]  # (clip, second, plan, seeds, ...)


def run_pair_command(settings: JobSettings, second_path: Path, second_role: str, config: SynthesisConfig,
                     default_stem: str, plan_pair: Callable[[Clip, Clip], Plan],
                     synthesise: PairSynthesise) -> None:
    """:func:`run_command` for commands with a second input clip, read once with the same
    working size and frame range (``second_role`` names it in notices and the report). The
    preview shows each input, then the second clip, then the outputs."""
    options = settings.shared
    if options.short_side == AUTO_SIZE:
        # Two inputs read at one size: the fixed default rather than a choice from either alone.
        options = replace(options, short_side=DEFAULT_SHORT_SIDE)
        settings = replace(settings, shared=options)
    second = read_clip(second_path, short_side=options.short_side, start_frame=options.start_frame,
                       max_frames=options.max_frames or None)
    frames, height, width = second.frames.shape[:3]
    settings = replace(settings, other_inputs=(*settings.other_inputs, second_path), parameters={
        **settings.parameters, second_role: str(second_path), f"{second_role}_working_shape": [frames, height, width]})

    def plan_clip(clip: Clip) -> Plan:
        plan = plan_pair(clip, second)
        plan.notes.insert(0, f"{second_role}: {width}x{height}, {frames} frame{'s' * (frames != 1)}")
        plan.sheet_rows.insert(0, second.frames)
        return plan

    def synthesise_clip(clip, plan, seeds, on_variation, progress):
        synthesise(clip, second, plan, seeds, on_variation, progress)

    run_command(settings, config, default_stem, plan_clip, synthesise_clip)


# A job whose estimate on the reference device is under this many seconds gets no notice (and
# costs no speed measurement); one estimated over LONG_JOB seconds here gets a warning.
NOTICE_SECONDS = 20.0
LONG_JOB_SECONDS = 600.0


def _estimate(say, source_shape, target_shape, config: SynthesisConfig, device, outputs: int,
              rates: dict) -> list[float] | None:
    """Say what the job will cost before it starts (every command, from vgpnn.estimate's
    model), and warn when it is long; returns each level's modelled share for the progress
    bar (None where the model cannot walk the job)."""
    from ..errors import ConfigError
    from ..estimate import level_seconds, plan_levels, reference_seconds

    try:
        levels = plan_levels(source_shape, target_shape, config, device.type)
    except ConfigError:
        return None
    _say_cost(say, reference_seconds(levels, device.type), device, outputs, rates)
    return level_seconds(levels, device.type)


def _say_cost(say, reference: float, device, outputs: int, rates: dict) -> None:
    """Say a job's modelled cost on this device, given ``reference`` seconds per output on the
    reference device, when it is not short; warn when it is long."""
    if reference * outputs < NOTICE_SECONDS:
        return
    from ..estimate import REFERENCE_MATMUL_RATE, matmul_rate

    if device not in rates:
        rates[device] = matmul_rate(device)
    each = reference * REFERENCE_MATMUL_RATE.get(device.type, REFERENCE_MATMUL_RATE["cpu"]) / rates[device]
    total = each * outputs
    say(f"estimated {_duration(each)} per output" + (f", {_duration(total)} for {outputs}" if outputs > 1 else "")
        + f" on {device} (a model of the work, not a measurement)")
    if total > LONG_JOB_SECONDS:
        say(f"warning: this is a long job ({_duration(total)}); a smaller --working-size, fewer "
            "frames (--max-frames) or a GPU make it shorter")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 5400:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"


def _working_side(source: Path, options: SharedOptions, config: SynthesisConfig, device, rates: dict):
    """The shorter side to read ``source`` at: as asked, or with 'auto' chosen from the input's
    headers, the job and this device (:func:`vgpnn.estimate.automatic_short_side`)."""
    if options.short_side != AUTO_SIZE:
        return options.short_side
    from ..estimate import automatic_short_side, matmul_rate
    from ..video import probe_clip, working_shape

    probe = probe_clip(source)

    def shape_at(side):
        return working_shape(probe, short_side=side, start_frame=options.start_frame,
                             max_frames=options.max_frames or None)

    def rate():
        if device not in rates:
            rates[device] = matmul_rate(device)
        return rates[device]

    return automatic_short_side(min(probe["height"], probe["width"]), shape_at, config, device, rate)


def _notices(say, clip: Clip, settings: JobSettings, name: Path, short_side, device) -> None:
    """``name``: the input as given, which ``clip.path`` is not when a pipe was copied."""
    asked = settings.shared.short_side
    reason = (f"--working-size auto: the largest size estimated to take about a minute or less per output on "
              f"{device}" if asked == AUTO_SIZE else f"--working-size {asked}")
    notice_working_size(say, clip, reason, settings.shared.max_frames)
    if clip.stated_frame_count and clip.original_frame_count < clip.stated_frame_count:
        say(f"'{name}' looks truncated or damaged: {clip.original_frame_count} of the "
            f"{clip.stated_frame_count} frames it lists could be decoded; using those")
    elif clip.kind == "video" and is_variable_frame_rate(clip.path):
        say(f"'{name}' has a variable frame rate; its frames are taken as evenly spaced at "
            f"the average rate, {float(clip.fps):.3f} fps")


def _consecutive_runs(indices: list[int]) -> list[list[int]]:
    """[0, 1, 3, 4, 5] -> [[0, 1], [3, 4, 5]]: seeds of a run are consecutive, as the apps take them."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs
