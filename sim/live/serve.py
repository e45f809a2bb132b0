"""``orchestra live serve``: the coordinator as a long-running service in front of a real fleet.

Scenario: an operator starts ``serve`` on two hosts against one broker. Both
lay out the streams (idempotent) and read the service's epoch — scenario
second 0, written once by the first ``serve`` ever started, so every record
of the deployment is on one time axis, across restarts. One takes the lease
and coordinates on the wall clock (time-scale 1, no duration, no synthetic
workload): clients' submissions in, the dispatch core's decisions out,
health checks, autoscaling through the chosen provisioner, alerts and their
webhooks, ``/metrics``, the continuous records (``sim.live.segments``), the
compaction that keeps the broker bounded (``sim.live.retention``) and a
status document for ``orchestra live status``. The other waits as a standby
and takes the lease when the primary stops renewing it (a crash, a kill -9,
a lost host), rebuilding its books from the snapshot and the streams' tails.

SIGTERM (or Ctrl-C) drains: the primary stops taking new submissions (they
wait in ``ORCH_SUBMIT`` for the next primary), waits up to ``drain_s`` for
the work it holds to finish, writes the records of the window so far, hands
the lease back at once and exits 0. A standby just exits. A restart resumes
from the broker's state, as a takeover does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.live.broker import decode, encode
from sim.live.cancel import close_bounded, stop_if_cancelled
from sim.live.clock import Clock
from sim.live.coordinator import Coordinator, CoordinatorConfig
from sim.live.coordinator.leadership import Lease
from sim.live.coordinator.restore import forget
from sim.live.lag import LagBudget, LagMonitor
from sim.live.nats_broker import NatsBroker
from sim.live.provisioner import LocalProcessProvisioner, Provisioner
from sim.live.remote_provisioner import CommandProvisioner, Recommender
from sim.live.retention import Compactor, RetentionSettings, ensure_snapshot_bucket
from sim.live.segments import SegmentWriter
from sim.live.task_message import Pools
from sim.live.transport import (
    LEASE_BUCKET,
    Layout,
    LiveError,
    connect,
    ensure_layout,
    ensure_replies_stream,
)
from sim.scenario.schema import Scenario
from sim.world.streams import Streams
from sim.world.topology import build_world

#: Key of ``orch_lease`` the primary refreshes for ``orchestra live status``.
STATUS_KEY = "status"


@dataclass(frozen=True)
class ServeOptions:
    """How to serve; times in (wall = scenario) seconds."""

    url: str
    token: str | None = None
    name: str | None = None
    provisioner: str = "none"  # none | local | command
    start_command: str | None = None
    stop_command: str | None = None
    handler: str = "sleep"  # what agents started by the local provisioner run
    webhook_url: str | None = None
    metrics_port: int | None = None
    records_dir: Path | None = None
    segment_s: float = 3600.0
    lease_s: float = 1.5
    drain_s: float = 60.0
    status_s: float = 1.0
    heartbeat_ttl_s: float = 10.0
    ack_wait_s: float = 5.0
    #: Compaction of the streams into a snapshot (``sim.live.retention``).
    retention: RetentionSettings = field(default_factory=RetentionSettings)


def make_provisioner(options: ServeOptions) -> Provisioner:
    if options.provisioner == "none":
        return Recommender(options.webhook_url)
    if options.provisioner == "local":
        return LocalProcessProvisioner(
            options.url, options.token, 1.0, handler=options.handler, ack_wait_s=options.ack_wait_s
        )
    if options.provisioner == "command":
        if not options.start_command:
            raise LiveError("--provisioner command: expected --start-command TEMPLATE")
        return CommandProvisioner(options.url, options.start_command, options.stop_command)
    raise LiveError(f"--provisioner: expected none, local or command, got {options.provisioner!r}")


async def service_epoch(js: Any) -> float:
    """The deployment's scenario second 0: written by the first ``serve`` ever, then kept."""
    lease = await js.key_value(LEASE_BUCKET)
    with contextlib.suppress(Exception):
        await lease.create("epoch", encode({"epoch": time.time(), "service": True}))
    entry = await lease.get("epoch")
    return float(decode(entry.value or b"{}")["epoch"])


def service_layout(
    zones: Iterable[str], categories: Iterable[str], options: ServeOptions
) -> Layout:
    """The streams and buckets a service lays out (a test may lay them out before it)."""
    return Layout(
        tuple(zones),
        tuple(categories),
        options.ack_wait_s,
        heartbeat_ttl_s=options.heartbeat_ttl_s,
        zone_submits=False,  # clients submit on orch.submit, the stream compaction keeps
    )


