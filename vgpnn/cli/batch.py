"""Run a command over many inputs: expansion, resume, failures, Ctrl-C, report, summary, exit.

A command plugs in with two functions and one call::

    @main.command()
    @inputs_argument            # INPUT... (files, folders, globs)
    @skip_existing_option       # --skip-existing
    ...                         # the command's own options, -o, -y, -q, --report, --preview
    def command(inputs, skip_existing, ...):
        def plan(source: Path) -> list[PlannedOutput]:
            ...   # the input's output paths, from its path alone (no decoding)
        def make(job: Job) -> None:
            ...   # read job.source, write job.outputs[i].path for each i in job.todo,
                  # calling job.written(i, record) as each is complete
        sys.exit(run_batch(BatchSettings("command", inputs, ...), plan, make))

What the runner guarantees, so no command has to:
1. Inputs are expanded by :mod:`vgpnn.inputs` (folders of clips, globs); a spec naming nothing
   fails in its turn like any input.
2. Before any work, the report is checked as an output is (exit 1 if it exists without -y or
   --skip-existing, or is a symbolic link, device or pipe), every input is planned and the
   batch is refused (usage error, exit 2) if two inputs would write the same file or the
   report would overwrite an input or an output.
3. Per input, in order: planning error (a symbolic link loop is one), an output that is an
   input, a name longer than the file system allows, existing outputs
   (``--skip-existing`` leaves an input whose outputs all exist alone and asks ``make`` only
   for the missing ones, and, given the earlier run's report, for those it does not list as
   made with these parameters (:mod:`.records`); without it and without ``-y`` the input
   fails), an output folder that
   cannot be written; then ``make``. A :class:`VgpnnError`, running out of memory or an
   unexpected exception fails this input with one line on stderr and the batch goes on.
4. Ctrl-C (SIGINT) or SIGTERM stops at once: the file being written is removed by
   :func:`vgpnn.video.write_video`, the report is written, exit 130 (SIGINT) or 143 (SIGTERM).
5. The ``--report`` JSON is written atomically (through a temporary beside it, named like an
   output's) before the first input and after every input,
   so even a run killed outright (status "running") leaves a report of the inputs it finished;
   it holds one record per output (see README).
6. With several inputs a summary line ends the run; the exit status is 1 if any input failed.
   Each written output's path goes to stdout; a reader that closes it ends that list only.
7. With ``--executor ray`` the checks of 1-3 still run here, in the same order, and ``make``
   runs in Ray tasks instead (see :mod:`vgpnn.cli.ray_executor`); what the user sees (outputs,
   report, error lines, summary, exit status) is the same, in the order tasks finish.

``make`` must raise rather than print for failures, write each output with
``overwrite=job.overwrite`` (the runner has already decided about existing files) and the
preview, if asked for, at ``job.preview`` with ``overwrite=True``. It must be picklable
(cloudpickle: closures are fine) and touch nothing of the driver but ``job``, since with
``--executor ray`` it runs in another process, possibly on another machine.
"""

from __future__ import annotations

import datetime
import gc
import os
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click
from tqdm import tqdm

from .. import __version__
from ..errors import ConfigError, OutputError, VgpnnError
from ..inputs import expand_inputs, link_loop
from ..naming import template_fields
from ..video import name_limit
from .common import cli_message, out_of_memory_errors, silence_stdout, torch_version, write_report
from .records import EarlierReport, fingerprint

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM
PREVIEW_FIELDS = ("name", "file", "parent")


def inputs_argument(command):
    return click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)(command)


def skip_existing_option(command):
    return click.option(
        "--skip-existing", is_flag=True,
        help="Resume a batch: leave alone an input whose outputs all exist, and make only the missing "
             "outputs of the others. With the earlier run's --report, an existing output is kept only "
             "if that report lists it as made with these parameters (else it is made again); without "
             "one, outputs are kept by name.")(command)


@dataclass(frozen=True)
class PlannedOutput:
    path: Path  # where the output goes
    details: dict = field(default_factory=dict)  # known before it is made (e.g. its seed), for the report


