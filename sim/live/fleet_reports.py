"""A simulated fleet's end reports, gathered: the ends that wait together go as one message.

Why: each end report is a message on its zone's results stream, and the
broker fsyncs each stored message before it acks it, one after another per
stream (``sync_interval: always``): with thousands of agents in one process
finishing at once, one message per end made that stream's fsyncs the
ceiling of the live dispatch rate (``benchmarks/bench_live.py``). So a
fleet keeps at most one publish in flight per results subject; the ends
that arrive meanwhile wait and go together, as one ``records`` message
(``sim.live.broker.BUNDLE``, the coordinator's own bundle format, which
every reader opens: ``unbundle``, ``Results.on_result``, the snapshot).
A lone end goes as itself, exactly as an agent process sends it.

What does not change: an agent acks its task only once its end is stored
(it awaits its report as it awaited its own publish); a bundle's message id
is a digest of the ids of the ends it carries, and a failed publish is
retried with the same ends, so the broker dedupes a retry as it deduped an
end's own. An agent killed while its end still waits takes the end out (it
was never sent: a kill -9 before the publish); one killed after its bundle
went out is a kill after the publish, as for an agent process.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from nats.js import JetStreamContext

from sim.live.broker import BUNDLE
from sim.live.transport import publish

#: Ends per message: a few hundred bytes each, far below NATS's 1 MB payload.
REPORTS_PER_MESSAGE = 256

_Waiting = tuple[dict[str, Any], str, "asyncio.Future[None]"]


class FleetReports:
    """Gathers a fleet's end reports per subject (see the module docstring)."""

    def __init__(self, per_message: int = REPORTS_PER_MESSAGE) -> None:
        self.per_message = max(1, per_message)
        self._waiting: dict[str, list[_Waiting]] = {}
        self._flushes: dict[str, asyncio.Task[None]] = {}
        #: Messages published and reports they carried (the bench's figures).
        self.messages = 0
        self.reports = 0

    async def publish(
        self, js: JetStreamContext, subject: str, document: dict[str, Any], msg_id: str
    ) -> None:
        """Store *document* on *subject* (with or after the ends waiting there); await it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (document, msg_id, done)
        self._waiting.setdefault(subject, []).append(entry)
        if subject not in self._flushes:
            self._flushes[subject] = asyncio.create_task(self._flush(js, subject))
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            waiting = self._waiting.get(subject, [])
            if entry in waiting:
                waiting.remove(entry)  # not sent yet: it never will be (a kill -9)
            raise

    async def _flush(self, js: JetStreamContext, subject: str) -> None:
        """Publish what waits on *subject*, one message at a time, until nothing waits."""
        waiting = self._waiting[subject]
        batch: list[_Waiting] = []
        try:
            while waiting:
                batch = waiting[: self.per_message]
                del waiting[: self.per_message]
                document, msg_id = _message(batch)
                await publish(js, subject, document, msg_id)  # (retried with the same id)
                self.messages += 1
                self.reports += len(batch)
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)
                batch = []
        finally:
            del self._flushes[subject]
            for _, _, done in [*batch, *waiting]:  # cancelled (the fleet closes)
                done.cancel()
            waiting.clear()

    async def close(self) -> None:
        flushes = list(self._flushes.values())
        for flush in flushes:
            flush.cancel()
        await asyncio.gather(*flushes, return_exceptions=True)


def _message(batch: list[_Waiting]) -> tuple[dict[str, Any], str]:
    """One end as itself; several as one ``records`` message named by a digest of their ids."""
    if len(batch) == 1:
        return batch[0][0], batch[0][1]
    digest = hashlib.blake2b("|".join(m for _, m, _ in batch).encode(), digest_size=12)
    return {"kind": BUNDLE, "records": [d for d, _, _ in batch]}, f"r.{digest.hexdigest()}"


__all__ = ["REPORTS_PER_MESSAGE", "FleetReports"]
