"""Where independent simulation runs execute: in this process, local processes, or Dask.

Sweeps, the regression check and the tuner all hand out many independent,
CPU-bound jobs and collect the results in whatever order they finish. They
talk to one small interface, :class:`Executor`, so the same code runs on a
laptop (local processes), in a debugger (serial, in this process) or on an
existing Dask cluster (``distributed.Client``) when a sweep outgrows one
machine.

The contract for callers: submit a *module-level* function and picklable
arguments (plain dicts, strings, numbers), never live objects — a Dask
worker on another host imports the function by name and receives the
arguments over the wire. Each executor reports how many jobs run at once
(``slots``) so callers can keep a bounded window of jobs in flight instead of
queueing the whole sweep up front (which keeps the progress bar honest and
the memory flat).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from sim.processes import wait_bounded

T = TypeVar("T")


class JobFuture(Protocol):
    """What both ``concurrent.futures.Future`` and ``distributed.Future`` offer."""

    def result(self, timeout: float | None = None) -> Any: ...

    def done(self) -> bool: ...


class Executor(Protocol):
    """Runs submitted jobs somewhere; ``wait_any`` returns those that finished."""

    @property
    def slots(self) -> int:
        """How many jobs run at the same time (sizes the caller's in-flight window)."""
        ...

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> JobFuture: ...

    def wait_any(self, pending: set[JobFuture]) -> tuple[set[JobFuture], set[JobFuture]]:
        """Block until at least one of *pending* is done: ``(done, still_pending)``."""
        ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs each job inside ``submit``, in this process: for debugging and tiny sweeps.

    It is also the reference the other executors are compared against — a
    sweep gives the same DataFrame whichever executor ran it.
    """

    slots = 1

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> JobFuture:
        future: cf.Future[Any] = cf.Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # the caller sees it from result(), as with a pool
            future.set_exception(exc)
        return future

    def wait_any(self, pending: set[JobFuture]) -> tuple[set[JobFuture], set[JobFuture]]:
        return set(pending), set()

    def close(self) -> None:
        return None


class LocalExecutor:
    """A pool of local worker processes (``concurrent.futures.ProcessPoolExecutor``).

    Workers are forked (cheap: they inherit the imported modules, and a
    script needs no ``if __name__ == "__main__"`` guard), unless this
    process already runs other threads (a Dask client, say): forking a
    threaded process can deadlock, so then they come from a ``forkserver``.
    A pool whose worker died (killed by the OOM killer, say) is broken for
    good, so a new one is made for the jobs that follow; the jobs that were
    in it report the failure.
    """

    def __init__(self, workers: int | None = None) -> None:
        self._workers = max(1, workers or os.cpu_count() or 1)
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        if threading.active_count() == 1:
            forked = multiprocessing.get_context("fork")
            return cf.ProcessPoolExecutor(max_workers=self._workers, mp_context=forked)
        served = multiprocessing.get_context("forkserver")
        # The server imports the simulator once; each worker forked from it starts warm.
        served.set_forkserver_preload(["sim.analysis.sweep"])
        return cf.ProcessPoolExecutor(max_workers=self._workers, mp_context=served)

    @property
    def slots(self) -> int:
        return self._workers

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> JobFuture:
        try:
            return self._pool.submit(fn, *args)
        except cf.BrokenExecutor:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(fn, *args)

    def wait_any(self, pending: set[JobFuture]) -> tuple[set[JobFuture], set[JobFuture]]:
        futures = cast("set[cf.Future[Any]]", pending)  # this pool only makes cf futures
        done, rest = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return set(done), set(rest)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Jobs on a Dask cluster through a ``distributed.Client``.

    The workers must have this package installed (the same version): the job
    function is pickled by reference and imported there. Jobs are submitted
    with ``pure=False`` — two identical jobs are still two jobs (Dask would
    otherwise merge them by their arguments' hash). An executor made from an
    address owns its client and closes it; one given a client leaves it open.
    """

    def __init__(self, client: Any, *, owns_client: bool = False) -> None:
        self.client = client
        self._owns = owns_client

    @classmethod
    def connect(cls, address: str, timeout: float = 30.0) -> DaskExecutor:
        from distributed import Client

        client = Client(address, timeout=timeout)  # type: ignore[no-untyped-call]
        return cls(client, owns_client=True)

    @property
    def slots(self) -> int:
        threads = self.client.nthreads()
        return max(1, sum(int(n) for n in threads.values()))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> JobFuture:
        future: JobFuture = self.client.submit(fn, *args, pure=False)
        return future

    def wait_any(self, pending: set[JobFuture]) -> tuple[set[JobFuture], set[JobFuture]]:
        from distributed import wait

        done, rest = wait(list(pending), return_when="FIRST_COMPLETED")  # type: ignore[no-untyped-call]
        return set(done), set(rest)

    def close(self) -> None:
        if self._owns:
            self.client.close()


@contextlib.contextmanager
def local_dask_cluster(
    workers: int = 2, threads: int = 1, *, logs: Path | None = None, grace_s: float = 5.0
) -> Iterator[str]:
    """A Dask scheduler and *workers* worker processes on 127.0.0.1; yields the address.

    Started with the ``dask`` command of this interpreter's environment, as
    separate processes exactly like a real cluster's (no nannies, no
    dashboards), so tests and benchmarks exercise the same path as
    ``orchestra sweep --dask tcp://host:8786``. Their output goes to files in
    *logs* (default: discarded). On exit every process is stopped; one that
    hangs in its shutdown is killed after *grace_s*.
    """
    dask = str(Path(sys.executable).with_name("dask"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    address = f"tcp://127.0.0.1:{port}"
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    commands = [[dask, "scheduler", "--port", str(port), *common]] + [
        [dask, "worker", address, "--nthreads", str(threads), "--no-nanny", *common]
        for _ in range(workers)
    ]
    procs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as files:
        try:
            for i, command in enumerate(commands):
                sink: Any = subprocess.DEVNULL
                if logs is not None:
                    sink = files.enter_context(open(logs / f"dask-{i}.log", "wb"))
                procs.append(subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT))
            yield address
        finally:
            deadline = time.monotonic() + grace_s
            for proc in [*procs[1:], *procs[:1]]:  # workers first, then the scheduler
                proc.terminate()
                wait_bounded(proc, max(0.1, deadline - time.monotonic()))


def make_executor(
    executor: Executor | Any | None = None, *, workers: int | None = None
) -> tuple[Executor, bool]:
    """An executor from what a caller passed, and whether the caller must close it.

    ``None`` gives local processes (``workers`` of them; one worker means
    serial, in this process); a ``distributed.Client`` is wrapped; a string
    is a Dask scheduler address; an :class:`Executor` is used as it is.
    """
    if executor is None:
        if workers == 1:
            return SerialExecutor(), True
        return LocalExecutor(workers), True
    if isinstance(executor, str):
        return DaskExecutor.connect(executor), True
    if _is_dask_client(executor):
        return DaskExecutor(executor), True
    return executor, False


def _is_dask_client(obj: Any) -> bool:
    kind = type(obj)
    return kind.__name__ == "Client" and kind.__module__.startswith("distributed")


def unordered(
    executor: Executor, fn: Callable[..., T], jobs: Iterable[tuple[Any, ...]]
) -> Iterator[tuple[int, T | BaseException]]:
    """Run ``fn(*args)`` for each job, yielding ``(index, result or exception)`` as they finish.

    At most twice the executor's slots are in flight at once, so the first
    results arrive early and a failure of one job never stops the others.
    """
    queue = iter(enumerate(jobs))
    window = 2 * executor.slots
    pending: dict[JobFuture, int] = {}

    def fill() -> None:
        while len(pending) < window:
            item = next(queue, None)
            if item is None:
                return
            index, args = item
            pending[executor.submit(fn, *args)] = index

    fill()
    while pending:
        done, _ = executor.wait_any(set(pending))
        for future in done:
            index = pending.pop(future)
            try:
                outcome: T | BaseException = future.result()
            except Exception as exc:  # a dead worker, a cancelled job: report, go on
                outcome = exc
            yield index, outcome
        fill()
