"""A live agent: heartbeats, pulls the tasks assigned to it, runs a handler.

Lifecycle: it creates its own durable consumer on its zone's task stream, registers
by writing its first heartbeat (status ``idle``) into the ``orch_agents``
bucket, then loops — pull the next task the coordinator assigned to it (the
load balancer's choice, or queued work handed to its free slot), report the
attempt's start, run the handler (status ``busy``), report its end, ack. A
handler that raises marks the attempt failed (status ``error`` until the next
task). ``drain`` (a core-NATS message on its control subject or the broadcast
subject) stops the pulling; the agent finishes what it holds, writes status
``offline`` and exits (the coordinator places anything still on its subject).
A kill -9 leaves its unacked task on its consumer, which redelivers it after
the ack wait should the agent come back under the same id; otherwise the
coordinator, once the failure detector declares the agent dead, purges its
subject and assigns the tasks it held to other agents. The heartbeat key
expires with the bucket's TTL.

Where it runs: ``orchestra live agent`` is one agent in its own OS process
with its own connection (``LiveAgent.run``). A simulated fleet
(sim.live.provisioner.SimulatedFleet) hosts thousands of the very same
``LiveAgent`` objects in one process, over a few shared connections
(``LiveAgent.serve`` on an ``AgentLink``): the broker and the coordinator see
the same consumers, heartbeats and result documents either way.

Handlers: ``sleep`` (the task's drawn work divided by speed and time scale),
``noop`` (returns at once: benchmarks of the coordinator), ``command:TEMPLATE``
(a shell command formatted with the task's fields), or ``module:function`` (a
Python callable taking the task dict; may be async).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import itertools
import re
import secrets
import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from sim.live.clock import Clock
from sim.live.llm_calls import (
    LlmCaller,
    RateLimited,
    begin_attempt,
    run_declared_calls,
    wall_seed,
)
from sim.live.start_report import StartReport
from sim.live.subjects import START_UNREPORTED
from sim.live.transport import (
    AGENTS_BUCKET,
    BROADCAST,
    LEASE_BUCKET,
    agent_consumer,
    connect,
    control_subject,
    decode,
    encode,
    ensure_agent_consumer,
    ensure_zone_stream,
    env_token,
    publish,
    result_subject,
    tasks_stream,
)

Handler = Callable[[dict[str, Any]], Awaitable[bool]]

#: A heartbeat waits for its ack at most this many heartbeat periods (and at least
#: BEAT_ACK_FLOOR_S wall seconds): by then newer beats are due and say the same.
BEAT_ACK_PERIODS = 2.0
BEAT_ACK_FLOOR_S = 0.5


@dataclass(frozen=True)
class AgentConfig:
    agent_id: str
    zone: str
    category: str
    url: str
    token: str | None
    time_scale: float
    epoch: float | None = None  # None: read the run's epoch from the lease bucket
    handler: str = "sleep"
    speed: float = 1.0
    slots: int = 1
    heartbeat_s: float = 0.1  # wall seconds between heartbeats
    ack_wait_s: float = 1.0  # wall seconds; long tasks send in-progress within it
    #: The team it belongs to ("": none), said in its heartbeats: the team bulkhead counts it.
    team: str = ""
    #: Runs on spot capacity, said in its heartbeats: the coordinator's spot books count it.
    spot: bool = False
    #: Wall seconds one pull waits on the broker for a task. Each idle slot asks again
    #: after it, so a fleet of N idle slots costs the broker about 2 N / fetch_s requests
    #: per second: a simulated fleet of thousands waits longer (a drain or a reconnect
    #: cuts the wait short, so it only costs idle traffic, never responsiveness).
    fetch_s: float = 0.5


def make_handler(spec: str, config: AgentConfig) -> Handler:
    """The handler named by *spec* (see the module docstring)."""
    if spec == "sleep":

        async def sleep(task: dict[str, Any]) -> bool:
            if "llm" in task:  # model calls under the fleet's limits, then tool time
                await run_declared_calls(task, config.speed, config.time_scale)
                return True
            await asyncio.sleep(float(task["work_s"]) / config.speed / config.time_scale)
            return True

        return sleep
    if spec == "noop":

        async def noop(task: dict[str, Any]) -> bool:
            return True

        return noop
    if spec.startswith("command:"):
        template = spec.removeprefix("command:")

        async def command(task: dict[str, Any]) -> bool:
            fields = {k: shlex.quote(str(v)) for k, v in task.items()}
            process = await asyncio.create_subprocess_shell(template.format(**fields))
            return await process.wait() == 0

        return command
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ValueError(
            f"--handler: expected sleep, noop, command:TEMPLATE or module:function, got {spec!r}"
        )
    function = getattr(importlib.import_module(module_name), function_name)

    async def call(task: dict[str, Any]) -> bool:
        if inspect.iscoroutinefunction(function):
            result = await function(task)
        else:
            result = await asyncio.to_thread(function, task)
        return result is not False

    return call


class EpochWatch:
    """The run's clock, once the runtime has published its epoch (scenario second 0).

    The runtime writes the epoch into ``orch_lease`` only when the whole fleet
    heartbeats, so agents start without it (their heartbeats then carry
    ``time_s = -1``). One watch reads the key at most every *poll_s* wall
    seconds however many agents ask: a simulated fleet shares one.
    """

    def __init__(
        self, lease: KeyValue, time_scale: float, epoch: float | None, poll_s: float = 0.05
    ) -> None:
        self._lease, self._scale, self._poll_s = lease, time_scale, poll_s
        self.clock: Clock | None = Clock(epoch, time_scale) if epoch is not None else None
        self._next_read = 0.0

    async def poll(self) -> Clock | None:
        """The clock if known; otherwise one read of the key (if the last is old enough)."""
        if self.clock is None and time.monotonic() >= self._next_read:
            self._next_read = time.monotonic() + self._poll_s
            with contextlib.suppress(Exception):
                entry = await self._lease.get("epoch")
                self.clock = Clock(float(decode(entry.value or b"{}")["epoch"]), self._scale)
        return self.clock

    async def wait(self) -> Clock:
        while (clock := await self.poll()) is None:
            await asyncio.sleep(self._poll_s)
        return clock


@dataclass
class AgentLink:
    """What an agent uses of the broker: a connection, its JetStream, the registry, the epoch.

    An agent process opens its own; a simulated fleet opens a few and shares them.
    """

    nc: Client
    js: JetStreamContext
    registry: KeyValue
    epoch: EpochWatch

    @classmethod
    async def open(
        cls,
        url: str,
        token: str | None,
        name: str,
        time_scale: float,
        epoch: float | None = None,
        *,
        watch: EpochWatch | None = None,
        reconnected: Callable[[], Awaitable[None]] | None = None,
    ) -> AgentLink:
        """A new connection; *watch* shares another link's epoch watch."""
        nc = await connect(url, token, name, reconnected=reconnected)
        js = nc.jetstream()
        registry = await js.key_value(AGENTS_BUCKET)
        if watch is None:
            watch = EpochWatch(await js.key_value(LEASE_BUCKET), time_scale, epoch)
        return cls(nc, js, registry, watch)


