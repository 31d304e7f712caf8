"""What every command shares: one-line errors with exit codes, output checks, notices, reports."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click
import torch

from ..config import SynthesisConfig
from ..errors import ConfigError, OutputError, VgpnnError
from ..memory import check_memory
from ..video import probe_clip, working_shape


def fail_cleanly(command):
    """Turn our errors into one line and an exit status; keep tracebacks for real bugs."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ConfigError as error:
            raise click.UsageError(str(error)) from error
        except VgpnnError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)
        except (MemoryError, torch.cuda.OutOfMemoryError):
            click.echo("error: out of memory; use a smaller --working-size, fewer --max-frames or a smaller "
                       "--batch-size", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted; no partial output was left behind", err=True)
            sys.exit(130)
    return wrapper


def config_record(config: SynthesisConfig) -> dict:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def notice_working_size(say, clip, short_side, max_frames) -> None:
    frames, height, width = clip.frames.shape[:3]
    original_height, original_width = clip.original_size
    if (height, width) != (original_height, original_width):
        say(f"working at {width}x{height} (input is {original_width}x{original_height}; "
            f"--working-size {short_side}; use --working-size native for full resolution)")
    if frames < clip.original_frame_count:
        say(f"using {frames} of {clip.original_frame_count} frames (--max-frames {max_frames}; "
            "0 for all)")


def refuse_if_too_big(source: Path, short_side, start_frame: int, max_frames: int, device: torch.device,
                      batch: int, config: SynthesisConfig) -> None:
    """Check memory from the file's headers, before decoding, when the whole clip or its native
    size was asked for: only then can the decoded clip itself be too big to hold. (Otherwise the
    library's own check, after the cheap read of a small clip, is enough.)"""
    if max_frames and short_side is not None:
        return
    shape = working_shape(probe_clip(source), short_side=short_side, start_frame=start_frame,
                          max_frames=max_frames or None)
    if shape[0] > 0:
        check_memory(device, shape, shape, batch, config)


def write_report(path: Path, record: dict, overwrite: bool) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(record, indent=2, default=str) + "\n")
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise OutputError(f"cannot write report '{path}': {error.strerror or error}") from error
