"""Start-up: help and usage errors load no torch, numba, faiss, triton, cv2 or ray (each costs seconds
to import); only a command with work to do loads them. Behaviour, not timing: the seconds are
measured in benchmarks/bench_speed.py."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numba", "faiss", "triton", "cv2", "ray")

# Runs the command line in this process with the given arguments, then prints which heavy
# modules were loaded (click's standalone mode off, so exit codes come back as exceptions).
SCRIPT = textwrap.dedent("""
    import sys
    import click
    from vgpnn.cli import main
    try:
        main(sys.argv[1:], standalone_mode=False)
    except (click.ClickException, click.exceptions.Exit, SystemExit):
        pass
    print("loaded:", *(name for name in %r if name in sys.modules))
""" % (HEAVY,))


def loaded_after(*arguments: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", SCRIPT, *arguments], cwd=REPOSITORY,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1].split()
    assert last[0] == "loaded:", result.stdout
    return last[1:]


@pytest.mark.parametrize("arguments", [
    ("--help",),
    ("generate", "--help"),
    ("retarget", "--help"),
    ("analogy", "--help"),
    ("inpaint", "--help"),
    ("propagate", "--help"),
    ("interpolate", "--help"),
    ("extend", "--help"),
    ("evaluate", "--help"),
    ("info", "--help"),
    ("generate", "clip.mp4", "--no-such-option"),  # a usage error
    ("retarget", "clip.mp4"),  # nothing to change: a usage error raised by the command itself
])
def test_help_and_usage_errors_load_no_heavy_module(arguments):
    assert loaded_after(*arguments) == []


def test_python_dash_m_help_runs_without_heavy_modules():
    """The same through ``python -m vgpnn``, as users run it (the entry point's own imports)."""
    script = ("import runpy, sys; sys.argv = ['vgpnn', '--help']\n"
              "try: runpy.run_module('vgpnn', run_name='__main__')\n"
              "except SystemExit: pass\n"
              f"print('loaded:', *(n for n in {HEAVY!r} if n in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPOSITORY, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert result.stdout.strip().splitlines()[-1].split() == ["loaded:"]


def test_analogy_help_defaults_are_the_library_defaults():
    from vgpnn.apps.analogy import AnalogyOptions
    from vgpnn.cli import analogy

    assert analogy.DEFAULT_BINS == AnalogyOptions.structure_bins == AnalogyOptions.appearance_bins


def test_propagate_help_defaults_are_the_apps():
    """cli/propagate.py spells PropagateOptions' defaults out so that its help loads no torch."""
    from vgpnn.apps.propagate import PropagateOptions
    from vgpnn.cli import propagate

    assert propagate.DEFAULT_PATCH_SIZE == PropagateOptions.patch_size
    assert propagate.DEFAULT_TEMPORAL_WEIGHT == PropagateOptions.temporal_weight


def test_the_program_leaves_its_objects_out_of_the_exits_garbage_collections():
    """The console script and ``python -m vgpnn`` freeze what is alive before the interpreter's
    exit collects it (seconds' worth after torch and numba); a handler registered before the
    program starts runs after the freeze and sees it."""
    assert 'vgpnn = "vgpnn.cli:run"' in (REPOSITORY / "pyproject.toml").read_text()  # the console script
    code = ("import atexit, gc, runpy, sys\n"
            "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
            "sys.argv = ['vgpnn', '--help']\n"
            "try: runpy.run_module('vgpnn', run_name='__main__')\n"
            "except SystemExit: pass\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "frozen at exit: True"
