"""Talking to NATS JetStream: connections, publishing through restarts, reading streams.

The broker's names and the record order live in ``sim.live.subjects``, the
creation of streams and buckets in ``sim.live.layout``, the embedded server
in ``sim.live.server``; they are re-exported here, where the agents, the
runtime and the service have always imported them from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.kv import KeyValue

from sim.live.broker import DEDUPE_WINDOW_S, decode, encode
from sim.live.cancel import stop_if_cancelled
from sim.live.errors import LiveError
from sim.live.layout import (
    Layout,
    TaskStream,
    ensure_agent_consumer,
    ensure_layout,
    ensure_replies_stream,
    ensure_zone_stream,
    task_streams,
)
from sim.live.server import EmbeddedServer, free_port, server_binary
from sim.live.subjects import (
    AGENTS_BUCKET,
    BROADCAST,
    CALL,
    CALL_ANSWERED,
    CALL_GONE,
    DISPATCH_PREFIX,
    EVENTS,
    LEASE_BUCKET,
    LEGACY_RECORDS,
    LEGACY_TASKS,
    MAX_AGENTS_PER_ZONE,
    METRICS,
    RECORD_TIME,
    REPLIES,
    RESULTS_PREFIX,
    SUBMIT,
    SUBMIT_PREFIX,
    TASKS_PREFIX,
    TEAM_LEADS_DOWN_KEY,
    ZONE_COORDINATORS_DOWN_KEY,
    ZONES_CUT_OFF_KEY,
    ZONES_DOWN_KEY,
    agent_consumer,
    agent_subject,
    control_subject,
    dispatch_stream,
    dispatch_subject,
    legacy_tasks_stream,
    merge_records,
    record_streams,
    result_subject,
    results_stream,
    shard_stream,
    submit_stream,
    submit_streams,
    submit_subject,
    task_shard,
    tasks_stream,
    zone_task_subjects,
    zone_tasks_streams,
)

#: What a broker's (or TLS's) refusal says: asking again cannot help, so a first connection
#: reports it instead of retrying for ever.
REFUSALS = ("authorization violation", "authentication", "certificate verify failed")


# --------------------------------------------------------------------------- clients


async def connect(
    url: str,
    token: str | None,
    name: str,
    *,
    reconnected: Callable[[], Awaitable[None]] | None = None,
) -> Client:
    """A connection that keeps reconnecting for as long as the process lives.

    *reconnected* is called after each reconnect (pull requests waiting on the
    old server are gone: a long-waiting puller asks again).
    """

    refused: list[Exception] = []

    async def quiet(exc: Exception) -> None:
        # Reconnects are expected (broker restarts); errors surface on use. But a broker
        # that refuses the credentials would be asked again for ever: noted, and the first
        # connection gives up on it (below) rather than hanging without a word.
        text = str(exc).lower()
        if any(word in text for word in REFUSALS) or isinstance(exc, ssl.SSLError):
            refused.append(exc)

    from sim.live.credentials import Auth, CredentialError

    try:
        # The environment's credentials (sim.live.credentials); *token*, when given, wins.
        options: dict[str, Any] = Auth.from_env().connect_options(url)
    except CredentialError as exc:
        raise LiveError(str(exc)) from None
    if token:
        options["token"] = token
    if reconnected is not None:
        options["reconnected_cb"] = reconnected
    attempt = asyncio.ensure_future(
        nats.connect(
            url,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            connect_timeout=5,
            error_cb=quiet,
            **options,
        )
    )
    try:
        while not attempt.done():
            await asyncio.wait({attempt}, timeout=0.1)
            if refused and not attempt.done():
                attempt.cancel()
                await asyncio.gather(attempt, return_exceptions=True)
                raise LiveError(f"{url}: the broker refused us ({refused[-1]})")
        return attempt.result()
    except LiveError:
        raise
    except asyncio.CancelledError:
        attempt.cancel()
        raise
    except Exception as exc:  # nats raises several unrelated types for "cannot connect"
        raise LiveError(f"{url}: cannot connect to NATS ({type(exc).__name__}: {exc})") from None


async def kv(js: JetStreamContext, bucket: str) -> KeyValue:
    return await js.key_value(bucket)


async def publish(
    js: JetStreamContext, subject: str, document: dict[str, Any], msg_id: str | None = None
) -> None:
    """Publish to a stream, retrying through a broker restart (the message id dedupes retries)."""
    headers = {"Nats-Msg-Id": msg_id} if msg_id else None
    delay = 0.05
    while True:
        try:
            await js.publish(subject, encode(document), headers=headers, timeout=5)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            # nats-py reports a cancelled request as its own timeout: retrying it would keep
            # a cancelled publisher (an agent at the end of a run) going against a stopped
            # broker for ever (seen once: a bench burst hung in asyncio.run's clean-up).
            stop_if_cancelled()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


class StreamReader:
    """Reads a whole stream from its first message on, then follows it.

    A durable consumer (named per reader) keeps the position on the broker, so
    reading survives a broker restart; a fresh reader starts from the top,
    which is how a coordinator taking over rebuilds its state.
    """

    def __init__(self, js: JetStreamContext, stream: str, subject: str, durable: str) -> None:
        self._js, self._stream, self._subject, self._durable = js, stream, subject, durable
        self._sub: JetStreamContext.PullSubscription | None = None

    async def _subscription(self) -> JetStreamContext.PullSubscription:
        if self._sub is None:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=30.0,
                inactive_threshold=600.0,
            )
            self._sub = await self._js.pull_subscribe(
                self._subject, durable=self._durable, stream=self._stream, config=config
            )
        return self._sub

    async def read(
        self, batch: int = 256, timeout_s: float = 0.5, *, ack: bool = True
    ) -> list[Msg]:
        """The next messages (possibly none); acked unless *ack* is false (a reader's state
        is rebuilt anew, so it need not hold them)."""
        try:
            sub = await self._subscription()
            messages = await sub.fetch(batch, timeout=timeout_s)
        except asyncio.CancelledError:
            raise
        except (nats.errors.TimeoutError, TimeoutError):
            # nats-py reports a cancelled fetch as its own timeout: an empty read then would
            # keep a cancelled follower reading for ever (a CI run's stop gave up on one).
            stop_if_cancelled()
            return []
        except Exception:
            stop_if_cancelled()
            self._sub = None  # the broker restarted or the consumer vanished: bind again
            await asyncio.sleep(0.1)
            return []
        if ack:
            for message in messages:
                with contextlib.suppress(Exception):
                    await message.ack()
        return messages

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(self._stream, self._durable)


async def read_all(
    js: JetStreamContext, stream: str, subject: str, stall_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every message of a stream, decoded (for writing the run's records at the end).

    Reads up to the stream's last sequence as it stood when called. A read
    that makes no progress for *stall_s* wall seconds is a LiveError naming
    the stream: a run's end must never wait for ever on its own records.
    """
    info = await js.stream_info(stream)
    last = int(info.state.last_seq)
    reader = StreamReader(js, stream, subject, f"dump_{secrets.token_hex(4)}")
    out: list[dict[str, Any]] = []
    seen = 0
    progress = time.monotonic()
    try:
        while seen < last and int(info.state.messages) > 0:
            batch = await reader.read(1024, 1.0)
            if not batch:
                info = await js.stream_info(stream)
                if int(info.state.messages) == 0 or seen >= int(info.state.last_seq):
                    break
                if time.monotonic() - progress > stall_s:
                    raise LiveError(
                        f"live run: reading {stream} stalled at sequence {seen} of {last} "
                        f"for {stall_s:g} s"
                    )
                continue
            progress = time.monotonic()
            for message in batch:
                out.append(decode(message.data))
                seen = max(seen, int(message.metadata.sequence.stream))
    finally:
        await reader.close()
    return out