@dataclass(frozen=True)
class Execution:
    """Where ``make`` runs (``--executor`` and the Ray options)."""

    executor: str = "local"  # local: here, one input after another; ray: Ray tasks
    ray_address: str | None = None  # the cluster; None: Ray's own rule (RAY_ADDRESS, else a new local instance)
    gpus_per_task: float = 0.0  # GPUs each task reserves (fractions share one)
    cpus_per_task: float = 1.0  # CPUs each task reserves
    outputs_per_task: int = 1  # outputs of one input a task makes (the command's --batch-size)


@dataclass(frozen=True)
class BatchSettings:
    """What the shared options asked for."""

    command: str  # the subcommand's name, for the report
    specs: tuple[str, ...]  # INPUT arguments as given
    overwrite: bool = False  # -y: replace existing outputs
    skip_existing: bool = False  # --skip-existing
    quiet: bool = False  # -q: errors and a failing summary only
    report: Path | None = None  # --report FILE.json
    preview: str | None = None  # --preview FILE.png (fields {name}, {file}, {parent})
    parameters: dict = field(default_factory=dict)  # every parameter that shapes an output
    execution: Execution = Execution()  # where ``make`` runs


@dataclass
class Job:
    """One input, as ``make`` sees it."""

    source: Path  # the input as expanded
    outputs: list[PlannedOutput]  # everything ``plan`` gave for it
    todo: list[int]  # indices into ``outputs`` to make now (all, unless --skip-existing found some)
    preview: Path | None  # where this input's contact sheet goes, or None
    overwrite: bool  # pass to write_video for the outputs
    say: Callable[[str], None]  # a notice on stderr (silent with -q)
    written: Callable[[int, dict], None]  # call right after outputs[i] is complete, with its record
    say_once: Callable[[str], None] | None = None  # a notice said once per run, not once per input