class Service:
    """One ``serve`` process: a coordinator replica and the service's chores around it."""

    def __init__(self, scenario: Scenario, options: ServeOptions) -> None:
        self.scenario, self.options = scenario, options
        self.name = options.name or f"serve-{socket.gethostname()}-{secrets.token_hex(2)}"
        self.world = build_world(scenario, Streams(scenario.seed, 0).get("world"))
        self.provisioner = make_provisioner(options)
        self.stopping = asyncio.Event()
        self.drained_cleanly = False

    async def run(self) -> int:
        options = self.options
        nc = await connect(options.url, options.token, f"{self.name}-service")
        self.nc = nc
        js = nc.jetstream()
        try:
            clock = await self._prepare_broker(js)
            config = self._coordinator_config(clock)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stopping.set)
            main = self._replica(config)
            chores, writer = self._start_chores(js, clock)
            print(f"{self.name}: serving {self.scenario.name} on {options.url}", flush=True)
            main = await self._serve_until_stopped(main, config)
            await self._drain(js, clock, main, chores, writer)
            return 0
        finally:
            if not isinstance(self.provisioner, CommandProvisioner | Recommender):
                self.provisioner.stop_all()  # local agents are this process's children
            await close_bounded(nc)

    async def _prepare_broker(self, js: Any) -> Clock:
        """The streams and buckets the service uses, and its clock from the service epoch."""
        world = self.world
        await ensure_layout(js, service_layout(world.zones, world.categories, self.options))
        await ensure_replies_stream(js)
        await ensure_snapshot_bucket(js)
        return Clock(await service_epoch(js), 1.0)

    def _coordinator_config(self, clock: Clock) -> CoordinatorConfig:
        """A service's coordinator: replies, no horizon, snapshots, wall-clock lag budget."""
        options = self.options
        return CoordinatorConfig(
            options.url,
            options.token,
            clock,
            lease_s=options.lease_s,
            webhook_url=options.webhook_url,
            metrics_port=options.metrics_port,
            lag=LagMonitor(LagBudget.for_interval(1.0, self.scenario.health.interval)),
            replies=True,
            horizon_s=math.inf,
            snapshots=True,  # always: an earlier run may have compacted
        )

    def _start_chores(
        self, js: Any, clock: Clock
    ) -> tuple[list[asyncio.Task[None]], SegmentWriter | None]:
        """The primary's chores: status, and records and compaction when asked for."""
        options = self.options
        chores: list[asyncio.Task[None]] = [
            asyncio.create_task(self._status(js, clock), name="status")
        ]
        writer: SegmentWriter | None = None
        if options.records_dir is not None:
            writer = SegmentWriter(
                js,
                self.scenario,
                self.world,
                clock,
                options.records_dir,
                options.segment_s,
                lambda: self.coordinator.is_primary,
            )
            writer.lookback_s = options.retention.skew_s
            chores.append(asyncio.create_task(writer.run(), name="records"))
        if options.retention.enabled:
            self.compactor = self._compactor(js, clock)
            chores.append(asyncio.create_task(self.compactor.run(), name="compaction"))
        return chores, writer

    async def _serve_until_stopped(
        self, main: asyncio.Task[None], config: CoordinatorConfig
    ) -> asyncio.Task[None]:
        """Run replicas until a stop signal; the replica running then, to drain."""
        stop = asyncio.create_task(self.stopping.wait())
        while True:
            await asyncio.wait({main, stop}, return_when=asyncio.FIRST_COMPLETED)
            if stop.done():
                break
            main.result()  # the coordinator failed: say so (a traceback was printed)
            # It lost the lease (another replica took it, or the broker stayed away):
            # this process goes on as a standby, with books rebuilt when it leads again.
            print(f"{self.name}: lost the lease; standing by again", flush=True)
            main = self._replica(config)
        stop.cancel()
        return main

    def _compactor(self, js: Any, clock: Clock) -> Compactor:
        """The retention chore: it acts while this process's replica is the primary."""
        return Compactor(
            js,
            NatsBroker(self.nc),
            self.name,
            clock,
            Pools(frozenset(self.world.zones), frozenset(self.world.categories)),
            self.options.retention,
            records=self.options.records_dir is not None,
            is_primary=lambda: self.coordinator.is_primary,
            forget=lambda snapshot: forget(self.coordinator.books, snapshot),
            zones=self.world.zones,
        )

    def _replica(self, config: CoordinatorConfig) -> asyncio.Task[None]:
        """A new coordinator replica (a standby until it takes the lease), running."""
        self.coordinator = Coordinator(
            self.name,
            self.scenario,
            config,
            self.provisioner,
            tuple(self.world.zones),
            tuple(self.world.categories),
        )
        return asyncio.create_task(self.coordinator.run(), name="coordinator")

    async def _drain(
        self,
        js: Any,
        clock: Clock,
        main: asyncio.Task[None],
        chores: list[asyncio.Task[None]],
        writer: SegmentWriter | None,
    ) -> None:
        """SIGTERM: finish the work held, write the records so far, hand the lease back."""
        coordinator = self.coordinator
        was_primary = coordinator.is_primary
        if was_primary:
            coordinator.intake.accepting = False
            print(f"{self.name}: draining ({len(self._open())} tasks open)", flush=True)
            deadline = time.monotonic() + self.options.drain_s
            while self._open() and time.monotonic() < deadline and not main.done():
                await asyncio.sleep(0.1)
            left = len(self._open())
            if left:
                print(
                    f"{self.name}: {left} tasks still open after {self.options.drain_s:g} s",
                    flush=True,
                )
            self.drained_cleanly = left == 0
        await _stop(chores, "chores")
        if was_primary and writer is not None and coordinator.is_primary:
            with contextlib.suppress(Exception):
                for path in await writer.write_due(until_s=clock.now()):
                    print(f"{self.name}: records {path}", flush=True)
        await _stop([main], "coordinator")
        # Read after the stop: the lease was renewed until then (a revision read before it
        # was stale once a renewal landed between the two, and the hand-back failed).
        revision = coordinator.lease.revision
        if was_primary and revision is not None:
            # The coordinator's connection is closed: hand the lease back on this one.
            broker = NatsBroker(self.nc)
            lease = Lease(broker, self.name, self.options.lease_s, time.time)
            lease.revision = revision
            await lease.release()
        print(f"{self.name}: stopped", flush=True)

    def _open(self) -> list[int]:
        """Tasks this primary booked and has not seen end (the work a drain waits for)."""
        return [t.task_id for t in self.coordinator.tasks.values() if not t.done]

    async def _status(self, js: Any, clock: Clock) -> None:
        """While primary: the status document ``orchestra live status`` shows, every second.

        (Also where exited local agent processes are reaped: the service has no
        other once-a-second chore.)
        """
        lease = await js.key_value(LEASE_BUCKET)
        while True:
            stop_if_cancelled()  # a cancel the broker client swallowed below still stops it
            await asyncio.sleep(self.options.status_s)
            self.provisioner.reap()  # local agents that drained and exited: no zombies
            coordinator = self.coordinator
            if not coordinator.is_primary or coordinator.broker is None:
                continue
            with contextlib.suppress(Exception):
                await lease.put(STATUS_KEY, encode(status_document(coordinator, clock)))


