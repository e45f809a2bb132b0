"""Cancellation that a library swallowed, noticed: a loop asked to stop must stop.

A loop that keeps going after "one failure is not the end" (``except
Exception``: log, sleep, try again) hangs its whole run if the exception it
caught was really a cancellation that a library turned into something else
(a request helper that maps a cancelled wait to its own timeout error). The
cancel request is then consumed, and the loop's next ``await`` no longer
raises. Python 3.11 keeps the count of pending requests on the task
(``Task.cancelling``), so a handler can tell, and stop as asked.

``run_bounded`` is the other half: a run's leftover tasks get a bounded time
to stop once the run is over, so a loop that missed its cancellation is named
(with where it waits) instead of holding the process for ever, as
``asyncio.run``'s unbounded wait for them would. ``close_bounded`` is the
same for a NATS connection's close, ``wait_bounded`` for a child process's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from sim.processes import wait_bounded

__all__ = ["close_bounded", "run_bounded", "stop_if_cancelled", "try_once", "wait_bounded"]

T = TypeVar("T")

#: Seconds a connection's close may take before it is given up (see ``close_bounded``).
CLOSE_TIMEOUT_S = 5.0
#: Closes given up: kept, so that a pending one is not destroyed mid-run by a collection
#: (its loop long closed) but at the process's exit, which closes its socket anyway.
_abandoned_closes: list[asyncio.Future[Any]] = []


async def close_bounded(closable: Any, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """``await closable.close()``, given up after *timeout_s* (errors ignored).

    nats.py's ``Client.close`` can wait for ever for its transport to say it
    closed (nats-io/nats.py#671: until a TCP timeout, minutes later). Seen
    here twice in one day: a service that had printed "stopped" held its
    process past the test's 30 s, and a run's coordinator sat in that close
    after its loop had closed. A shutdown must not hang on it.
    """
    closing = asyncio.ensure_future(closable.close())
    try:
        done, _ = await asyncio.wait({closing}, timeout=timeout_s)
    except asyncio.CancelledError:
        _abandoned_closes.append(closing)  # (the close goes on; its caller stops)
        raise
    if not done:
        closing.cancel()
        _abandoned_closes.append(closing)
        print(f"live: a connection did not close within {timeout_s:g} s; left", file=sys.stderr)
    elif not closing.cancelled():
        closing.exception()  # (retrieved: a failed close is not worth a traceback)


def stop_if_cancelled() -> None:
    """Raise CancelledError if the running task was asked to stop (call in broad handlers)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling() > 0:
        raise asyncio.CancelledError


async def try_once(action: Awaitable[T], timeout_s: float | None = None) -> T | None:
    """*action*'s result, or None if it failed or took longer than *timeout_s*; a cancel
    of the caller always propagates.

    For a loop's step that may fail and is tried again next round (a heartbeat
    while the broker restarts). Two ways a plain ``suppress(Exception)`` lets a
    cancel through as a success: a library reports the cancelled wait as its
    own timeout, and 3.11's ``asyncio.wait_for`` returns the inner result when
    the cancel lands just as the inner await finished. Either way the loop
    slept on for ever (seen once: a live run hung after its duration, its
    fleet's heartbeats still going).
    """
    result: T | None = None
    with contextlib.suppress(Exception):
        result = await (action if timeout_s is None else asyncio.wait_for(action, timeout_s))
    stop_if_cancelled()
    return result


def run_bounded(main: Coroutine[Any, Any, T], grace_s: float = 15.0) -> T:
    """``asyncio.run(main)``, with at most *grace_s* for the tasks it leaves behind to stop.

    A task still running after that is named on stderr with its stack and
    abandoned; the loop closes and *main*'s result (or exception) stands.
    """
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _stop_leftovers(loop, grace_s)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _stop_leftovers(loop: asyncio.AbstractEventLoop, grace_s: float) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not pending:
        return
    for task in pending:
        task.cancel()
    _, stuck = loop.run_until_complete(asyncio.wait(pending, timeout=grace_s))
    for task in stuck:
        print(
            f"live: task {task.get_name()} did not stop within {grace_s:g} s of being "
            "cancelled (a loop that swallowed its cancellation); abandoned, waiting in:",
            file=sys.stderr,
        )
        task.print_stack(limit=8, file=sys.stderr)