class InputFailure(Exception):
    """How one input failed: the line the user sees and, for a bug, the traceback."""

    def __init__(self, message: str, details: str | None = None):
        super().__init__(message)
        self.message, self.details = message, details


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so the same cleanup runs."""


def run_batch(settings: BatchSettings, plan: Callable[[Path], list[PlannedOutput]],
              make: Callable[[Job], None]) -> int:
    """Run ``make`` on every input; return the exit status (see the module's notes)."""
    return _Batch(settings, plan, make).run()


@dataclass
class _Input:
    source: Path
    outputs: list[PlannedOutput] = field(default_factory=list)
    preview: Path | None = None
    error: str | None = None  # planning failed with this message
    records: list[dict] = field(default_factory=list)  # one per planned output (one if none planned)


class _Batch:
    def __init__(self, settings: BatchSettings, plan, make):
        self.settings, self.plan, self.make = settings, plan, make
        self.records: list[dict] = []
        self.counts = {"written": 0, "skipped": 0, "failed": 0, "done": 0}
        self.started = _now()
        self.status = "running"
        self.writable: set[Path] = set()  # folders already found writable
        self.inputs_by_path: dict[str, Path] = {}  # absolute path -> the input as given
        self.stdout_open = True  # False once the reader of stdout has gone
        self.said_once: set[str] = set()
        self.cluster = None  # the RayExecutor with --executor ray

    # -- output ---------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        if not self.settings.quiet:
            tqdm.write(text, file=sys.stderr)

    def say_once(self, text: str) -> None:
        if text not in self.said_once:
            self.said_once.add(text)
            self.say(text)

    def print_path(self, path: Path) -> None:
        """Each written output on stdout, at once, for scripts that read them as they come. A
        reader that goes away (``| head -1``) ends the listing, not the batch: the outputs are
        the work asked for, so they are all still made and the exit status is theirs."""
        if self.settings.quiet or not self.stdout_open:
            return
        try:
            tqdm.write(str(path), file=sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            self.stdout_open = False
            silence_stdout()

    def fail_line(self, source: Path, message: str) -> None:
        # Our messages usually name the input already; add it only where they do not.
        prefix = "" if str(source) in message else f"{source}: "
        tqdm.write(f"error: {prefix}{message}", file=sys.stderr)

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> int:
        self._check_report()
        # Read before this run's report replaces it: what the run being resumed made, and how.
        self.earlier = EarlierReport(self.settings.report if self.settings.skip_existing else None)
        if self.settings.skip_existing and not self.earlier.found:
            self.say("--skip-existing keeps existing outputs by name only: give the earlier run's --report "
                     "to keep only those made with these parameters")
        expansion = expand_inputs(list(self.settings.specs))
        if expansion.ignored:
            shown = ", ".join(f"'{p.name}'" for p in expansion.ignored[:3])
            more = f" and {len(expansion.ignored) - 3} more" if len(expansion.ignored) > 3 else ""
            self.say(f"ignored {len(expansion.ignored)} entries of input folders that are neither "
                     f"videos nor images: {shown}{more}")
        if not expansion.inputs:
            raise click.UsageError("no input found in " + ", ".join(repr(s) for s in self.settings.specs))
        inputs = [self._plan(source, len(expansion.inputs)) for source in expansion.inputs]
        self._refuse_collisions(inputs)
        for item in inputs:
            item.records = [self._record(item.source, output) for output in (item.outputs or [None])]
            if self.settings.skip_existing and self.earlier.found and item.error is None:
                # Outputs this run will keep stay listed as kept even if it is stopped early,
                # so resuming it again still knows how they were made.
                for index, output in enumerate(item.outputs):
                    if output.path.exists() and self._made_alike(item, index):
                        item.records[index]["status"] = "skipped"
            self.records.extend(item.records)
        if self.settings.execution.executor == "ray":
            from .ray_executor import RayExecutor  # imports ray: only when asked for
            self.cluster = RayExecutor(self, self.settings.execution)  # connects, or fails in one line
        cluster = self.cluster
        self._write_report()  # so that even a run killed outright leaves its plan behind
        previous_term = _catch_sigterm()
        try:
            if cluster is not None:
                cluster.run(inputs)
            for number, item in enumerate(inputs if cluster is None else [], start=1):
                if len(inputs) > 1:
                    self.say(f"[{number}/{len(inputs)}] {item.source}")
                self._process(item)
                self._write_report()
            self.status = "failed" if self.counts["failed"] else "complete"
            code = EXIT_FAILED if self.counts["failed"] else 0
        except KeyboardInterrupt as interrupt:
            self.status = "interrupted"
            for record in self.records:
                if record["status"] == "running":
                    record["status"] = "interrupted"
            tqdm.write(f"interrupted; no partial output was left behind ({self.counts['written']} outputs "
                       "written; rerun with --skip-existing to go on)", file=sys.stderr)
            # Ray's blocking calls turn an exception raised by a signal handler into a plain
            # KeyboardInterrupt, so what was received is also kept aside.
            terminated = isinstance(interrupt, Terminated) or _SIGTERM_RECEIVED.is_set()
            code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        finally:
            _restore_sigterm(previous_term)
            if cluster is not None:
                cluster.close()
        self._write_report()
        if len(inputs) > 1 and (self.counts["failed"] or not self.settings.quiet) and self.status != "interrupted":
            tqdm.write(self._summary(len(inputs)), file=sys.stderr)
        return code

    def _summary(self, total: int) -> str:
        c = self.counts
        return (f"{total} inputs: {c['done']} done, {c['skipped']} skipped, {c['failed']} failed; "
                f"{c['written']} outputs written")

    def _plan(self, source: Path, total: int) -> _Input:
        item = _Input(source)
        if link_loop(source):
            item.error = f"cannot read '{source}': too many levels of symbolic links"
            return item
        try:
            item.outputs = list(self.plan(source))
            if self.settings.preview is not None:
                item.preview = _preview_path(self.settings.preview, source, several=total > 1)
        except ConfigError as error:  # the options, not this input: every input would fail alike
            raise click.UsageError(cli_message(error)) from error
        except VgpnnError as error:
            item.error = cli_message(error)
        return item

    def _refuse_collisions(self, inputs: list[_Input]) -> None:
        owners: dict[str, Path] = {}
        for item in inputs:
            paths = [o.path for o in item.outputs] + ([item.preview] if item.preview else [])
            for path in paths:
                key = os.path.abspath(path)
                if key in owners and owners[key] != item.source:
                    raise click.UsageError(
                        f"inputs '{owners[key]}' and '{item.source}' would both write '{path}'; put "
                        "{parent} or {file} in the -o (or --preview) template to tell them apart, "
                        "e.g. -o 'out/{parent}_{name}_{seed}.{ext}'")
                if key in owners:
                    raise click.UsageError(f"the preview and an output of '{item.source}' would both be "
                                           f"'{path}'; choose another --preview")
                owners[key] = item.source
        report = self.settings.report
        if report is not None:
            key = os.path.abspath(report)
            sources = {os.path.abspath(item.source) for item in inputs}
            if key in owners or key in sources:
                raise click.UsageError(f"--report '{report}' is also an input or an output of this batch; "
                                       "choose another name")
        self.inputs_by_path = {os.path.abspath(item.source): item.source for item in inputs}

    def _process(self, item: _Input) -> None:
        job = self.start(item)
        if job is None:
            return
        try:
            self.make(job)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # MemoryError and CUDA's out-of-memory error are Exceptions too
            self.fail(item, describe_failure(error))
            return
        self.finish(item)

    def start(self, item: _Input) -> Job | None:
        """Run the checks of rule 3 and mark the records; the job to make, or None when the input
        is skipped or has failed (said and counted)."""
        records = item.records
        try:
            if item.error is not None:
                raise _InputFailed(item.error)
            self._check_not_inputs(item)
            for path in [o.path for o in item.outputs] + ([item.preview] if item.preview else []):
                _check_name_lengths(path)  # before _todo, whose exists() raises on such a name
            todo, stale = self._todo(item)
            if not todo:
                for record in records:
                    record["status"] = "skipped"
                self.counts["skipped"] += 1
                self.say(f"skipped: every output of '{item.source}' exists (--skip-existing)")
                return None
            self._check_writable(item, todo)
        except KeyboardInterrupt:
            raise
        except Exception as error:
            self.fail(item, describe_failure(error))
            return None
        for index in todo:
            records[index]["status"] = "running"
        for index, record in enumerate(records):
            if index not in todo:
                record["status"] = "skipped"
        started = time.perf_counter()
        for index in stale:
            self.say(f"remaking '{item.outputs[index].path}': the earlier --report does not list it as "
                     "made with these parameters")

        def written(index: int, fields: dict) -> None:
            self.written(item, index, fields, time.perf_counter() - started)

        return Job(item.source, item.outputs, todo, item.preview, self.settings.overwrite or bool(stale), self.say,
                   written, self.say_once)

    def written(self, item: _Input, index: int, fields: dict, seconds: float) -> None:
        """outputs[index] of ``item`` is complete, ``seconds`` after its work started."""
        record = item.records[index]
        record.update(fields)
        record["status"] = "written"
        record["seconds_since_input_start"] = round(seconds, 3)
        self.counts["written"] += 1
        self.print_path(item.outputs[index].path)

    def finish(self, item: _Input) -> None:
        """Every output ``make`` was asked for is written."""
        unfinished = [r for r in item.records if r["status"] == "running"]
        if unfinished:
            self.fail(item, describe_failure(AssertionError(
                f"{len(unfinished)} planned outputs were not reported as written")))
            return
        self.counts["done"] += 1

    def fail(self, item: _Input, failure: InputFailure) -> None:
        """``item`` failed: its unfinished records say why, and so does one line on stderr."""
        if failure.details and os.environ.get("VGPNN_DEBUG"):
            tqdm.write(failure.details, file=sys.stderr)
        for record in item.records:
            if record["status"] in ("running", "not run"):
                record["status"] = "failed"
                record["error"] = failure.message
                if failure.details:
                    record["traceback"] = failure.details
        self.counts["failed"] += 1
        self.fail_line(item.source, failure.message)

    def _check_not_inputs(self, item: _Input) -> None:
        own = os.path.abspath(item.source)
        for output in item.outputs + ([PlannedOutput(item.preview)] if item.preview else []):
            key = os.path.abspath(output.path)
            if key == own:
                raise _InputFailed(f"output '{output.path}' is the input itself; choose another -o")
            if key in self.inputs_by_path:
                raise _InputFailed(f"output '{output.path}' is another input of this batch "
                                   f"('{self.inputs_by_path[key]}'); choose another -o")

    def _made_alike(self, item: _Input, index: int) -> bool:
        """With --skip-existing: whether the earlier report says it made this output as this run
        would (True when there is no earlier report: names are all there is to go by)."""
        if not self.earlier.found:
            return True
        output = item.outputs[index]
        return self.earlier.made_alike(output.path, fingerprint(self.settings.command, item.source,
                                                                self.settings.parameters, output.details.get("seed")))

    def _todo(self, item: _Input) -> tuple[list[int], list[int]]:
        """(outputs to make, those of them that exist and are to be replaced)."""
        exists = [output.path.exists() for output in item.outputs]
        if self.settings.skip_existing:
            stale = [i for i, there in enumerate(exists) if there and not self._made_alike(item, i)]
            return [i for i, there in enumerate(exists) if not there or i in stale], stale
        if not self.settings.overwrite:
            for output, done in zip(item.outputs, exists):
                if done:
                    raise _InputFailed(f"output '{output.path}' exists; pass -y/--overwrite to replace it "
                                       "or --skip-existing to keep it")
            if item.preview is not None and item.preview.exists():
                raise _InputFailed(f"preview '{item.preview}' exists; pass -y/--overwrite to replace it")
        return list(range(len(item.outputs))), []

    def _check_writable(self, item: _Input, todo: list[int]) -> None:
        """Fail before any work when an output's folder cannot be written, creating nothing."""
        paths = [item.outputs[i].path for i in todo] + ([item.preview] if item.preview else [])
        for path in paths:
            folder = _nearest_existing(Path(os.path.abspath(path)).parent)
            if folder in self.writable:
                continue
            if not folder.is_dir():
                raise OutputError(f"cannot write '{path}': '{folder}' is not a folder; expected -o to "
                                  "name a folder or a file in one")
            try:
                with tempfile.NamedTemporaryFile(dir=folder, prefix=".vgpnn-write-test-"):
                    pass
            except OSError as error:
                raise OutputError(f"cannot write '{path}': folder '{folder}' is not writable "
                                  f"({error.strerror or error}); expected a folder you can write to") from error
            self.writable.add(folder)

    # -- the report -----------------------------------------------------------------------------

    def _check_report(self) -> None:
        """The report follows the rules outputs follow, checked before any work. An existing one
        is replaced only with -y, or with --skip-existing: resuming a batch rewrites the report
        of the run it resumes. Exit 1, as for an existing output: the command line is right,
        the file system is not as it expects. A symbolic link is refused even with -y:
        replacing it would leave the file it points to stale, writing through it would put
        the report somewhere the command line does not say; the same for a device or pipe
        (/dev/stdout), which a file renamed into place would replace."""
        report = self.settings.report
        if report is None:
            return
        _check_name_lengths(report)
        try:
            mode = os.stat(report).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as error:
            raise OutputError(f"cannot write report '{report}': {error.strerror or error}; expected a "
                              "path for a JSON file") from error
        if mode is not None and not stat.S_ISREG(mode):
            raise OutputError(f"--report '{report}' is {_file_kind(mode)}, not a regular file; expected a "
                              "path for a JSON file")
        if report.is_symlink():
            raise OutputError(f"--report '{report}' is a symbolic link (to '{os.readlink(report)}'); expected "
                              "the path of a regular file (give the link's target to write there)")
        if mode is not None and not (self.settings.overwrite or self.settings.skip_existing):
            raise OutputError(f"--report '{report}' exists; pass -y/--overwrite to replace it")

    def _record(self, source: Path, output: PlannedOutput | None) -> dict:
        return {"input": str(source), "command": self.settings.command,
                "output": None if output is None else str(output.path), "status": "not run", "error": None,
                **(output.details if output is not None else {}), "parameters": self.settings.parameters}

    def _write_report(self) -> None:
        if self.settings.report is None:
            return
        write_report(self.settings.report, {
            "vgpnn": __version__, "torch": torch_version(), "command": self.settings.command,
            "argv": sys.argv[1:], "cwd": os.getcwd(), "inputs": list(self.settings.specs),
            "started": self.started, "finished": _now(), "status": self.status,
            "summary": dict(self.counts), "parameters": self.settings.parameters,
            **({"execution": self.cluster.report_fields()} if self.cluster is not None else {}),
            "records": self.records}, overwrite=True)


class _InputFailed(Exception):
    """A check of the runner failed for one input."""


def describe_failure(error: Exception) -> InputFailure:
    """The one line (and, for a bug, the traceback) that an exception out of one input's work
    becomes; the same here and in a Ray worker."""
    if isinstance(error, InputFailure):
        return error
    if isinstance(error, (VgpnnError, _InputFailed)):
        return InputFailure(cli_message(error))
    if isinstance(error, out_of_memory_errors()):
        gc.collect()
        torch = sys.modules.get("torch")  # loaded by the work that ran out, if any
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return InputFailure("out of memory; use a smaller --size, fewer --max-frames or a smaller --batch-size")
    # A bug: one input must not sink a batch of a thousand.
    return InputFailure(f"internal error ({type(error).__name__}: {error}); this is a bug in vgpnn, please "
                        "report it (VGPNN_DEBUG=1 prints the traceback)",
                        "".join(traceback.format_exception(error)))


def _preview_path(template: str, source: Path, several: bool) -> Path:
    """One sheet per input: ``{name}``, ``{file}``, ``{parent}`` fill in; with several inputs
    and none of them in the name, ``_{name}`` goes before the extension."""
    fields = template_fields(template, PREVIEW_FIELDS, "--preview")
    if several and not fields:
        stem, dot, suffix = template.rpartition(".")
        template = f"{stem}_{{name}}{dot}{suffix}" if dot else f"{template}_{{name}}"
    name = source.stem if source.suffix else source.name
    return Path(template.format(name=name, file=source.name, parent=Path(os.path.realpath(source)).parent.name))


def _check_name_lengths(path: Path) -> None:
    """Refuse a name in ``path`` (the file's, or a folder's still to be made) longer than the
    file system allows, before any work: otherwise it fails only when the output is written."""
    absolute = Path(os.path.abspath(path))
    folder = _nearest_existing(absolute.parent)
    limit = name_limit(folder)
    for part in absolute.relative_to(folder).parts:
        length = len(os.fsencode(part))
        if length > limit:
            raise OutputError(f"cannot write '{path}': the name '{part}' is {length} bytes, longer than the "
                              f"{limit} bytes a file name may have in '{folder}'; expected a shorter name")


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a pipe"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a special file"


def _nearest_existing(folder: Path) -> Path:
    # os.path.exists, not Path.exists: it says False, not raises, for a name too long to look up.
    while not os.path.exists(folder) and folder != folder.parent:
        folder = folder.parent
    return folder


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


_SIGTERM_RECEIVED = threading.Event()


def _catch_sigterm():
    """Make SIGTERM raise :class:`Terminated` (only possible in the main thread)."""
    _SIGTERM_RECEIVED.clear()

    def handler(signum, frame):
        _SIGTERM_RECEIVED.set()
        raise Terminated()
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
