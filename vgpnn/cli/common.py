"""What every command shares: one-line errors with exit codes, output checks, notices, reports."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from ..config import SynthesisConfig
from ..errors import COARSEST_SIZE, CPU_DEVICE, OVERWRITE, SMALLER_JOB, ConfigError, OutputError, VgpnnError
from ..memory import check_memory
from ..video import probe_clip, working_shape, write_text_atomically

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as shells report a tool that SIGPIPE stopped


# The library names a remedy by its Python argument; a command-line user needs the flag.
_FLAGS = {OVERWRITE: "-y/--overwrite",
          SMALLER_JOB: "a smaller --working-size, fewer --max-frames or a smaller --batch-size",
          CPU_DEVICE: "--device cpu or auto", COARSEST_SIZE: "a larger --coarsest-size"}


def cli_message(error: Exception) -> str:
    """``error``'s message as the command line says it: its flags for the library's arguments."""
    message = str(error)
    for argument, flag in _FLAGS.items():
        message = message.replace(argument, flag)
    return message


def out_of_memory_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "out of memory": torch's CUDA one only once torch is loaded (it
    cannot have been raised before, and importing torch for an except clause costs seconds)."""
    torch = sys.modules.get("torch")
    return (MemoryError,) if torch is None else (MemoryError, torch.cuda.OutOfMemoryError)


def torch_version() -> str | None:
    """torch's version for reports, without importing torch when nothing has yet."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.__version__
    from importlib import metadata
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def fail_cleanly(command):
    """Turn our errors into one line and an exit status; keep tracebacks for real bugs."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ConfigError as error:
            raise click.UsageError(cli_message(error)) from error
        except VgpnnError as error:
            click.echo(f"error: {cli_message(error)}", err=True)
            sys.exit(1)
        except out_of_memory_errors():
            click.echo("error: out of memory; use a smaller --working-size, fewer --max-frames or a smaller "
                       "--batch-size", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted; no partial output was left behind", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # The reader of stdout went away (``vgpnn info ... | head -1``): what it did not read
            # is lost, so stop quietly with the status a shell gives a tool killed by SIGPIPE.
            silence_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
    return wrapper


def silence_stdout() -> None:
    """Send what is still to be written to stdout to the null device: once the reader of a pipe
    has gone, every later write (Python's own flush at exit included, which would print
    "Exception ignored ... BrokenPipeError") would fail again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (stdout replaced)
        pass


def config_record(config: SynthesisConfig) -> dict:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def notice_working_size(say, clip, reason: str, max_frames) -> None:
    """``reason``: why the working size is what it is (the option as given, or auto's choice)."""
    frames, height, width = clip.frames.shape[:3]
    original_height, original_width = clip.original_size
    if (height, width) != (original_height, original_width):
        say(f"working at {width}x{height} (input is {original_width}x{original_height}; "
            f"{reason}; use --working-size native for full resolution)")
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot write report '{path}': {error.strerror or error}") from error
    write_text_atomically(path, json.dumps(record, indent=2, default=str) + "\n")
