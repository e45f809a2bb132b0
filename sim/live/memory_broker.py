"""The Broker seam in memory: JetStream's semantics without a server, for tests.

Like httpx's ``MockTransport``, it lets the coordinator's whole logic run in
one process with nothing to start. It keeps the semantics the coordinator
relies on, not NATS's performance or wire format:

* **streams** capture subjects by pattern (``*``, ``>``); a publish to a
  subject no stream captures fails (JetStream answers "no responders");
* **message-id dedupe**: a second publish of an id within
  ``dedupe_window_s`` (on the injected clock) is dropped, per stream;
* **work-queue retention**: an acknowledged message is deleted; a durable
  consumer delivers each message of its filter once, and again (``delivered``
  counting up) when it was not acked within ``ack_wait_s`` — to whoever binds
  the consumer next (an agent restarting under its id);
* **key-value buckets** with a revision per bucket (JetStream's stream
  sequence): create fails if the key exists, update fails unless the revision
  is the key's last (:class:`~sim.live.broker.CasFailed`); an optional TTL
  expires entries on the injected clock.

Core publishes (``notify``) are recorded in :attr:`MemoryBroker.notified`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sim.live.broker import (
    DEDUPE_WINDOW_S,
    Answer,
    CasFailed,
    Follower,
    KvEntry,
    StreamMessage,
    decode,
    encode,
    subject_matches,
)
from sim.live.transport import (
    AGENTS_BUCKET,
    EVENTS,
    LEASE_BUCKET,
    METRICS,
    REPLIES,
    SUBMIT,
    dispatch_stream,
    dispatch_subject,
    result_subject,
    results_stream,
    submit_stream,
    submit_subject,
    zone_tasks_streams,
)


@dataclass
class _Consumer:
    filter: str
    cursor: int = 0  # the last stream sequence handed out for the first time
    #: Delivered and not acked: sequence -> (deliveries so far, wall time of the last).
    pending: dict[int, tuple[int, float]] = field(default_factory=dict)


@dataclass
class _Stream:
    name: str
    subjects: tuple[str, ...]
    work_queue: bool
    messages: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    last_seq: int = 0
    seen_ids: dict[str, float] = field(default_factory=dict)
    consumers: dict[str, _Consumer] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Bucket:
    ttl_s: float | None
    revision: int = 0
    entries: dict[str, tuple[KvEntry, float]] = field(default_factory=dict)


class _MemoryFollower:
    def __init__(self, broker: MemoryBroker, stream: _Stream, durable: str) -> None:
        self._broker, self._stream, self._durable = broker, stream, durable

    async def read(self, batch: int, timeout_s: float, *, ack: bool = True) -> list[StreamMessage]:
        out = self._take(batch)
        if not out and timeout_s > 0:
            self._stream.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stream.arrived.wait(), timeout_s)
            out = self._take(batch)
        if ack:
            for message in out:
                await self.ack(message)
        return out

    def _take(self, batch: int) -> list[StreamMessage]:
        stream = self._stream
        consumer = stream.consumers.get(self._durable)
        if consumer is None:
            return []
        now = self._broker.wall()
        out: list[StreamMessage] = []
        for seq, (count, when) in sorted(consumer.pending.items()):
            if len(out) >= batch:
                return out
            if seq in stream.messages and now - when >= self._broker.ack_wait_s:
                consumer.pending[seq] = (count + 1, now)
                out.append(_message(stream, seq, count + 1))
        for seq in sorted(s for s in stream.messages if s > consumer.cursor):
            if len(out) >= batch:
                break
            subject = stream.messages[seq][0]
            consumer.cursor = seq
            if subject_matches(consumer.filter, subject):
                consumer.pending[seq] = (1, now)
                out.append(_message(stream, seq, 1))
        return out

    async def ack(self, message: StreamMessage) -> None:
        stream = self._stream
        consumer = stream.consumers.get(self._durable)
        if consumer is not None:
            consumer.pending.pop(message.sequence, None)
        if stream.work_queue:
            stream.messages.pop(message.sequence, None)

    async def close(self) -> None:
        self._stream.consumers.pop(self._durable, None)


class MemoryBroker:
    """The seam in one process (see the module docstring)."""

    def __init__(
        self,
        *,
        wall: Callable[[], float] = time.monotonic,
        dedupe_window_s: float = DEDUPE_WINDOW_S,
        ack_wait_s: float = 30.0,
    ) -> None:
        self.wall = wall
        self.dedupe_window_s = dedupe_window_s
        self.ack_wait_s = ack_wait_s
        self.streams: dict[str, _Stream] = {}
        self.buckets: dict[str, _Bucket] = {}
        self.notified: list[tuple[str, bytes]] = []
        self.responders: dict[str, Answer] = {}
        #: Lost-and-made-again connections a test pretends happened (see ``reconnects``).
        self.reconnected = 0

    # ------------------------------------------------------------------ set-up

    def add_stream(self, name: str, subjects: Iterable[str], *, work_queue: bool = False) -> None:
        self.streams.setdefault(name, _Stream(name, tuple(subjects), work_queue))

    def add_bucket(self, name: str, ttl_s: float | None = None) -> None:
        self.buckets.setdefault(name, _Bucket(ttl_s))

    @classmethod
    def orchestra(cls, zones: Iterable[str], **settings: Any) -> MemoryBroker:
        """A broker laid out as ``sim.live.layout.ensure_layout`` lays out NATS."""
        broker = cls(**settings)
        for name, subject in (
            (SUBMIT, "orch.submit"),
            (EVENTS, "orch.event"),
            (METRICS, "orch.metric"),
            (REPLIES, "orch.reply.>"),
        ):
            broker.add_stream(name, [subject])
        for zone in zones:
            for stream, subjects in zone_tasks_streams(zone):
                broker.add_stream(stream, [subjects], work_queue=True)
            broker.add_stream(results_stream(zone), [result_subject(zone)])
            broker.add_stream(dispatch_stream(zone), [dispatch_subject(zone)])
            broker.add_stream(submit_stream(zone), [submit_subject(zone)])
        broker.add_bucket(AGENTS_BUCKET)
        broker.add_bucket(LEASE_BUCKET)
        return broker

    # ------------------------------------------------------------------ streams

    def _stream_for(self, subject: str) -> _Stream:
        for stream in self.streams.values():
            if any(subject_matches(p, subject) for p in stream.subjects):
                return stream
        raise LookupError(f"{subject}: no stream captures this subject")

    async def publish(
        self, subject: str, document: dict[str, Any], msg_id: str | None = None
    ) -> None:
        stream = self._stream_for(subject)
        now = self.wall()
        if msg_id is not None:
            seen = stream.seen_ids.get(msg_id)
            if seen is not None and now - seen < self.dedupe_window_s:
                return  # a duplicate within the window: stored once
            stream.seen_ids[msg_id] = now
        stream.last_seq += 1
        stream.messages[stream.last_seq] = (subject, encode(document))
        stream.arrived.set()

    def _responder(self, subject: str) -> Answer | None:
        """Who answers *subject*: its own responder, else one on a pattern (``*``, ``>``)."""
        answer = self.responders.get(subject)
        if answer is None:
            for pattern, candidate in self.responders.items():
                if subject_matches(pattern, subject):
                    return candidate
        return answer

    async def notify(self, subject: str, data: bytes) -> None:
        self.notified.append((subject, data))
        answer = self._responder(subject)
        if answer is not None:
            answer(subject, data)

    async def respond(self, subject: str, answer: Answer) -> Callable[[], Awaitable[None]]:
        self.responders[subject] = answer

        async def stop() -> None:
            self.responders.pop(subject, None)

        return stop

    async def request(self, subject: str, data: bytes, timeout_s: float = 1.0) -> bytes:
        """A core request (NATS's ``no responders`` when nobody answers the subject)."""
        answer = self._responder(subject)
        reply = answer(subject, data) if answer is not None else None
        if reply is None:
            raise ConnectionError(f"no responders on {subject}")
        return reply

    def follow(self, stream: str, subject: str, durable: str) -> Follower:
        target = self.streams[stream]
        # Bound anew (a restart), a durable consumer goes on where it was: what it delivered
        # and nobody acked comes again once the ack wait has passed, as JetStream does.
        target.consumers.setdefault(durable, _Consumer(subject))
        return _MemoryFollower(self, target, durable)

    async def last_sequence(self, stream: str) -> int:
        return self.streams[stream].last_seq

    async def read_all(self, stream: str, subject: str) -> list[dict[str, Any]]:
        target = self.streams[stream]
        return [
            decode(data)
            for _, (subj, data) in sorted(target.messages.items())
            if subject_matches(subject, subj)
        ]

    def waiting(self, stream: str, subject: str = ">") -> list[dict[str, Any]]:
        """The documents stored on *stream* under *subject* (a test's view of a queue)."""
        target = self.streams[stream]
        return [
            decode(data)
            for _, (subj, data) in sorted(target.messages.items())
            if subject_matches(subject, subj)
        ]

    async def purge(self, stream: str, subject: str) -> None:
        target = self.streams.get(stream)
        if target is None:
            return
        for seq in [
            s for s, (subj, _) in target.messages.items() if subject_matches(subject, subj)
        ]:
            del target.messages[seq]

    async def delete_consumer(self, stream: str, durable: str) -> None:
        target = self.streams.get(stream)
        if target is not None:
            target.consumers.pop(durable, None)

    # ------------------------------------------------------------------ key-value

    def _bucket(self, name: str) -> _Bucket:
        bucket = self.buckets.get(name)
        if bucket is None:
            bucket = self.buckets[name] = _Bucket(None)
        return bucket

    def _live(self, bucket: _Bucket, key: str) -> KvEntry | None:
        held = bucket.entries.get(key)
        if held is None:
            return None
        entry, written = held
        if bucket.ttl_s is not None and self.wall() - written >= bucket.ttl_s:
            del bucket.entries[key]
            return None
        return entry

    def _write(self, bucket: _Bucket, key: str, value: bytes) -> int:
        bucket.revision += 1
        bucket.entries[key] = (KvEntry(key, value, bucket.revision), self.wall())
        return bucket.revision

    async def kv_get(self, bucket: str, key: str) -> KvEntry | None:
        return self._live(self._bucket(bucket), key)

    async def kv_put(self, bucket: str, key: str, value: bytes) -> int:
        return self._write(self._bucket(bucket), key, value)

    async def kv_create(self, bucket: str, key: str, value: bytes) -> int:
        target = self._bucket(bucket)
        if self._live(target, key) is not None:
            raise CasFailed(f"{bucket}/{key}: key exists")
        return self._write(target, key, value)

    async def kv_update(self, bucket: str, key: str, value: bytes, revision: int) -> int:
        target = self._bucket(bucket)
        entry = self._live(target, key)
        if entry is None or entry.revision != revision:
            raise CasFailed(f"{bucket}/{key}: wrong last sequence")
        return self._write(target, key, value)

    async def kv_delete(self, bucket: str, key: str) -> None:
        self._bucket(bucket).entries.pop(key, None)

    async def kv_keys(self, bucket: str) -> list[str]:
        return sorted((await self.kv_entries(bucket)).keys())

    async def kv_entries(self, bucket: str) -> dict[str, KvEntry]:
        target = self._bucket(bucket)
        out = {}
        for key in list(target.entries):
            entry = self._live(target, key)
            if entry is not None:
                out[key] = entry
        return out

    def reconnects(self) -> int:
        return self.reconnected

    async def close(self) -> None:
        return None


def _message(stream: _Stream, seq: int, delivered: int) -> StreamMessage:
    subject, data = stream.messages[seq]
    return StreamMessage(subject, data, seq, delivered)
