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
- Ctrl-C or SIGTERM cancels every task (KeyboardInterrupt inside them, so their half-written
  files go), waits briefly for them, removes what is left and lets the runner finish as it
  does locally (report, exit 130 or 143).
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from ..cluster import connect, import_ray, numeric_settings, use_numeric_settings, worker_environment
from ..video import remove_partials
from .batch import Execution, InputFailure, Job, PlannedOutput, describe_failure

ray = import_ray()  # without Ray, one line saying how to install it

MAX_RETRIES = 3  # how often Ray runs a task again after its worker died
CANCEL_GRACE_SECONDS = 10.0  # how long cancelled tasks get to clean up after Ctrl-C


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
    notices: list[tuple[str, bool]] = field(default_factory=list)  # (text, said once per run)
    error: str | None = None  # the input's one-line failure, if it failed
    details: str | None = None  # the traceback, for a bug


def make_outputs(make: Callable[[Job], None], task: TaskJob, numeric: dict[str, int]) -> TaskResult:
    """Run ``make`` for ``task`` in a Ray worker and say how it went."""
    use_numeric_settings(numeric)
    started = time.perf_counter()
    result = TaskResult()
    import torch
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
        make(job)
    except KeyboardInterrupt:
        raise  # cancelled: Ray records it as such
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
                self.pending[remote.remote(make, task, self.numeric)] = (progress, task)
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
        """Cancel every task, let them remove their temporaries, then remove what is left."""
        refs = list(self.pending)
        for ref in refs:
            try:
                self.ray.cancel(ref)
            except Exception:  # already finished, or the cluster is going away with us
                pass
        try:
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_SECONDS)
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
