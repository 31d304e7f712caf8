"""One input in, its outputs written: the flow every synthesising command shares.

read the clip -> plan and check output names -> announce what will happen -> synthesise,
writing each output as soon as it exists -> preview sheet -> report. A command supplies only
what differs: the target's shape, how outputs are named, and the call into the library.
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click

from ..config import SynthesisConfig
from ..device import resolve_device
from ..naming import default_format, plan_outputs
from ..preview import contact_sheet
from ..progress import ProgressBars
from ..video import Clip, read_clip, write_video
from .common import check_outputs, config_record, notice_working_size, write_report


@dataclass
class JobSettings:
    """What the shared options of a synthesising command asked for."""

    command: str
    variations: int
    seed: int | None
    batch_size: int
    short_side: int | None
    max_frames: int
    start_frame: int
    device: str
    output: str | None
    output_format: str | None
    overwrite: bool
    quiet: bool
    report: Path | None
    preview: Path | None
    parameters: dict = field(default_factory=dict)  # the command's own options, for the report

    def say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)


@dataclass
class Plan:
    """What a command decided for one clip."""

    target_shape: tuple[int, int, int]
    default_stem: str  # output name without extension when -o is a folder
    keep_audio: bool  # copy the input's audio track (only sensible when the length is kept)
    audio_notice: str = "audio not copied"  # said when keep_audio is False and the input has audio
    notes: list[str] = field(default_factory=list)  # said before synthesis starts


Synthesise = Callable[[Clip, Plan, list[int], Callable, Callable], None]  # (clip, plan, seeds, on_variation, progress)


def run_job(settings: JobSettings, input_path: Path, config: SynthesisConfig,
            plan_clip: Callable[[Clip], Plan], synthesise: Synthesise) -> None:
    torch_device = resolve_device(settings.device)
    seed = settings.seed if settings.seed is not None else secrets.randbelow(2**31 - settings.variations)
    seeds = [seed + i for i in range(settings.variations)]
    clip = read_clip(input_path, short_side=settings.short_side, start_frame=settings.start_frame,
                     max_frames=settings.max_frames or None)
    plan = plan_clip(clip)
    outputs = plan_outputs(settings.output, input_path, seeds,
                           settings.output_format or default_format(clip.kind, input_path),
                           default_stem=plan.default_stem)
    check_outputs(outputs + ([settings.preview] if settings.preview else []), input_path, settings.overwrite)
    notice_working_size(settings.say, clip, settings.short_side, settings.max_frames)
    for note in plan.notes:
        settings.say(note)
    settings.say(f"seed {seed}" + (f" (outputs use {seeds[0]}..{seeds[-1]})" if len(seeds) > 1 else "")
                 + f"; device {torch_device}")
    whole_clip = len(clip.frames) == clip.original_frame_count and settings.start_frame == 0
    keep_audio = plan.keep_audio and clip.kind == "video" and clip.has_audio and whole_clip
    if clip.has_audio and not keep_audio:
        settings.say(plan.audio_notice if not plan.keep_audio
                     else "audio not copied: the outputs cover only part of the input (use --max-frames 0)")

    records, sheet_rows = [], [clip.frames]
    started = time.perf_counter()
    bars = ProgressBars(enabled=not settings.quiet and sys.stderr.isatty(), total=len(seeds))

    def write_one(index, frames, levels):
        path = write_video(outputs[index], frames, clip.fps, overwrite=settings.overwrite,
                           audio_from=clip.path if keep_audio else None)
        records.append({"output": str(path), "seed": seeds[index], "audio": keep_audio,
                        "seconds": round(time.perf_counter() - started, 3),
                        "backends": sorted({b for level in levels for b in level.backends})})
        sheet_rows.append(frames)
        bars.variation_done()
        if not settings.quiet:
            bars.write(str(path))

    try:
        synthesise(clip, plan, seeds, write_one, bars.level_done)
    finally:
        bars.close()
    if settings.preview is not None:
        write_video(settings.preview, contact_sheet(sheet_rows), None, overwrite=settings.overwrite)
    if settings.report is not None:
        write_report(settings.report, {
            "command": settings.command, "input": str(input_path), "seed": seed,
            "variations": settings.variations, "batch_size": settings.batch_size,
            "device": str(torch_device), "working_shape": list(clip.frames.shape[:3]),
            "target_shape": list(plan.target_shape), "fps": str(clip.fps),
            "parameters": config_record(config) | settings.parameters | {
                "size": settings.short_side, "max_frames": settings.max_frames,
                "start_frame": settings.start_frame},
            "outputs": records, "seconds": round(time.perf_counter() - started, 3)}, overwrite=True)


PairSynthesise = Callable[[Clip, Clip, Plan, list[int], Callable, Callable], None]  # (clip, second, plan, seeds, ...)


def run_pair_job(settings: JobSettings, input_path: Path, second_path: Path, second_role: str,
                 config: SynthesisConfig, plan_pair: Callable[[Clip, Clip], Plan],
                 synthesise: PairSynthesise) -> None:
    """:func:`run_job` for commands with a second input clip (``second_role`` names it in notices
    and the report), read with the same working size and frame range. The preview sheet shows
    the input, then the second clip, then each output."""
    second = read_clip(second_path, short_side=settings.short_side, start_frame=settings.start_frame,
                       max_frames=settings.max_frames or None)
    if settings.preview is not None:
        check_outputs([settings.preview], input_path, settings.overwrite)
    frames, height, width = second.frames.shape[:3]
    inner = JobSettings(**{**settings.__dict__, "preview": None, "parameters": {
        **settings.parameters, second_role: str(second_path), f"{second_role}_working_shape": [frames, height, width]}})
    rows = []

    def plan_clip(clip: Clip) -> Plan:
        rows.append(clip.frames)
        plan = plan_pair(clip, second)
        plan.notes.insert(0, f"{second_role}: {width}x{height}, {frames} frame{'s' * (frames != 1)}")
        return plan

    def synthesise_clip(clip, plan, seeds, on_variation, progress):
        def keep_row(index, output_frames, levels):
            on_variation(index, output_frames, levels)
            rows.append(output_frames)
        synthesise(clip, second, plan, seeds, keep_row, progress)

    run_job(inner, input_path, config, plan_clip, synthesise_clip)
    if settings.preview is not None:
        write_video(settings.preview, contact_sheet([rows[0], second.frames, *rows[1:]]), None,
                    overwrite=settings.overwrite)
