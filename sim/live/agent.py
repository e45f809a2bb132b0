"""A live agent: one OS process that heartbeats, pulls the tasks assigned to it, runs a handler.

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

Handlers: ``sleep`` (the task's drawn work divided by speed and time scale),
``command:TEMPLATE`` (a shell command formatted with the task's fields), or
``module:function`` (a Python callable taking the task dict; may be async).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import re
import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from sim.live.clock import Clock
from sim.live.transport import (
    AGENTS_BUCKET,
    BROADCAST,
    LEASE_BUCKET,
    RESULTS,
    agent_consumer,
    connect,
    control_subject,
    decode,
    encode,
    ensure_agent_consumer,
    ensure_zone_stream,
    env_token,
    publish,
    tasks_stream,
)

Handler = Callable[[dict[str, Any]], Awaitable[bool]]


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


def make_handler(spec: str, config: AgentConfig) -> Handler:
    """The handler named by *spec* (see the module docstring)."""
    if spec == "sleep":

        async def sleep(task: dict[str, Any]) -> bool:
            await asyncio.sleep(float(task["work_s"]) / config.speed / config.time_scale)
            return True

        return sleep
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
            f"--handler: expected sleep, command:TEMPLATE or module:function, got {spec!r}"
        )
    function = getattr(importlib.import_module(module_name), function_name)

    async def call(task: dict[str, Any]) -> bool:
        if inspect.iscoroutinefunction(function):
            result = await function(task)
        else:
            result = await asyncio.to_thread(function, task)
        return result is not False

    return call


class LiveAgent:
    """One specialist process (see the module docstring for its lifecycle)."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.handler = make_handler(config.handler, config)
        self.status = "idle"
        self.in_flight = 0
        self.current_task = -1
        self.completed = 0
        self.errors = 0
        self.slowdown = 1.0
        self._draining = asyncio.Event()
        self.clock = Clock(config.epoch, config.time_scale) if config.epoch is not None else None

    async def run(self) -> None:
        cfg = self.config
        nc = await connect(cfg.url, cfg.token, cfg.agent_id)
        js = nc.jetstream()
        self._kv = await js.key_value(AGENTS_BUCKET)
        self._lease = await js.key_value(LEASE_BUCKET)
        await nc.subscribe(control_subject(cfg.agent_id), cb=self._on_control)
        await nc.subscribe(BROADCAST, cb=self._on_control)
        await ensure_zone_stream(js, cfg.zone)
        await ensure_agent_consumer(js, cfg.zone, cfg.agent_id, cfg.ack_wait_s)
        await self._heartbeat()
        beat = asyncio.create_task(self._heartbeats())
        slots = [asyncio.create_task(self._slot(js)) for _ in range(cfg.slots)]
        await asyncio.gather(*slots)
        beat.cancel()
        self.status = "offline"
        with contextlib.suppress(Exception):
            await self._heartbeat()
        await nc.drain()

    async def _on_control(self, msg: Msg) -> None:
        if msg.data in (b"drain", b"stop"):
            self._draining.set()
        elif msg.data.startswith(b"slow "):
            # Chaos "slow" (a gray failure): tasks started from now on last *factor* times
            # as long; "slow 1" ends it.
            with contextlib.suppress(ValueError):
                self.slowdown = max(1.0, float(msg.data.removeprefix(b"slow ")))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            with contextlib.suppress(Exception):  # the broker may be restarting
                await self._heartbeat()

    async def _clock(self) -> Clock:
        """The run's clock; the runtime publishes its epoch once the whole fleet is up."""
        while self.clock is None:
            with contextlib.suppress(Exception):
                entry = await self._lease.get("epoch")
                self.clock = Clock(
                    float(decode(entry.value or b"{}")["epoch"]), self.config.time_scale
                )
                break
            await asyncio.sleep(0.05)
        return self.clock

    async def _heartbeat(self) -> None:
        cfg = self.config
        if self.clock is None:
            with contextlib.suppress(Exception):
                entry = await self._lease.get("epoch")
                self.clock = Clock(float(decode(entry.value or b"{}")["epoch"]), cfg.time_scale)
        now = self.clock.now() if self.clock is not None else -1.0
        document = {
            "agent": cfg.agent_id,
            "zone": cfg.zone,
            "category": cfg.category,
            "status": self.status,
            "in_flight": self.in_flight,
            "slots": cfg.slots,
            "speed": cfg.speed,
            "current_task": self.current_task,
            "completed": self.completed,
            "errors": self.errors,
            "time_s": now,
            "wall": time.time(),
        }
        await self._kv.put(cfg.agent_id, encode(document))

    async def _slot(self, js: JetStreamContext) -> None:
        cfg = self.config
        sub = None
        while not self._draining.is_set():
            try:
                if sub is None:
                    # (Again after a false detection: the coordinator deleted the consumer.)
                    await ensure_agent_consumer(js, cfg.zone, cfg.agent_id, cfg.ack_wait_s)
                    sub = await js.pull_subscribe_bind(
                        durable=agent_consumer(cfg.agent_id), stream=tasks_stream(cfg.zone)
                    )
                messages = await sub.fetch(1, timeout=0.5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if type(exc).__name__ != "TimeoutError":
                    sub = None  # the broker restarted: bind again
                    await asyncio.sleep(0.1)
                continue
            for message in messages:
                await self._serve(js, message)

    async def _serve(self, js: JetStreamContext, message: Msg) -> None:
        cfg = self.config
        task = decode(message.data)
        # The coordinator numbers its assignments; a redelivery of one counts on from it.
        attempt = int(task.get("attempt", 0)) + int(message.metadata.num_delivered) - 1
        task_id = int(task["task_id"])
        base = {"task_id": task_id, "attempt": attempt, "agent": cfg.agent_id, "zone": cfg.zone}
        clock = await self._clock()
        start = clock.now()
        self.in_flight += 1
        self.current_task = task_id
        self.status = "busy"
        await publish(
            js, "orch.result", {"kind": "start", **base, "start_s": start}, f"s.{task_id}.{attempt}"
        )
        keep_alive = asyncio.create_task(self._in_progress(message))
        slowdown, began = self.slowdown, time.monotonic()
        try:
            ok = await self.handler(task)
            if slowdown > 1.0:
                await asyncio.sleep((slowdown - 1.0) * (time.monotonic() - began))
        except Exception as exc:
            print(f"{cfg.agent_id}: task {task_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
            ok = False
        finally:
            keep_alive.cancel()
        end = clock.now()
        outcome = "completed" if ok else "failed"
        document = {"kind": "end", **base, "outcome": outcome, "start_s": start, "end_s": end}
        await publish(js, "orch.result", document, f"e.{task_id}.{attempt}")
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

    async def _in_progress(self, message: Msg) -> None:
        """Tell JetStream the task is alive, so only a dead agent's task is redelivered."""
        while True:
            await asyncio.sleep(self.config.ack_wait_s / 3)
            with contextlib.suppress(Exception):
                await message.in_progress()


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", required=True)
    parser.add_argument("--category", required=True)
    parser.add_argument("--id", dest="agent_id", help="agent id (default zone-category-pid)")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="broker URL")
    parser.add_argument(
        "--handler",
        dest="agent_handler",
        default="sleep",
        help="sleep | command:TEMPLATE | mod:func",
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


__all__ = ["RESULTS", "AgentConfig", "LiveAgent", "add_agent_arguments", "agent_main"]


if __name__ == "__main__":  # the provisioner's entry: lighter than the full CLI
    _parser = argparse.ArgumentParser(prog="orchestra live agent")
    add_agent_arguments(_parser)
    raise SystemExit(agent_main(_parser.parse_args()))
