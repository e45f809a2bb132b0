"""Cancellation that a library swallowed, noticed: a loop asked to stop must stop.

A loop that keeps going after "one failure is not the end" (``except
Exception``: log, sleep, try again) hangs its whole run if the exception it
caught was really a cancellation that a library turned into something else
(a request helper that maps a cancelled wait to its own timeout error). The
cancel request is then consumed, and the loop's next ``await`` no longer
raises. Python 3.11 keeps the count of pending requests on the task
(``Task.cancelling``), so a handler can tell, and stop as asked.
"""

from __future__ import annotations

import asyncio

__all__ = ["stop_if_cancelled"]


def stop_if_cancelled() -> None:
    """Raise CancelledError if the running task was asked to stop (call in broad handlers)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling() > 0:
        raise asyncio.CancelledError
