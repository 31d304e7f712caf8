"""The ``vgpnn`` command line: parse options, call the library, write files, report progress.

Exit status: 0 when every output was written, 1 on a failure (bad input, unwritable output),
2 on a usage error, 130 when interrupted (143 on SIGTERM; 141 when the reader of `info` or
`evaluate` output goes away). Errors are one line on stderr, never a traceback.
One module per command; ``common`` and ``options`` hold what they share.
"""

from __future__ import annotations

import atexit
import gc

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

    The interpreter's exit ends with garbage collections over every object alive, and torch and
    numba leave hundreds of thousands of them from their imports: 0.6 s of a 3.6-second command on
    a 2-core CPU, after the work is done. Every output is closed and renamed before the command
    returns, so those objects are frozen out of the exit's collections; atexit handlers
    registered later (Ray's shutdown, temporary folders) still run before this one.
    """
    atexit.register(gc.freeze)
    main()


__all__ = ["main", "run"]
