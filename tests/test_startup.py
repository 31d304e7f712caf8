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
    result = _program(["--help"], f"atexit.register(lambda: print('loaded:', *(n for n in {HEAVY!r} if n in sys.modules)))")
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


def _program(arguments, before=""):
    """``python -m vgpnn ARGUMENTS`` in a new process, after the Python code ``before``."""
    code = (f"import atexit, runpy, sys, threading, time\n{before}\n"
            f"sys.argv = ['vgpnn', *{list(arguments)!r}]\n"
            "runpy.run_module('vgpnn', run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True,
                          timeout=120)


class_with_a_finaliser = """
class Finalised:
    def __del__(self):
        print('finalised', flush=True)
kept = Finalised()
atexit.register(lambda: print('handler ran', flush=True))
"""


@pytest.mark.parametrize("arguments, status", [(["--help"], 0), (["generate", "--no-such-option"], 2)])
def test_the_program_ends_without_the_interpreters_finalisation_but_with_its_handlers_and_status(arguments, status):
    """The console script and ``python -m vgpnn`` skip the interpreter's finalisation (seconds'
    worth of objects after torch and numba, and the CUDA context's teardown): an object left
    alive is never finalised, but atexit handlers run, output is flushed into a pipe, and the
    exit status is the command's."""
    assert 'vgpnn = "vgpnn.cli:run"' in (REPOSITORY / "pyproject.toml").read_text()  # the console script
    result = _program(arguments, class_with_a_finaliser)
    assert result.returncode == status, result.stderr
    assert result.stdout.splitlines()[-1] == "handler ran"
    assert "finalised" not in result.stdout
    assert ("Usage: vgpnn" in result.stdout) == (status == 0)
    assert ("No such option" in result.stderr) == (status == 2)


def test_the_program_waits_for_a_thread_that_is_not_a_daemon(tmp_path):
    marker = tmp_path / "thread-done"
    before = (f"threading.Thread(target=lambda: (time.sleep(0.5), open({str(marker)!r}, 'w').close())).start()\n"
              + class_with_a_finaliser)
    result = _program(["--help"], before)
    assert result.returncode == 0, result.stderr
    assert marker.exists()  # the interpreter's own exit waited for it
    assert result.stdout.splitlines()[-2:] == ["handler ran", "finalised"]
