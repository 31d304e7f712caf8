"""``--executor ray``: the batch runner's ``make`` calls as Ray tasks (imports ray; imported only then).

The driver (this process) keeps everything the batch runner guarantees: it expands and plans
the inputs, runs every check before any work (so a refused input never reaches the cluster),
writes the report and prints paths, notices and error lines. The workers only run ``make``.

- A task makes ``outputs_per_task`` outputs of one input (the command's ``--batch-size``: the
  outputs a local run synthesises together), so one input's variations spread over the
  cluster; with ``--preview`` a task makes all of an input's outputs, since the contact sheet
  needs them all. Every output's result depends only on its own seed, so the split does not
  change a byte.
- Workers write straight to the output paths (a file system every node shares), through
  :func:`vgpnn.video.write_video`: a temporary name, renamed when complete.
- A worker that dies is replaced and its task run again by Ray (``MAX_RETRIES``). An output
  the dead attempt had finished exists already, so the new attempt replaces it (same bytes)
  instead of refusing it. Once a task has ended for good, the driver removes any temporary of
  its outputs, which a killed worker could not (see :func:`vgpnn.video.remove_partials`).
- A task's notices and written outputs come back in its result; the driver applies them as
  tasks finish, and says an input's notices (with its ``[k/N]`` line) when its last task ends.
- Ctrl-C or SIGTERM stops every task: the driver raises a flag (a small actor, :class:`StopFlag`)
  that each running task polls; a task that sees it raises KeyboardInterrupt in itself, as
  Ctrl-C would, so :func:`vgpnn.video.write_video` removes its half-written file, and a task
  not started yet does nothing. The driver waits briefly for them, removes what is left and
  lets the runner finish as it does locally (report, exit 130 or 143). Not ``ray.cancel``: in
  Ray 2.60 cancelling a task at the moment it completes can abort the driver ("Check failed:
  ... Tried to complete task that was not pending"; ray-project/ray#54846 is the same race),
  which a Ctrl-C during a batch of thousands of short tasks would hit.
"""

from __future__ import annotations

import _thread
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from ..cluster import connect, import_ray, numeric_settings, use_numeric_settings, worker_environment
from ..video import remove_partials
from .batch import Execution, InputFailure, Job, PlannedOutput, describe_failure

ray = import_ray()  # without Ray, one line saying how to install it

MAX_RETRIES = 3  # how often Ray runs a task again after its worker died
CANCEL_GRACE_SECONDS = 10.0  # how long stopped tasks get to clean up after Ctrl-C
STOP_POLL_SECONDS = 1.0  # how often a running task asks whether the driver was interrupted


class StopFlag:
    """Raised by the driver on Ctrl-C or SIGTERM; polled by the tasks (run as a Ray actor, whose
    methods run one at a time, so ``begin`` and ``stop`` cannot interleave)."""

    def __init__(self):
        self.stopped = False
        self.running: set[int] = set()  # tasks that have begun

    def begin(self, task: int) -> bool:
        """Whether task number ``task`` may start (it is then counted as running)."""
        if not self.stopped:
            self.running.add(task)
        return not self.stopped

    def stop(self) -> list[int]:
        """Raise the flag; the tasks that have begun, which the driver waits for. Tasks queued
        behind them will not begin, so no one has to wait for their workers to start."""
        self.stopped = True
        return sorted(self.running)

    def is_set(self) -> bool:
        return self.stopped


class _StopWatch:
    """Polls the driver's :class:`StopFlag` while ``make`` runs in this worker's main thread, and
    interrupts it, like Ctrl-C, once the flag is up or the driver (with its actor) is gone."""

    def __init__(self, flag):
        self.lock = threading.Lock()
        self.active = True  # make is still running: an interrupt lands in it
        self.interrupted = False  # the watcher sent its one SIGINT
        self.delivered = False  # and it has been raised
        self.closed = threading.Event()
        # Ray's workers ignore SIGINT; while this task runs, SIGINT raises KeyboardInterrupt.
        self.previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        self.thread = threading.Thread(target=self._watch, args=(flag,), daemon=True)
        self.thread.start()

    def _watch(self, flag) -> None:
        while not self.closed.wait(STOP_POLL_SECONDS):
            try:
                stop = ray.get(flag.is_set.remote())
            except ray.exceptions.RayActorError:
                stop = True  # the driver is gone
            except ray.exceptions.RayError:
                continue
            if stop:
                with self.lock:
                    if self.active:
                        self.interrupted = True
                        # As if SIGINT had come (a real one does not reach a Ray worker's main
                        # thread): KeyboardInterrupt at the next Python step of the work.
                        _thread.interrupt_main()
                return

    def close(self) -> None:
        with self.lock:
            self.active = False
        self.closed.set()
        try:
            if self.interrupted and not self.delivered:
                time.sleep(5)  # the interrupt is on its way: let it arrive here, in the caller's try
        finally:
            signal.signal(signal.SIGINT, self.previous)