async def _stop(tasks: list[asyncio.Task[None]], what: str, timeout_s: float = 10.0) -> None:
    """Cancel *tasks* and wait for them — boundedly: a drain never hangs on one of them.

    (A cancel that a library swallowed would otherwise keep a loop going, and the
    drain waiting for it, for ever; the process exits all the same.)
    """
    for task in tasks:
        task.cancel()
    _, stuck = await asyncio.wait(tasks, timeout=timeout_s)
    if stuck:
        print(f"serve: {what} did not stop within {timeout_s:g} s; left behind", flush=True)


def status_document(coordinator: Coordinator, clock: Clock) -> dict[str, Any]:
    """What the primary knows now, for the dashboard (plain JSON)."""
    c = coordinator.counters
    pools: dict[str, dict[str, int]] = {}
    busy = coordinator.intake.counts.busy_agents()  # its record of starts, not the beats
    for agent in coordinator.agents.values():
        pool = pools.setdefault(f"{agent.zone}/{agent.category}", {"agents": 0, "busy": 0})
        if agent.healthy and not agent.draining:
            pool["agents"] += 1
            pool["busy"] += agent.agent_id in busy
    latencies = sorted(coordinator.latencies)
    p50 = latencies[len(latencies) // 2] if latencies else None
    return {
        "primary": coordinator.name,
        "time_s": clock.now(),
        "wall": time.time(),
        "submitted": c.submitted,
        "completed": c.completed,
        "failed": c.failed,
        "shed": c.shed,
        "duplicates": c.duplicates,
        "queue_depth": coordinator.queue_depth(),
        "in_flight": len(coordinator.in_flight),
        # The tasks the primary's books hold: open work and what is not compacted yet.
        "tasks_held": len(coordinator.tasks),
        "agents": sum(1 for a in coordinator.agents.values() if a.healthy),
        "pools": pools,
        "latency_p50_s": p50,
    }


async def serve(scenario: Scenario, options: ServeOptions) -> int:
    return await Service(scenario, options).run()
