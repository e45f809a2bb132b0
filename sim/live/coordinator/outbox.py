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

Message ids are the callers' (the broker dedupes them); the outbox only
changes when a write happens, never what is written.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sim.live.broker import Broker


@dataclass(frozen=True)
class Outgoing:
    """One stream publish: subject, JSON document, message id (the dedupe key)."""

    subject: str
    document: dict[str, Any]
    msg_id: str


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
    """Publish *messages* concurrently (issued in list order); each one's error or None."""
    if not messages:
        return []
    results = await asyncio.gather(
        *(broker.publish(m.subject, m.document, m.msg_id) for m in messages),
        return_exceptions=True,
    )
    return [r if isinstance(r, BaseException) else None for r in results]


#: The batch open in the current asyncio task, if any. A context variable, not an attribute:
#: the health and scaling loops run in their own tasks and must not write into (or wait for)
#: the stream follower's batch, nor it into theirs.
OPEN: ContextVar[Outbox | None] = ContextVar("coordinator_outbox", default=None)
