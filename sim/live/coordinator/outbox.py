"""The outbox: a batch's broker writes, published concurrently in two ordered phases.

Why: every JetStream publish is a round trip to the broker (1.6-2.3 ms under
load, fsync included), and the coordinator used to await three of them in a
row per task, one submission at a time: ~200 dispatches/s while the process
sat idle waiting. Routing is pure and fast, so a batch of submissions or
results is routed first, its writes collected here, and then published
together: the round trips overlap instead of adding up.

What must not change is the order that makes a takeover safe (see
``Intake.send``): a task's message on its agent's subject is acknowledged
before its assignment record is published. So a flush has two phases:

1. every message that needs nothing before it (tasks on agents' subjects,
   dispatch records, failed-for-good ends), concurrently, all acks awaited;
2. every record that must follow a phase-1 message (an assignment record
   after its task), concurrently — only those whose phase-1 message was
   acknowledged: a task whose publish failed stays unrecorded, and a takeover
   places it again (run twice at worst, never recorded and missing).

Message ids are the callers' (the broker dedupes them); the outbox changes
when a write happens and, for the coordinator's own records, how many
messages carry them — never what is written.

Records travel together. Each routing and assignment record (an
``Outgoing`` marked ``record``) is a few hundred bytes, and each stream
message costs the broker an fsync (``sync_interval: always``) and both sides
a round trip's bookkeeping. So a phase's records for one subject (one zone's
``orch.dispatch.<zone>``) go as one ``records`` message (``bundle``: up to
``RECORDS_PER_MESSAGE``, in the phase's order) instead of one message each:
two writes per task become a few per batch. A bundle is acknowledged whole,
so the phase-2 rule holds record by record. Its message id is derived from
the ids of the records it carries, so a retried publish is deduped as
before; what a bundle gives up is the per-record dedupe across two
different batches (a deposed primary still writing): readers take the first
routing and assignment of each attempt (``records``) and a catch-up the
latest attempt, so a repeated record changes nothing. Readers unpack
bundles (``sim.live.broker.unbundle``).
"""

from __future__ import annotations

import asyncio
import hashlib
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sim.live.broker import BUNDLE, Broker


@dataclass(frozen=True)
class Outgoing:
    """One stream publish: subject, JSON document, message id (the dedupe key)."""

    subject: str
    document: dict[str, Any]
    msg_id: str
    #: One of the coordinator's records (routing, assignment): may share a message with the
    #: phase's other records on its subject (module docstring).
    record: bool = False


#: Records per ``records`` message: a few hundred bytes each, far below NATS's 1 MB payload.
RECORDS_PER_MESSAGE = 512


def bundle(records: list[Outgoing]) -> Outgoing:
    """*records* (one subject) as one message; its id is a digest of theirs."""
    digest = hashlib.blake2b("|".join(r.msg_id for r in records).encode(), digest_size=12)
    document = {"kind": BUNDLE, "records": [r.document for r in records]}
    return Outgoing(records[0].subject, document, f"b.{digest.hexdigest()}")


@dataclass
class Outbox:
    """The writes of one batch (see the module docstring)."""

    first: list[Outgoing] = field(default_factory=list)
    #: Phase-2 records, each with the index in ``first`` of the message it must follow.
    second: list[tuple[int, Outgoing]] = field(default_factory=list)

    def put(self, message: Outgoing, then: Outgoing | None = None) -> None:
        """Queue *message* for phase 1 and, if given, *then* for phase 2 behind it."""
        self.first.append(message)
        if then is not None:
            self.second.append((len(self.first) - 1, then))

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    async def flush(self, broker: Broker) -> None:
        """Publish phase 1, await every ack, then phase 2 (module docstring).

        A failed publish does not stop the others of its phase (each is
        independent); its follower in phase 2 is dropped; the first failure
        is raised once both phases are done.
        """
        first, second = self.first, self.second
        self.first, self.second = [], []
        done = await _publish_all(broker, first)
        failed = {i for i, error in enumerate(done) if error is not None}
        records = [record for i, record in second if i not in failed]
        errors = [e for e in done if e is not None]
        errors += [e for e in await _publish_all(broker, records) if e is not None]
        if errors:
            raise errors[0]


async def _publish_all(broker: Broker, messages: list[Outgoing]) -> list[BaseException | None]:
    """Publish *messages* concurrently; each one's error or None.

    Plain messages are issued in list order, then the records bundled by
    subject (module docstring); a bundle's error is each of its records'.
    """
    if not messages:
        return []
    units: list[tuple[list[int], Outgoing]] = []
    by_subject: dict[str, list[int]] = {}
    for i, message in enumerate(messages):
        if message.record:
            by_subject.setdefault(message.subject, []).append(i)
        else:
            units.append(([i], message))
    for members in by_subject.values():
        for at in range(0, len(members), RECORDS_PER_MESSAGE):
            chunk = members[at : at + RECORDS_PER_MESSAGE]
            lone = len(chunk) == 1
            units.append(
                (chunk, messages[chunk[0]] if lone else bundle([messages[i] for i in chunk]))
            )
    results = await asyncio.gather(
        *(broker.publish(m.subject, m.document, m.msg_id) for _, m in units),
        return_exceptions=True,
    )
    errors: list[BaseException | None] = [None] * len(messages)
    for (members, _), result in zip(units, results, strict=True):
        if isinstance(result, BaseException):
            for i in members:
                errors[i] = result
    return errors


class Pipeline:
    """Flushes of one stream follower's batches, up to *depth* in flight at once.

    Why: a flush waits on the broker's fsyncs (one after another per stream),
    tens of milliseconds for a batch of a hundred tasks, and the follower
    used to wait it out before reading its next batch: one batch in flight,
    the process idle. Routing is pure and the books change as it routes, so
    the next batch can be routed while earlier batches are still being
    written. What stays ordered is what a takeover relies on: each batch's
    own two phases (``flush``: a task acknowledged before its assignment
    record). Across batches nothing was ordered before either (the results
    followers and the submissions follower already flushed side by side):
    readers order records by the time they state, and an agent runs what its
    subject holds in the order stored.
    """

    def __init__(self, broker: Broker, depth: int) -> None:
        self._broker, self._depth = broker, depth
        self._running: set[asyncio.Task[None]] = set()

    async def put(self, outbox: Outbox) -> None:
        """Start flushing *outbox*; wait while *depth* flushes are in flight.

        A flush that failed raises here (as it did from the follower itself).
        """
        if outbox:
            flush = asyncio.ensure_future(outbox.flush(self._broker))
            self._running.add(flush)
        while self._running:
            done = {t for t in self._running if t.done()}
            if not done and len(self._running) < self._depth:
                return
            if not done:
                done, _ = await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
            self._running -= done
            for task in done:
                task.result()

    async def drain(self) -> None:
        """Wait for every flush in flight (raising the first failure)."""
        running, self._running = self._running, set()
        for task in running:
            await task

    async def cancel(self) -> None:
        """Stop the flushes in flight (the follower is cancelled: no longer leading)."""
        running, self._running = self._running, set()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


#: The batch open in the current asyncio task, if any. A context variable, not an attribute:
#: the health and scaling loops run in their own tasks and must not write into (or wait for)
#: the stream follower's batch, nor it into theirs.
OPEN: ContextVar[Outbox | None] = ContextVar("coordinator_outbox", default=None)