@dataclass(frozen=True)
class TaskJob:
    """What a task needs of one input's job (a :class:`Job` less the driver's callbacks)."""

    source: Path
    outputs: list[PlannedOutput]
    todo: list[int]  # the outputs this task makes
    preview: Path | None
    overwrite: bool


@dataclass
class TaskResult:
    written: list[tuple[int, dict, float]] = field(default_factory=list)  # (index, record, seconds since start)
    stopped: bool = False  # the driver was interrupted: the task stopped (or never started)
    notices: list[tuple[str, bool]] = field(default_factory=list)  # (text, said once per run)
    error: str | None = None  # the input's one-line failure, if it failed
    details: str | None = None  # the traceback, for a bug


def make_outputs(make: Callable[[Job], None], task: TaskJob, numeric: dict[str, int], stop_flag,
                 number: int) -> TaskResult:
    """Run ``make`` for ``task`` (the driver's task ``number``) in a Ray worker and say how it went."""
    result = TaskResult()
    if not ray.get(stop_flag.begin.remote(number)):
        result.stopped = True  # queued when the driver was interrupted: nothing to do
        return result
    use_numeric_settings(numeric)
    started = time.perf_counter()
    # Which node made an output, and with which settings: for auditing a run on many machines.
    node = {"id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
            "threads": torch.get_num_threads()}
    # The driver saw none of these outputs before submitting (or -y replaces them): one that
    # exists now was finished by an earlier attempt of this task, whose worker died.
    retried = not task.overwrite and any(task.outputs[i].path.exists() for i in task.todo)

    def written(index: int, record: dict) -> None:
        result.written.append((index, {**record, "node": node}, time.perf_counter() - started))

    job = Job(task.source, task.outputs, task.todo, task.preview, task.overwrite or retried,
              say=lambda text: result.notices.append((text, False)), written=written,
              say_once=lambda text: result.notices.append((text, True)))
    try:
        watch = _StopWatch(stop_flag)
        try:
            make(job)
        except KeyboardInterrupt:
            watch.delivered = True
            raise
        finally:
            watch.close()
    except KeyboardInterrupt:
        result.stopped = True  # write_video has removed the file it was writing
    except Exception as error:
        failure = describe_failure(error)
        result.error, result.details = failure.message, failure.details
    return result


@dataclass
class _Progress:
    """One input on the cluster."""

    item: object  # the runner's record of the input
    tasks: int  # still running
    notices: list[tuple[str, bool]] = field(default_factory=list)
    failure: InputFailure | None = None


