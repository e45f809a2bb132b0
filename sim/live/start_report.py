"""An attempt's start report, sent only if the attempt outlives a short grace.

Why: an attempt that ends within ``START_GRACE_S`` wall seconds of its start
(a no-op, a cache hit) would cost the broker two fsynced writes on its
zone's results stream a few milliseconds apart, and the disk's fsyncs are
what bounds the live dispatch rate (``benchmarks/bench_live.py``). Its end
record carries ``start_s`` anyway, so it goes alone, marked
``START_UNREPORTED``, and stands for both (the coordinator:
``Intake.on_result``; the run's records: an end carries its start). A longer
attempt reports its start once the grace is over: the coordinator learns of
it at most that much later, and ``start_s`` still says when it began.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nats.js import JetStreamContext

from sim.live.transport import publish

#: Wall seconds an attempt runs before its start is reported.
START_GRACE_S = 0.01


class StartReport:
    """One attempt's start report (see the module docstring): created when the attempt
    starts, settled when it ends, abandoned when it is cancelled."""

    def __init__(
        self, js: JetStreamContext, subject: str, document: dict[str, Any], msg_id: str
    ) -> None:
        self._sent = False
        self._task = asyncio.create_task(self._report(js, subject, document, msg_id))

    async def _report(
        self, js: JetStreamContext, subject: str, document: dict[str, Any], msg_id: str
    ) -> None:
        await asyncio.sleep(START_GRACE_S)
        self._sent = True  # from here on it is published: the end waits for its ack
        await publish(js, subject, document, msg_id)

    def abandon(self) -> None:
        """The attempt was cancelled (a simulated kill -9): no start goes out after it."""
        self._task.cancel()

    async def settle(self) -> bool:
        """At the attempt's end: True once the start is stored, False if it never went out.

        Cancelling is safe only while it still waits out the grace (nothing
        sent); once sent, the end waits for the start's ack, so the stream
        keeps the start before the end.
        """
        if not self._sent:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            return False
        await self._task
        return True
