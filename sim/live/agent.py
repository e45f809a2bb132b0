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

Handlers: ``sleep``, ``noop``, ``command:TEMPLATE`` or ``module:function``
(``agent_handlers``). Its settings and command line are in ``agent_config``,
its connection to the broker in ``agent_link``; this module is its lifecycle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from sim.live.agent_config import AgentConfig, add_agent_arguments, config_from_args
from sim.live.agent_handlers import Handler, make_handler
from sim.live.agent_link import AgentLink, EpochWatch, while_swamped
from sim.live.attempt_fate import SYNTHETIC_HANDLERS, TRANSFER_FIELD, attempt_limit, transfer_s
from sim.live.cancel import run_bounded, try_once
from sim.live.llm_calls import LlmCaller, RateLimited, begin_attempt, wall_seed
from sim.live.llm_protocol import BACKOFF_KEY_FIELD
from sim.live.start_report import StartReport
from sim.live.subjects import CALL, CALL_ANSWERED, START_UNREPORTED
from sim.live.transport import (
    BROADCAST,
    agent_consumer,
    control_subject,
    decode,
    encode,
    ensure_agent_consumer,
    ensure_zone_stream,
    publish,
    result_subject,
    tasks_stream,
)
from sim.policies.task_faults import Fault

#: Publishes a report and awaits its ack: (JetStream, subject, document, message id).
Report = Callable[[JetStreamContext, str, dict[str, Any], str], Awaitable[None]]

#: A heartbeat waits for its ack at most this many heartbeat periods (and at least
#: BEAT_ACK_FLOOR_S wall seconds): by then newer beats are due and say the same.
BEAT_ACK_PERIODS = 2.0
BEAT_ACK_FLOOR_S = 0.5