class RayExecutor:
    """Runs a batch's ``make`` calls as Ray tasks for the batch runner ``batch`` (a ``_Batch``)."""

    def __init__(self, batch, execution: Execution):
        self.batch, self.execution = batch, execution
        self.ray, self.connected = connect(execution.ray_address, quiet_stdout=True)
        self.numeric = numeric_settings()
        self.pending: dict[ray.ObjectRef, tuple[_Progress, TaskJob]] = {}
        self.finished_inputs = 0
        self.numbers: list[ray.ObjectRef] = []  # task number -> its result
        # No CPU reserved: it answers a call now and then, and must not wait for a free CPU.
        self.stop_flag = self.ray.remote(num_cpus=0)(StopFlag).remote()

    def close(self) -> None:
        if self.connected:
            self.ray.shutdown()
            self.connected = False

    def report_fields(self) -> dict:
        return {"executor": "ray", "ray_address": self.execution.ray_address, "gpus_per_task": self.execution.gpus_per_task,
                "cpus_per_task": self.execution.cpus_per_task, "max_retries": MAX_RETRIES, **self.numeric}

    def run(self, inputs: list) -> None:
        batch = self.batch
        remote = self.ray.remote(make_outputs).options(
            num_cpus=self.execution.cpus_per_task, num_gpus=self.execution.gpus_per_task,
            max_retries=MAX_RETRIES, runtime_env={"env_vars": worker_environment(self.numeric)})
        make = self.ray.put(batch.make)  # pickled once, not once per task
        total = len(inputs)
        for item in inputs:
            job = batch.start(item)
            if job is None:  # skipped or refused here, said and counted by the runner
                self.finished_inputs += 1
                continue
            chunks = [job.todo] if job.preview is not None else _chunks(job.todo, self.execution.outputs_per_task)
            progress = _Progress(item, tasks=len(chunks))
            for todo in chunks:
                task = TaskJob(job.source, job.outputs, todo, job.preview, job.overwrite)
                ref = remote.remote(make, task, self.numeric, self.stop_flag, len(self.numbers))
                self.numbers.append(ref)
                self.pending[ref] = (progress, task)
        batch._write_report()
        outputs = sum(len(task.todo) for _, task in self.pending.values())
        bar = tqdm(total=outputs, unit="clip", desc="variations", leave=True,
                   disable=batch.settings.quiet or not sys.stderr.isatty())
        try:
            while self.pending:
                # A timeout keeps the wait short, so Ctrl-C and SIGTERM are seen at once.
                ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    written = self._collect(ref, total)
                    bar.update(written)
                batch._write_report()
        except KeyboardInterrupt:
            self._cancel()
            raise
        finally:
            bar.close()

    def _collect(self, ref, total: int, quiet: bool = False) -> int:
        """Apply a finished task's result; return how many outputs it wrote."""
        progress, task = self.pending.pop(ref)
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayError as error:
            result = TaskResult(error=_ray_failure(error))
        finally:
            _remove_partials(task)
        item = progress.item
        for index, record, seconds in result.written:
            self.batch.written(item, index, record, seconds)
        progress.notices.extend(result.notices)
        if result.error is not None and progress.failure is None:
            progress.failure = InputFailure(result.error, result.details)
        progress.tasks -= 1
        if progress.tasks == 0 and not quiet:
            self._finish(progress, total)
        return len(result.written)

    def _finish(self, progress: _Progress, total: int) -> None:
        """Say what the input's tasks said, once each, and count it done or failed."""
        batch, item = self.batch, progress.item
        self.finished_inputs += 1
        if total > 1:
            batch.say(f"[{self.finished_inputs}/{total}] {item.source}")
        said = set()
        for text, once in progress.notices:
            if once:
                batch.say_once(text)
            elif text not in said:
                said.add(text)
                batch.say(text)
        if progress.failure is not None:
            batch.fail(item, progress.failure)
        else:
            batch.finish(item)

    def _cancel(self) -> None:
        """Stop every task, let them remove their temporaries, then remove what is left."""
        try:
            running = self.ray.get(self.stop_flag.stop.remote(), timeout=CANCEL_GRACE_SECONDS)
        except Exception:  # the cluster is going away with us: its tasks go with it
            running = []
        # The tasks that have begun, and any that had ended unseen: what may have written outputs.
        refs = {self.numbers[number] for number in running} & set(self.pending)
        try:
            refs |= set(self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0)[0])
            ready = self.ray.wait(list(refs), num_returns=len(refs), timeout=CANCEL_GRACE_SECONDS)[0] if refs else []
        except Exception:
            ready = []
        for ref in ready:  # outputs finished before the cancel reached them are in the report
            self._collect(ref, 0, quiet=True)
        for _, task in self.pending.values():
            _remove_partials(task)
        self.pending.clear()


def _chunks(todo: list[int], size: int) -> list[list[int]]:
    return [todo[start:start + size] for start in range(0, len(todo), size)]


def _remove_partials(task: TaskJob) -> None:
    for index in task.todo:
        remove_partials(task.outputs[index].path)
    if task.preview is not None:
        remove_partials(task.preview)


def _ray_failure(error: Exception) -> str:
    """One line for a task Ray could not finish: its worker died too often, it was cancelled,
    or Ray could not start it (vgpnn missing on a node, a bad runtime environment)."""
    exceptions = ray.exceptions
    if isinstance(error, exceptions.OutOfMemoryError):
        return ("out of memory: Ray's memory monitor stopped the task; use a smaller --working-size, "
                "fewer --max-frames, or more --cpus-per-task so fewer tasks share a node")
    if isinstance(error, exceptions.WorkerCrashedError):
        return (f"the Ray worker making it died {MAX_RETRIES + 1} times (killed, or out of memory); "
                "the node's Ray logs say why")
    if isinstance(error, exceptions.TaskCancelledError):
        return "cancelled"
    text = str(error).strip().splitlines()
    return f"Ray could not run the task ({type(error).__name__}: {text[-1] if text else ''})"