async def read_records(
    js: JetStreamContext, zones: Iterable[str], stall_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every zone's dispatch records and results, merged (``merge_records``)."""
    parts = [await read_all(js, name, subject, stall_s) for name, subject in record_streams(zones)]
    return merge_records(parts)


async def every(period_s: float, action: Callable[[], Awaitable[None]]) -> None:
    """Run *action* every *period_s* wall seconds until cancelled; one failure is not the end."""
    while True:
        await asyncio.sleep(period_s)
        try:
            await action()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broker hiccup: log and keep the loop alive
            stop_if_cancelled()
            print(f"live: {action!r} failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def env_token() -> str | None:
    return os.environ.get("ORCHESTRA_NATS_TOKEN")


__all__ = [
    "AGENTS_BUCKET",
    "BROADCAST",
    "CALL",
    "CALL_ANSWERED",
    "CALL_GONE",
    "DEDUPE_WINDOW_S",
    "DISPATCH_PREFIX",
    "EVENTS",
    "LEASE_BUCKET",
    "LEGACY_RECORDS",
    "LEGACY_TASKS",
    "MAX_AGENTS_PER_ZONE",
    "METRICS",
    "RECORD_TIME",
    "REFUSALS",
    "REPLIES",
    "RESULTS_PREFIX",
    "SUBMIT",
    "SUBMIT_PREFIX",
    "TASKS_PREFIX",
    "TEAM_LEADS_DOWN_KEY",
    "ZONES_CUT_OFF_KEY",
    "ZONES_DOWN_KEY",
    "ZONE_COORDINATORS_DOWN_KEY",
    "EmbeddedServer",
    "Layout",
    "LiveError",
    "StreamReader",
    "TaskStream",
    "agent_consumer",
    "agent_subject",
    "connect",
    "control_subject",
    "decode",
    "dispatch_stream",
    "dispatch_subject",
    "encode",
    "ensure_agent_consumer",
    "ensure_layout",
    "ensure_replies_stream",
    "ensure_zone_stream",
    "env_token",
    "every",
    "free_port",
    "kv",
    "legacy_tasks_stream",
    "merge_records",
    "publish",
    "read_all",
    "read_records",
    "record_streams",
    "result_subject",
    "results_stream",
    "server_binary",
    "shard_stream",
    "submit_stream",
    "submit_streams",
    "submit_subject",
    "task_shard",
    "task_streams",
    "tasks_stream",
    "zone_task_subjects",
    "zone_tasks_streams",
]
