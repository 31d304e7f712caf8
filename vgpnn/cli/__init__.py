"""The ``vgpnn`` command line: parse options, call the library, write files, report progress.

Exit status: 0 when every output was written, 1 on a failure (bad input, unwritable output),
2 on a usage error, 130 when interrupted. Errors are one line on stderr, never a traceback.
One module per command; ``common`` and ``options`` hold what they share.
"""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vgpnn")
def main():
    """Make new videos out of one short video, with no training (VGPNN)."""


from . import analogy, evaluate, generate, info, inpaint, retarget  # noqa: E402,F401  (each registers its command)

__all__ = ["main"]