_R = TypeVar("_R")


async def while_swamped(action: Callable[[], Awaitable[_R]], tries: int = 21) -> _R:
    """A start-up step, tried again with backoff (0.1 s doubling to 2 s) while it fails.

    Many agents starting at once — 173 processes on two cores, or thousands of
    simulated agents — put more JetStream API requests in flight than the
    broker answers within their timeout; each step of joining is idempotent,
    so trying it again is safe. The last failure propagates.
    """
    for attempt in itertools.count():
        try:
            return await action()
        except asyncio.CancelledError:
            raise
        except Exception:
            if attempt >= tries - 1:
                raise
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
    raise AssertionError("unreachable")  # pragma: no cover (itertools.count never ends)


class LiveAgent:
    """One specialist (see the module docstring for its lifecycle)."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.handler = make_handler(config.handler, config)
        self.status = "idle"
        self.in_flight = 0
        self.current_task = -1
        self.completed = 0
        self.errors = 0
        self.slowdown = 1.0
        #: This process's life under the agent's id: a restarted agent beats with a new one, so
        #: a beat after a death verdict with the old one proves the agent was alive all along.
        self.incarnation = secrets.token_hex(4)
        self._draining = asyncio.Event()
        #: Pulls now waiting on the broker, one per idle slot: a drain or a reconnect
        #: cancels them so the slot looks again at once rather than after ``fetch_s``.
        self._waiting: set[asyncio.Task[list[Msg]]] = set()
        self._link: AgentLink | None = None
        self._caller: LlmCaller | None = None

    async def run(self) -> None:
        """The agent as its own process: its own connection, closed when it is done."""
        cfg = self.config
        link = await while_swamped(
            lambda: AgentLink.open(cfg.url, cfg.token, cfg.agent_id, cfg.time_scale, cfg.epoch)
        )

        async def on_control(msg: Msg) -> None:
            self.control(msg.data)

        await link.nc.subscribe(control_subject(cfg.agent_id), cb=on_control)
        await link.nc.subscribe(BROADCAST, cb=on_control)
        await while_swamped(lambda: ensure_zone_stream(link.js, cfg.zone))
        await while_swamped(lambda: self.register(link))
        await self.serve(link)
        await link.nc.drain()

    async def serve(self, link: AgentLink) -> None:
        """Register, serve until drained, say ``offline`` (control messages come via ``control``).

        Cancelling it is a kill -9: no offline heartbeat, the task in hand
        neither reported nor acked (its pulls are unsubscribed, as a dead
        process's connection would drop them).
        """
        cfg = self.config
        if self._link is not link:
            await self.register(link)
        beat = asyncio.create_task(self._heartbeats())
        subs: list[JetStreamContext.PullSubscription] = []
        try:
            await asyncio.gather(*(self._slot(subs) for _ in range(cfg.slots)))
        finally:
            beat.cancel()
            for sub in subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        self.status = "offline"
        with contextlib.suppress(Exception):
            await self._heartbeat()

    @property
    def link(self) -> AgentLink:
        if self._link is None:
            raise RuntimeError(f"{self.config.agent_id}: not registered")
        return self._link

    async def register(self, link: AgentLink) -> None:
        """Its own durable consumer, then its first heartbeat (status ``idle``): it has joined."""
        cfg = self.config
        self._link = link
        await ensure_agent_consumer(link.js, cfg.zone, cfg.agent_id, cfg.ack_wait_s)
        await self._heartbeat()

    def control(self, data: bytes) -> None:
        """A control message: ``drain``/``stop``, or ``slow FACTOR`` (chaos)."""
        if data in (b"drain", b"stop"):
            self._draining.set()
            self.wake()
        elif data.startswith(b"slow "):
            # Chaos "slow" (a gray failure): tasks started from now on last *factor* times
            # as long; "slow 1" ends it.
            with contextlib.suppress(ValueError):
                self.slowdown = max(1.0, float(data.removeprefix(b"slow ")))

    def wake(self) -> None:
        """Cut the waiting pulls short (after a drain, or a reconnect that lost them)."""
        for waiting in list(self._waiting):
            waiting.cancel()

    async def _heartbeats(self) -> None:
        # A beat whose ack has not come by the time two more are due is superseded, not
        # awaited: a put in flight when the broker died waits out the client's whole request
        # timeout (5 s) for an ack that will never come, and an agent silent that long after
        # the broker is back is, to the coordinator, dead.
        ack_wait = max(BEAT_ACK_PERIODS * self.config.heartbeat_s, BEAT_ACK_FLOOR_S)
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            with contextlib.suppress(Exception):  # the broker may be restarting
                await asyncio.wait_for(self._heartbeat(), ack_wait)

    async def _heartbeat(self) -> None:
        cfg = self.config
        clock = await self.link.epoch.poll()
        document = {
            "agent": cfg.agent_id,
            "zone": cfg.zone,
            "category": cfg.category,
            "team": cfg.team,
            "spot": cfg.spot,
            "status": self.status,
            "in_flight": self.in_flight,
            "slots": cfg.slots,
            "speed": cfg.speed,
            "current_task": self.current_task,
            "completed": self.completed,
            "errors": self.errors,
            "time_s": clock.now() if clock is not None else -1.0,
            "wall": time.time(),
            "incarnation": self.incarnation,
        }
        await self.link.registry.put(cfg.agent_id, encode(document))

    async def _slot(self, subs: list[JetStreamContext.PullSubscription]) -> None:
        cfg = self.config
        js = self.link.js
        sub = None
        while not self._draining.is_set():
            try:
                if sub is None:
                    # (Again after a false detection: the coordinator deleted the consumer.)
                    await ensure_agent_consumer(js, cfg.zone, cfg.agent_id, cfg.ack_wait_s)
                    sub = await js.pull_subscribe_bind(
                        durable=agent_consumer(cfg.agent_id), stream=tasks_stream(cfg.zone)
                    )
                    subs.append(sub)
                messages = await self._pull(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if type(exc).__name__ != "TimeoutError":
                    sub = None  # the broker restarted: bind again
                    await asyncio.sleep(0.1)
                continue
            for message in messages:
                await self._serve(message)

    async def _pull(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        """The next task, or none when the wait ran out or was cut short (``wake``)."""
        waiting = asyncio.ensure_future(sub.fetch(1, timeout=self.config.fetch_s))
        self._waiting.add(waiting)
        try:
            return await waiting
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the slot itself is cancelled (a kill): not a wake-up
            return []
        finally:
            self._waiting.discard(waiting)

    async def _serve(self, message: Msg) -> None:
        cfg = self.config
        js = self.link.js
        task = decode(message.data)
        # The coordinator numbers its assignments; a redelivery of one counts on from it.
        attempt = int(task.get("attempt", 0)) + int(message.metadata.num_delivered) - 1
        task_id = int(task["task_id"])
        base = {"task_id": task_id, "attempt": attempt, "agent": cfg.agent_id, "zone": cfg.zone}
        clock = await self.link.epoch.wait()
        start = clock.now()
        self.in_flight += 1
        self.current_task = task_id
        self.status = "busy"
        # The zone's results stream (``ORCH_RESULTS_<zone>``): zones' reports fsync side by side.
        reports = result_subject(cfg.zone)
        started = {"kind": "start", **base, "start_s": start}
        start_report = StartReport(js, reports, started, f"s.{task_id}.{attempt}")
        keep_alive = asyncio.create_task(self._in_progress(message))
        slowdown, began = self.slowdown, time.monotonic()
        books = begin_attempt(self._llm_caller(), task_id)
        reason = ""
        try:
            ok = await self.handler(task)
            if slowdown > 1.0:
                await asyncio.sleep((slowdown - 1.0) * (time.monotonic() - began))
        except RateLimited:
            ok, reason = False, RateLimited.reason
        except Exception as exc:
            print(f"{cfg.agent_id}: task {task_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
            ok = False
        except BaseException:
            start_report.abandon()  # cancelled (a kill): nothing more is said
            raise
        finally:
            keep_alive.cancel()
        end = clock.now()
        outcome = "completed" if ok else "failed"
        document = {"kind": "end", **base, "outcome": outcome, "start_s": start}
        document["end_s"] = end
        if not await start_report.settle():
            document[START_UNREPORTED] = True  # this record is the attempt's start too
        if reason:
            document["reason"] = reason
        if books.calls or books.throttled:
            document["llm"] = books.document()
        await publish(js, reports, document, f"e.{task_id}.{attempt}")
        with contextlib.suppress(Exception):
            await message.ack()
        self.in_flight -= 1
        self.current_task = -1
        if ok:
            self.completed += 1
            self.status = "idle" if self.in_flight == 0 else "busy"
        else:
            self.errors += 1
            self.status = "error"

    def _llm_caller(self) -> LlmCaller:
        """The agent's way to the model-call gate, over its link's connection."""
        if self._caller is None:
            nc = self.link.nc

            async def request(subject: str, data: bytes, timeout_s: float) -> bytes:
                return (await nc.request(subject, data, timeout=timeout_s)).data

            cfg = self.config
            self._caller = LlmCaller(
                request, nc.publish, cfg.agent_id, cfg.time_scale, wall_seed(cfg.agent_id)
            )
        return self._caller

    async def _in_progress(self, message: Msg) -> None:
        """Tell JetStream the task is alive, so only a dead agent's task is redelivered."""
        while True:
            await asyncio.sleep(self.config.ack_wait_s / 3)
            with contextlib.suppress(Exception):
                await message.in_progress()


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", required=True)
    parser.add_argument("--category", required=True)
    parser.add_argument("--team", default="", help="its team (the team bulkhead counts it)")
    parser.add_argument("--spot", action="store_true", help="it runs on spot capacity")
    parser.add_argument("--id", dest="agent_id", help="agent id (default zone-category-pid)")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="broker URL")
    parser.add_argument(
        "--handler",
        dest="agent_handler",
        default="sleep",
        help="sleep | noop | command:TEMPLATE | mod:func",
    )
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument(
        "--epoch", type=float, help="wall time of scenario second 0 (default: the run's)"
    )
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--heartbeat", type=float, default=0.1, help="wall seconds")
    parser.add_argument("--ack-wait", type=float, default=1.0, help="wall seconds")


def agent_main(args: argparse.Namespace) -> int:
    if args.agent_id is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", args.agent_id):
        raise ValueError(f"--id: expected letters, digits, '_' or '-', got {args.agent_id!r}")
    config = AgentConfig(
        agent_id=args.agent_id or f"{args.zone}-{args.category}-{int(time.time() * 1000) % 10**6}",
        zone=args.zone,
        category=args.category,
        team=args.team,
        spot=args.spot,
        url=args.nats,
        token=env_token(),
        time_scale=args.time_scale,
        epoch=args.epoch,
        handler=args.agent_handler,
        speed=args.speed,
        slots=args.slots,
        heartbeat_s=args.heartbeat,
        ack_wait_s=args.ack_wait,
    )
    agent = LiveAgent(config)
    asyncio.run(agent.run())
    return 0


__all__ = ["AgentConfig", "LiveAgent", "add_agent_arguments", "agent_main"]


if __name__ == "__main__":  # the provisioner's entry: lighter than the full CLI
    _parser = argparse.ArgumentParser(prog="orchestra live agent")
    add_agent_arguments(_parser)
    raise SystemExit(agent_main(_parser.parse_args()))
