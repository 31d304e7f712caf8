"""The ``vgpnn`` command line: parse options, call the library, write files, report progress.

Exit status: 0 when every output was written, 1 on a failure (bad input, unwritable output),
2 on a usage error, 130 when interrupted (143 on SIGTERM; 141 when the reader of `info` or
`evaluate` output goes away). Errors are one line on stderr, never a traceback.
One module per command; ``common`` and ``options`` hold what they share.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

import click


def _print_versions(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from .versions import version_lines
    for line in version_lines():
        click.echo(line)
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_versions,
              help="Show the versions of vgpnn, Python, torch, PyAV, FFmpeg, numba, faiss and triton, "
                   "and the device vgpnn would use, then exit.")
def main():
    """Make new videos out of one short video, with no training (VGPNN)."""


from . import analogy, evaluate, extend, generate, info, inpaint, interpolate, propagate, retarget  # noqa: E402,F401  (each registers its command)


def run() -> None:
    """The ``vgpnn`` program: the console script and ``python -m vgpnn``.

    Once the command is done (every output closed and renamed, the report written), the process
    ends without the interpreter's finalisation: that collects and destroys every object alive,
    and torch and numba leave hundreds of thousands of them from their imports (0.6 s of a
    3.6-second command on a 2-core CPU), and torch then tears the CUDA context down (0.2 s on an
    H100: `import torch`, one operation on the GPU and the exit took 1.57 s against 1.36 s). The
    atexit handlers (Ray's shutdown, temporary folders, logging) still run, and the standard
    streams are flushed. Where a thread that is not a daemon still runs, the exit is the
    interpreter's own, which waits for it.
    """
    _open_closed_streams()
    try:
        main()
    except SystemExit as done:
        _end(done.code)
    # click's standalone mode always ends in SystemExit; any other exception goes up as usual


def _open_closed_streams() -> None:
    """A standard stream closed when the program started (``vgpnn ... >&-``, some daemons) is
    None in Python, and the next file opened would take its descriptor: an output video could
    get the descriptor FFmpeg logs to. Each such one is opened on the null device, in its own
    place, so what would have been printed goes nowhere and the command runs as usual."""
    for descriptor, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is not None:
            continue
        null = os.open(os.devnull, os.O_RDONLY if mode == "r" else os.O_WRONLY)
        if null != descriptor:
            os.dup2(null, descriptor)
            os.close(null)
        setattr(sys, name, open(descriptor, mode, closefd=False))


def _end(code) -> None:
    others = [thread for thread in threading.enumerate() if thread is not threading.main_thread()]
    if any(not thread.daemon for thread in others) or not hasattr(atexit, "_run_exitfuncs"):
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # as the interpreter does for sys.exit("message")
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: started with that descriptor closed
                stream.flush()
        except (OSError, ValueError):  # a reader that went away, or a stream already closed
            pass
    os._exit(status)


__all__ = ["main", "run"]
