"""Running vgpnn on a Ray cluster: connecting, and the numeric settings workers must share.

Two ways in, both optional (``pip install "vgpnn[ray]"``):

- the command line's ``--executor ray`` (:mod:`vgpnn.cli.ray_executor`): any batch, as Ray
  tasks, with the outputs, report and exit status of a local run;
- :mod:`vgpnn.cluster.data`: a Ray Data entry point that turns a dataset of clips into a
  dataset of variations, one row per output.

Nothing imports ray until one of them is used: ``import vgpnn``, the command line with the
default ``--executor local`` and this package itself never load it.

What this code relies on about Ray (2.x; checked against 2.60):

1. A worker process gets ``OMP_NUM_THREADS=1`` unless the task's environment sets it, and
   torch sizes its thread pool from it. A different number of threads can change the order of
   floating-point sums on a CPU, so workers are given the driver's thread count, both in their
   environment (``runtime_env={"env_vars": ...}``, read by the OpenMP runtimes as they load)
   and by ``torch.set_num_threads`` in the task (for a worker process that already runs).
2. ``num_gpus`` may be a fraction (0.25: four tasks share a GPU). Ray sets
   ``CUDA_VISIBLE_DEVICES`` to the GPUs a task reserved, and to none when it reserved none,
   so ``--device auto`` in a task without a GPU runs on the CPU.
3. A task whose worker process dies (killed, out of memory) is run again, up to
   ``max_retries`` times; an exception the task raises is not retried (``retry_exceptions``
   is off by default), which is what we want: our errors are the input's, not the worker's.
4. A worker process ignores SIGINT, and a signal sent to it does not reach the task's Python
   code; ``_thread.interrupt_main()`` from another thread of the task does raise
   KeyboardInterrupt in the task, at its next Python step. (``ray.cancel`` is avoided: in
   2.60, cancelling a task just as it completes can abort the driver with "Check failed:
   ... Tried to complete task that was not pending".)
5. ``ray.init(address="HOST:PORT")`` where nothing listens retries for over a minute while
   logging warnings, so :func:`connect` first checks that something answers there.
6. A driver prints the raylet's messages (a worker died, its task will be retried) on its
   stdout, even with ``log_to_driver=False``; a command line whose stdout lists the written
   outputs turns that off with the switch Ray's own debugger uses
   (``ray._private.worker._worker_logs_enabled``; see :func:`connect`).
7. ``Dataset.map_batches(CallableClass, compute=ray.data.ActorPoolStrategy(size=n),
   num_gpus=g, batch_size=b)`` constructs the class once per actor (model state and device
   live there) and calls it on batches of rows; ``ray.data.read_binary_files(paths,
   include_paths=True)`` gives one row per file with columns ``bytes`` and ``path``. The
   read tasks need CPUs of their own: actors holding every CPU of the cluster stall it.
8. ``ray.init`` installs a SIGTERM handler in the driver, and an exception raised by a signal
   handler during ``ray.wait`` comes out as a plain KeyboardInterrupt; the batch runner installs
   its own handler after connecting and also notes the signal it received (``batch.py``).
"""

from __future__ import annotations

import logging
import os
import socket

from ..errors import VgpnnError

INSTALL = 'pip install "vgpnn[ray]"'
PROBE_SECONDS = 5.0  # how long an address may take to answer before it is called unreachable


class ClusterError(VgpnnError):
    """Ray is missing, or the cluster cannot be reached."""


def import_ray():
    """The ray module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ClusterError(f"Ray is not installed ({error}); {INSTALL}") from error
    return ray


def connect(address: str | None, quiet_stdout: bool = False):
    """Connect this process to the Ray cluster at ``address`` (None: Ray's own rule, which is
    RAY_ADDRESS, else a new Ray instance on this machine) unless it is connected already.
    ``quiet_stdout``: keep Ray's messages off this process's stdout (fact 6).
    Returns the ray module and whether this call connected (so the caller disconnects)."""
    ray = import_ray()
    if quiet_stdout:
        from ray._private import worker
        if hasattr(worker, "_worker_logs_enabled"):  # a private switch: where it is gone, Ray just talks
            worker._worker_logs_enabled = False
    if ray.is_initialized():
        return ray, False
    _probe(address if address is not None else os.environ.get("RAY_ADDRESS"))
    try:
        # Workers' own output stays in the cluster's logs: tasks report back through their
        # results, and the command line's output is the same as a local run's.
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as error:  # ConnectionError, ValueError, RuntimeError, depending on what is wrong
        where = f"at '{address}'" if address is not None else "(RAY_ADDRESS or a new local instance)"
        raise ClusterError(f"cannot connect to Ray {where}: {_first_line(error)}") from error
    return ray, True


def _probe(address: str | None) -> None:
    """Fail in seconds, not minutes, when nothing listens at a HOST:PORT address (fact 5)."""
    if address is None or address in ("auto", "local"):
        return  # a new local instance, or the one Ray finds on this machine: Ray answers at once
    host_port = address.split("://", 1)[-1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"cannot use Ray address '{address}'; expected 'auto', HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ClusterError(f"cannot reach the Ray cluster at '{address}' ({reason}); expected the address of a "
                           "running head node (`ray start --head` prints it)") from error


def numeric_settings() -> dict[str, int]:
    """The numeric settings of this process that a worker must copy to compute what this process
    would, bit for bit (fact 1)."""
    import torch
    return {"threads": torch.get_num_threads()}


def worker_environment(settings: dict[str, int]) -> dict[str, str]:
    """The environment variables that give a new worker process ``settings`` from its start."""
    threads = str(settings["threads"])
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def use_numeric_settings(settings: dict[str, int]) -> None:
    """Apply ``settings`` in a worker that may have started with other ones."""
    import torch
    if torch.get_num_threads() != settings["threads"]:
        torch.set_num_threads(settings["threads"])


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
