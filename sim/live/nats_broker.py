"""The Broker seam on NATS JetStream: what ``sim.live.transport`` does, behind the protocol.

Each call is one JetStream operation (or the helper transport already had:
``publish`` retries through a broker restart, the message id deduping the
retries; ``StreamReader`` follows a stream with a durable pull consumer).
nats-py's error types are mapped to the seam's: a missing key is ``None``, a
lost compare-and-set is :class:`~sim.live.broker.CasFailed`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from sim.live.broker import Answer, CasFailed, Follower, KvEntry, StreamMessage
from sim.live.cancel import close_bounded
from sim.live.transport import StreamReader, connect, publish, read_all

#: How long a bucket read waits for each next entry (a broker that slow is away: the
#: read fails, and the health checks count a failed read, not missed beats).
KV_READ_S = 5.0


class _NatsFollower:
    """A ``StreamReader`` speaking the seam's message type."""

    def __init__(self, reader: StreamReader) -> None:
        self._reader = reader
        self._pending: dict[int, Any] = {}

    async def read(self, batch: int, timeout_s: float, *, ack: bool = True) -> list[StreamMessage]:
        raw = await self._reader.read(batch, timeout_s, ack=ack)
        out = []
        for message in raw:
            meta = message.metadata
            item = StreamMessage(
                message.subject, message.data, int(meta.sequence.stream), int(meta.num_delivered)
            )
            if not ack:
                self._pending[item.sequence] = message
            out.append(item)
        return out

    async def ack(self, message: StreamMessage) -> None:
        raw = self._pending.pop(message.sequence, None)
        if raw is not None:
            # Confirmed, not fire-and-forget: once this returns, a work queue has forgotten it.
            with contextlib.suppress(Exception):
                await raw.ack_sync()

    async def close(self) -> None:
        await self._reader.close()


class NatsBroker:
    """The seam over one NATS connection (see the module docstring)."""

    def __init__(self, nc: Client, reconnects: list[int] | None = None) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self._buckets: dict[str, KeyValue] = {}
        #: One counter the connection's ``reconnected_cb`` bumps (a list: the callback's cell).
        self._reconnects = [0] if reconnects is None else reconnects

    @classmethod
    async def connect(cls, url: str, token: str | None, name: str) -> NatsBroker:
        reconnects = [0]

        async def reconnected() -> None:
            reconnects[0] += 1

        return cls(await connect(url, token, name, reconnected=reconnected), reconnects)

    def reconnects(self) -> int:
        """Reconnects the client reported (``reconnected_cb``): each one followed an outage."""
        return self._reconnects[0]

    async def _kv(self, bucket: str) -> KeyValue:
        kv = self._buckets.get(bucket)
        if kv is None:
            kv = self._buckets[bucket] = await self.js.key_value(bucket)
        return kv

    # ------------------------------------------------------------------ streams

    async def publish(
        self, subject: str, document: dict[str, Any], msg_id: str | None = None
    ) -> None:
        await publish(self.js, subject, document, msg_id)

    async def notify(self, subject: str, data: bytes) -> None:
        await self.nc.publish(subject, data)

    async def request(self, subject: str, data: bytes, timeout_s: float) -> bytes:
        try:
            return (await self.nc.request(subject, data, timeout=timeout_s)).data
        except NoRespondersError:
            raise ConnectionError(f"no responders on {subject}") from None
        except NatsTimeoutError:
            raise TimeoutError(f"no answer on {subject} in {timeout_s} s") from None

    async def respond(self, subject: str, answer: Answer) -> Callable[[], Awaitable[None]]:
        async def on_message(message: Msg) -> None:
            reply = answer(message.subject, message.data)
            if reply is not None and message.reply:
                await message.respond(reply)

        subscription = await self.nc.subscribe(subject, cb=on_message)
        return subscription.unsubscribe

    def follow(self, stream: str, subject: str, durable: str) -> Follower:
        return _NatsFollower(StreamReader(self.js, stream, subject, durable))

    async def last_sequence(self, stream: str) -> int:
        return int((await self.js.stream_info(stream)).state.last_seq)

    async def read_all(self, stream: str, subject: str) -> list[dict[str, Any]]:
        return await read_all(self.js, stream, subject)

    async def purge(self, stream: str, subject: str) -> None:
        with contextlib.suppress(NotFoundError):
            await self.js.purge_stream(stream, subject=subject)

    async def delete_consumer(self, stream: str, durable: str) -> None:
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(stream, durable)

    # ------------------------------------------------------------------ key-value

    async def kv_get(self, bucket: str, key: str) -> KvEntry | None:
        try:
            entry = await (await self._kv(bucket)).get(key)
        except KeyNotFoundError:
            return None
        return KvEntry(key, entry.value or b"", int(entry.revision or 0))

    async def kv_put(self, bucket: str, key: str, value: bytes) -> int:
        return int(await (await self._kv(bucket)).put(key, value))

    async def kv_create(self, bucket: str, key: str, value: bytes) -> int:
        try:
            return int(await (await self._kv(bucket)).create(key, value))
        except Exception as exc:
            raise _cas(exc) from None

    async def kv_update(self, bucket: str, key: str, value: bytes, revision: int) -> int:
        try:
            return int(await (await self._kv(bucket)).update(key, value, last=revision))
        except Exception as exc:
            raise _cas(exc) from None

    async def kv_delete(self, bucket: str, key: str) -> None:
        await (await self._kv(bucket)).delete(key)

    async def kv_keys(self, bucket: str) -> list[str]:
        try:
            return list(await (await self._kv(bucket)).keys())
        except nats.js.errors.NoKeysError:
            return []

    async def kv_entries(self, bucket: str) -> dict[str, KvEntry]:
        """Every live key's latest entry, read through one watcher (one consumer, one pass).

        The read ends at the entry after which nothing is pending (its ``delta`` is
        0), delete markers included so that the last one is always seen; not at
        nats-py's end-of-stored-values marker, which comes early when the server
        pushed the values before the watcher looked (its consumer then has none
        pending, the client has taken none yet). Stopping at that marker returned
        an empty registry about once in 75 reads while a fleet rewrote its beat
        bundles every 50 ms, which the health checks read as every agent's missed
        beat. A read that stalls fails (``nats.errors.TimeoutError``): the health
        checks count a failed read, never a partial one.
        """
        kv = await self._kv(bucket)
        watcher = await kv.watchall()
        out: dict[str, KvEntry] = {}
        try:
            while True:
                entry = await watcher.updates(KV_READ_S)  # type: ignore[no-untyped-call]
                if entry is None:  # the end-of-stored-values marker, maybe early
                    if not out and (await kv.status()).values == 0:
                        break  # an empty bucket: nothing follows
                    continue
                if entry.operation in (KV_DEL, KV_PURGE):
                    out.pop(entry.key, None)
                else:
                    value = entry.value or b""
                    out[entry.key] = KvEntry(entry.key, value, int(entry.revision or 0))
                if not entry.delta:  # nothing pending after this one
                    break
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]
        return out

    async def close(self) -> None:
        await close_bounded(self.nc)


def _cas(exc: Exception) -> Exception:
    """A lost compare-and-set as CasFailed; anything else (the broker is away) unchanged."""
    if isinstance(exc, KeyWrongLastSequenceError):
        return CasFailed(str(exc))
    text = str(exc)
    if "wrong last sequence" in text or "key exists" in text:
        return CasFailed(text)
    return exc