class LiveAgent:
    """One specialist (see the module docstring for its lifecycle)."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.handler = make_handler(config.handler, config)
        #: Its work is the scenario's drawn work: it honours the error draws (attempt_fate).
        self.synthetic = config.handler in SYNTHETIC_HANDLERS
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
        #: How its end reports reach the broker: its own publish, or its fleet's gathering
        #: (``sim.live.fleet_reports``).
        self.report: Report = publish
        self._link: AgentLink | None = None
        self._joined = False  # its first heartbeat is written
        self._caller: LlmCaller | None = None

    async def run(self) -> None:
        """The agent as its own process: its own connection, closed when it is done."""
        cfg = self.config
        link = await while_swamped(
            lambda: AgentLink.open(cfg.url, cfg.token, cfg.agent_id, cfg.time_scale, cfg.epoch)
        )

        async def on_control(msg: Msg) -> None:
            if msg.data == CALL:
                if msg.reply:
                    await msg.respond(CALL_ANSWERED)  # alive: the coordinator may send work
                return
            self.control(msg.data)

        await link.nc.subscribe(control_subject(cfg.agent_id), cb=on_control)
        await link.nc.subscribe(BROADCAST, cb=on_control)
        await while_swamped(lambda: ensure_zone_stream(link.js, cfg.zone))
        await while_swamped(lambda: self.register(link))
        await self.serve(link)
        await link.nc.drain()

    async def serve(self, link: AgentLink, *, beats: bool = True) -> None:
        """Register, serve until drained, say ``offline`` (control messages come via ``control``).

        *beats*: it beats on its own key every period; False when its host
        bundles its beats with its neighbours' (``sim.live.beats``): its own
        key is then written only at its join and its ``offline``.
        Cancelling it is a kill -9: no offline heartbeat, the task in hand
        neither reported nor acked (its pulls are unsubscribed, as a dead
        process's connection would drop them).
        """
        cfg = self.config
        if self._link is not link:
            await self.register(link)
        beat = asyncio.create_task(self._heartbeats() if beats else asyncio.Event().wait())
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
        self._joined = True

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
            await try_once(self._heartbeat(), ack_wait)  # the broker may be restarting

    async def _heartbeat(self) -> None:
        clock = await self.link.epoch.poll()
        document = self.beat()
        document["time_s"] = clock.now() if clock is not None else -1.0
        document["wall"] = time.time()
        await self.link.registry.put(self.config.agent_id, encode(document))

    @property
    def registered(self) -> bool:
        """It has written its first heartbeat (a bundle may carry its beats from now on)."""
        return self._joined

    def beat(self) -> dict[str, Any]:
        """Its heartbeat but the times (``time_s``, ``wall``): on its own key or in a bundle."""
        cfg = self.config
        return {
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
            "incarnation": self.incarnation,
            "calls": True,  # it answers its coordinator's calls (``agent_calls``)
        }

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
                        durable=agent_consumer(cfg.agent_id),
                        stream=tasks_stream(cfg.zone, cfg.agent_id),
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
        self.in_flight += 1
        self.current_task = task_id
        self.status = "busy"
        keep_alive = asyncio.create_task(self._in_progress(message))
        await self._fetch_inputs(task, base, keep_alive)
        start = clock.now()
        # The zone's results stream (``ORCH_RESULTS_<zone>``): zones' reports fsync side by side.
        reports = result_subject(cfg.zone)
        started = {"kind": "start", **base, "start_s": start}
        start_report = StartReport(js, reports, started, f"s.{task_id}.{attempt}")
        slowdown, began = self.slowdown, time.monotonic()
        key = task.get(BACKOFF_KEY_FIELD)
        books = begin_attempt(self._llm_caller(), task_id, key, attempt)
        reason = ""
        limit = attempt_limit(task, self.synthetic, cfg.speed, slowdown, start)
        try:
            ok, reason = await self._attempt(task, slowdown, began, limit)
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
        await self.report(js, reports, document, f"e.{task_id}.{attempt}")
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

    async def _fetch_inputs(
        self, task: dict[str, Any], base: dict[str, Any], keep_alive: asyncio.Task[None]
    ) -> None:
        """A DAG node's inputs first, from the agents that made them: synthetic work waits
        out the transfer its coordinator drew (``sim.live.attempt_fate``), and its records
        say how long (*base*)."""
        transfer = transfer_s(task) if self.synthetic else 0.0
        if transfer <= 0:
            return
        base[TRANSFER_FIELD] = transfer
        try:
            await asyncio.sleep(transfer / self.config.time_scale)
        except BaseException:
            keep_alive.cancel()  # killed while fetching: nothing is said
            raise

    async def _attempt(
        self, task: dict[str, Any], slowdown: float, began: float, limit: Fault | None
    ) -> tuple[bool, str]:
        """The handler's run, slowed as chaos says and cut off where *limit* says: whether
        it succeeded, and the reason it failed if it was cut off (``sim.live.attempt_fate``)."""
        if limit is None:
            return await self._work(task, slowdown, began), ""
        budget = asyncio.timeout(limit.after_s / self.config.time_scale)
        try:
            async with budget:
                return await self._work(task, slowdown, began), ""
        except TimeoutError:
            if not budget.expired():
                raise  # the handler's own, not the cut: a failure like any other
            return False, limit.reason

    async def _work(self, task: dict[str, Any], slowdown: float, began: float) -> bool:
        ok = await self.handler(task)
        if slowdown > 1.0:
            await asyncio.sleep((slowdown - 1.0) * (time.monotonic() - began))
        return ok

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
            await try_once(message.in_progress())


def agent_main(args: argparse.Namespace) -> int:
    """``orchestra live agent``: one agent in this process until it is drained."""
    agent = LiveAgent(config_from_args(args))
    run_bounded(agent.run())  # (its exit never waits on a task that swallowed its cancel)
    return 0


__all__ = [
    "AgentConfig",
    "AgentLink",
    "EpochWatch",
    "Handler",
    "LiveAgent",
    "add_agent_arguments",
    "agent_main",
    "make_handler",
    "while_swamped",
]


if __name__ == "__main__":  # the provisioner's entry: lighter than the full CLI
    _parser = argparse.ArgumentParser(prog="orchestra live agent")
    add_agent_arguments(_parser)
    raise SystemExit(agent_main(_parser.parse_args()))
