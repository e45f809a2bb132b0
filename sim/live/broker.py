"""The Broker seam: the few things the live coordinator asks of a message broker.

Like httpx's transports, the coordinator meets the world through one narrow
interface, so its logic runs the same on NATS JetStream
(:class:`sim.live.nats_broker.NatsBroker`, the real thing) and in memory
(:class:`sim.live.memory_broker.MemoryBroker`, for tests without a server).
What the coordinator needs, and no more:

* **publish** a JSON document to a stream's subject, with an optional message
  id: a second publish of the same id within the dedupe window is dropped
  (that is what makes a re-dispatch after a takeover idempotent);
* **notify**: a plain core publish on a control subject (no stream, no
  acknowledgement: ``drain`` to one agent);
* **respond**: answer core requests on a subject (no stream: the model-call
  gate, whose answers are only worth anything at once) until told to stop;
* **key-value buckets**: get, put, create (fails if the key exists),
  compare-and-set update on the entry's revision (fails if it moved), delete,
  keys, and every entry at once (one read of a fleet's heartbeats instead of
  one round trip per agent);
* **follow** a stream with a durable consumer from its first message: read a
  batch (acknowledged on read unless asked otherwise), ack; the last sequence
  of a stream (how far a catch-up must read); **read_all** of a stream;
* **purge** a subject of a work-queue stream and **delete a consumer** (a dead
  agent's queue is retired);
* **reconnects**: how many times the connection was lost and made again (the
  health checks give the agents time to beat again after a real outage).

Failures: a compare-and-set that loses raises :class:`CasFailed`; a key that
is not there is ``None`` from ``kv_get``; anything else (the broker is down)
raises whatever the implementation raises, and callers treat it as "no
answer now".
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

#: How long a message id is remembered: a coordinator re-dispatching after a takeover or
#: a broker restart cannot enqueue a task twice within it (wall seconds).
DEDUPE_WINDOW_S = 3600.0


#: What answers a core request: (subject, data) → the reply, or None for no reply.
Answer = Callable[[str, bytes], bytes | None]


class CasFailed(Exception):
    """A create on a key that exists, or an update on a revision that is no longer the last."""


@dataclass(frozen=True)
class KvEntry:
    """One key's latest value and the revision a compare-and-set must name."""

    key: str
    value: bytes
    revision: int

    def document(self) -> dict[str, Any]:
        return decode(self.value or b"{}")


@dataclass(frozen=True)
class StreamMessage:
    """A message read from a stream: its place in the stream and how often it was delivered."""

    subject: str
    data: bytes
    sequence: int  # the stream's sequence number, 1-based
    delivered: int = 1  # 1 on the first delivery, more on a redelivery

    def document(self) -> dict[str, Any]:
        return decode(self.data)


class Follower(Protocol):
    """A durable consumer on one stream (filtered to one subject pattern)."""

    async def read(self, batch: int, timeout_s: float, *, ack: bool = True) -> list[StreamMessage]:
        """Up to *batch* next messages, waiting at most *timeout_s* for the first (may be [])."""
        ...

    async def ack(self, message: StreamMessage) -> None:
        """Acknowledge a message read with ``ack=False`` (a work queue then forgets it)."""
        ...

    async def close(self) -> None:
        """Stop following and delete the consumer (a reader's state is rebuilt anew)."""
        ...


class Broker(Protocol):
    """What the live coordinator needs from a broker (see the module docstring)."""

    async def publish(
        self, subject: str, document: dict[str, Any], msg_id: str | None = None
    ) -> None: ...

    async def notify(self, subject: str, data: bytes) -> None: ...

    async def respond(self, subject: str, answer: Answer) -> Callable[[], Awaitable[None]]:
        """Call *answer(subject, data)* per message; reply what it returns (None: no reply)."""
        ...

    async def request(self, subject: str, data: bytes, timeout_s: float) -> bytes:
        """A core request's answer; ConnectionError when nobody answers (no responders),
        TimeoutError when nobody answers in *timeout_s* wall seconds."""
        ...

    async def kv_get(self, bucket: str, key: str) -> KvEntry | None: ...

    async def kv_put(self, bucket: str, key: str, value: bytes) -> int: ...

    async def kv_create(self, bucket: str, key: str, value: bytes) -> int: ...

    async def kv_update(self, bucket: str, key: str, value: bytes, revision: int) -> int: ...

    async def kv_delete(self, bucket: str, key: str) -> None: ...

    async def kv_keys(self, bucket: str) -> list[str]: ...

    async def kv_entries(self, bucket: str) -> dict[str, KvEntry]: ...

    def follow(self, stream: str, subject: str, durable: str) -> Follower: ...

    async def last_sequence(self, stream: str) -> int: ...

    async def read_all(self, stream: str, subject: str) -> list[dict[str, Any]]: ...

    async def purge(self, stream: str, subject: str) -> None: ...

    async def delete_consumer(self, stream: str, durable: str) -> None: ...

    def reconnects(self) -> int:
        """Times the connection was lost and re-established so far (never, in memory)."""
        ...

    async def close(self) -> None: ...


def event_document(
    time_s: float, kind: str, subject: str, detail: dict[str, Any]
) -> dict[str, Any]:
    """One event as the run's log holds it (``orch.event``): what the coordinators and the
    chaos timeline write alike, and the replay and the records read (the simulator's
    ``EventLog`` format: its detail a JSON object with sorted keys)."""
    text = json.dumps(detail, sort_keys=True, separators=(",", ":"))
    return {"time_s": time_s, "kind": kind, "subject": subject, "detail": text}


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def decode(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


#: The kind of a message carrying several of the coordinator's records at once
#: (``{"kind": "records", "records": [...]}``, see ``sim.live.coordinator.outbox``).
BUNDLE = "records"


def unbundle(documents: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each record of *documents*, bundles opened in place (what every reader sees).

    Anybody may publish a submission, so a bundle read from a submission
    stream may be malformed: one whose ``records`` is not a list is passed
    on as itself (the coordinator rejects it as a submission of no known
    kind); a record that is not a JSON object names nothing and is dropped.
    """
    for document in documents:
        records = document.get("records") if document.get("kind") == BUNDLE else None
        if isinstance(records, list):
            yield from (record for record in records if isinstance(record, dict))
        else:
            yield document


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a final ``>`` one or more."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)
