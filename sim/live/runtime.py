"""``orchestra live run``: broker, coordinators, a real fleet, the scenario's workload and chaos.

The run goes: start (or reach) the broker and lay out its streams; start the
fleet's agent processes and wait for every heartbeat; publish the epoch
(scenario second 0); start a primary and a standby coordinator; drive the
scenario's arrivals (the simulator's own workload generators, same seed, so
the very same arrivals, tiers and tenants) and its chaos timeline on the
wall clock — spot reclaims included: the run is the provider that gives the
notice and takes the agents back at its end; after the
duration wait for the work in flight to finish; stop everything and fold the
broker's streams into the shared record format (sim.live.records).

The arrivals come from ``sim.live.arrivals``, the chaos timeline is
``sim.live.chaos``; this module starts, waits, watches its own lag and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.live.arrivals import arrivals
from sim.live.chaos import ChaosTimeline
from sim.live.clock import Clock
from sim.live.coordinator import Coordinator, CoordinatorConfig
from sim.live.lag import MIN_PERIOD_S, LagBudget, LagMonitor
from sim.live.provisioner import (
    AGENTS_PER_LINK,
    AgentSpec,
    LocalProcessProvisioner,
    Provisioner,
    SimulatedFleet,
)
from sim.live.records import build_records
from sim.live.spot_notices import SPOT_HANDLED_KEY, SPOT_NOTICES_KEY
from sim.live.transport import (
    AGENTS_BUCKET,
    BROADCAST,
    EVENTS,
    LEASE_BUCKET,
    METRICS,
    ZONES_DOWN_KEY,
    EmbeddedServer,
    Layout,
    LiveError,
    TaskStream,
    connect,
    encode,
    ensure_layout,
    publish,
    read_all,
    read_records,
    record_streams,
    submit_streams,
    submit_subject,
    task_streams,
    tasks_stream,
)
from sim.scenario.schema import Scenario
from sim.world.spot_books import initial_spot
from sim.world.streams import Streams
from sim.world.topology import build_world

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class LiveOptions:
    """How to run a scenario live; times in wall seconds unless named otherwise."""

    time_scale: float = 60.0
    nats_url: str | None = None  # None: an embedded broker on loopback
    token: str | None = None
    handler: str = "sleep"
    webhook_url: str | None = None
    metrics_port: int | None = None
    store_dir: Path | None = None
    log_dir: Path | None = None
    grace_s: float = 60.0  # wall time allowed after the duration for work in flight
    drain: bool = True  # wait for every submitted task after the duration
    heartbeat_s: float | None = None  # default: the health interval, scaled
    lease_s: float = 1.5
    standbys: int = 1
    #: Scenario times at which the embedded broker is stopped and restarted (same store).
    broker_restarts: list[float] = field(default_factory=list)
    #: Scenario times at which the embedded broker is killed (SIGKILL) and restarted.
    broker_kills: list[float] = field(default_factory=list)
    #: ``process``: one OS process per agent; ``simulated``: every agent an asyncio task
    #: of this process (sim.live.provisioner.SimulatedFleet), for fleets of thousands.
    agents_mode: str = "process"
    #: The embedded broker's JetStream ``sync_interval`` (see EmbeddedServer).
    broker_sync: str = "always"
    #: Sustained lag allowed, as a fraction of the health interval (scenario time): beyond
    #: it the run stops with one line saying the largest time-scale it sustained.
    lag_budget: float = 0.5
    #: Test hook: (from, to, wall s) — every health round in [from, to) (scenario s) blocks
    #: the event loop that long between reading the heartbeats and judging them.
    loop_stalls: tuple[tuple[float, float, float], ...] = ()


@dataclass
class LiveRun:
    summary: dict[str, Any]
    result: Any  # sim.model.engine.RunResult (the shared record format)
    webhooks: list[dict[str, Any]]
    wall_s: float
    #: The work-queue streams on the broker once the run is over (one per zone).
    task_streams: list[TaskStream] = field(default_factory=list)
    #: Tasks that ended after the duration, while the run drained (sim.live.records).
    drained: pd.DataFrame | None = None


def scaled_scenario(scenario: Scenario, agents: int | None) -> Scenario:
    """*scenario* with its specialists scaled to *agents* (bounds clamped to fit)."""
    if agents is None:
        return scenario
    control = scenario.control_agents()
    scaling = scenario.scaling
    total = agents + control
    new_scaling = scaling.model_copy(
        update={
            "default_agents": total,
            "min_agents": min(scaling.min_agents, total),
            "max_agents": max(scaling.max_agents if scaling.max_agents <= total else total, total),
        }
    )
    topology = scenario.topology.model_copy(update={"specialists": agents})
    return scenario.model_copy(update={"topology": topology, "scaling": new_scaling})


async def live_run(scenario: Scenario, options: LiveOptions) -> LiveRun:
    started = time.perf_counter()
    server: EmbeddedServer | None = None
    with contextlib.ExitStack() as stack:
        if options.nats_url is None:
            store = options.store_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            server = EmbeddedServer(store, token=options.token, sync=options.broker_sync)
            server.start()
            stack.callback(server.stop)
            url, token = server.url, server.token
        else:
            url, token = options.nats_url, options.token  # type: ignore[assignment]
        run = _Run(scenario, options, url, token, server)
        try:
            return await run.execute(started)
        finally:
            run.provisioner.stop_all()
            if isinstance(run.provisioner, SimulatedFleet):
                await run.provisioner.close()
    raise AssertionError("unreachable")  # pragma: no cover (mypy: ExitStack may swallow)


class _Run:
    def __init__(
        self,
        scenario: Scenario,
        options: LiveOptions,
        url: str,
        token: str | None,
        server: EmbeddedServer | None,
    ) -> None:
        self.scenario, self.options, self.url, self.token, self.server = (
            scenario,
            options,
            url,
            token,
            server,
        )
        self.world = build_world(scenario, Streams(scenario.seed, 0).get("world"))
        if scenario.policies.dag.dispatch == "planned":
            # Planned dispatch (sim.model.staging) is the simulator's alone, as chaos kinds
            # live cannot replay are: said once, and the run goes on dynamically.
            print(
                "live run: policies.dag.dispatch planned is simulator-only; dispatching dynamically"
            )
        health = scenario.health
        scale = options.time_scale
        # Never faster than every 5 ms: at a time-scale where that is too slow the run
        # cannot keep up anyway, and agents spinning on heartbeats only make it worse.
        self.heartbeat_s = options.heartbeat_s or max(MIN_PERIOD_S, health.interval / scale / 2)
        # A dead agent's task comes back once it has certainly been declared dead.
        self.ack_wait_s = max(0.5, (health.threshold + 1) * health.interval / scale)
        self.provisioner: Provisioner
        if options.agents_mode == "simulated":
            # Links for the fleet and for what autoscaling may add to it.
            room = max(scenario.scaling.max_agents, len(self.world.specialists))
            self.provisioner = SimulatedFleet(
                url,
                token,
                scale,
                handler=options.handler,
                heartbeat_s=self.heartbeat_s,
                ack_wait_s=self.ack_wait_s,
                links=-(-room // AGENTS_PER_LINK),
            )
        elif options.agents_mode == "process":
            self.provisioner = LocalProcessProvisioner(
                url,
                token,
                scale,
                handler=options.handler,
                heartbeat_s=self.heartbeat_s,
                ack_wait_s=self.ack_wait_s,
                log_dir=options.log_dir,
            )
        else:
            raise LiveError(
                f"agents mode: expected process or simulated, got {options.agents_mode!r}"
            )
        self.coordinators: list[tuple[Coordinator, asyncio.Task[None]]] = []
        budget = LagBudget.for_interval(scale, health.interval, options.lag_budget)
        #: One lag book for the process: coordinators and this runtime share its event loop.
        self.lag = LagMonitor(budget)
        #: The starting fleet's spot agents, in the order they joined (their random reclaims).
        self.initial_spot: list[str] = []

    async def execute(self, started: float) -> LiveRun:
        scenario, options = self.scenario, self.options
        nc = await connect(self.url, self.token, "orchestra-live-run")
        self.nc = nc
        js = nc.jetstream()
        layout = Layout(
            tuple(self.world.zones),
            tuple(self.world.categories),
            self.ack_wait_s,
            heartbeat_ttl_s=max(2.0, 20 * self.heartbeat_s),
        )
        await ensure_layout(js, layout)
        zone_queues = [tasks_stream(zone) for zone in self.world.zones]
        records = [name for name, _ in record_streams(self.world.zones)]
        arrivals_streams = [name for name, _ in submit_streams(self.world.zones)]
        for stream in (*arrivals_streams, *zone_queues, *records, EVENTS, METRICS):
            await js.purge_stream(stream)
        lease = await js.key_value(LEASE_BUCKET)
        for key in ("primary", "epoch", ZONES_DOWN_KEY, SPOT_NOTICES_KEY, SPOT_HANDLED_KEY):
            with contextlib.suppress(Exception):
                await lease.delete(key)
        if isinstance(self.provisioner, SimulatedFleet):
            await self.provisioner.open()
        # The simulator's spot share, pool by pool, in the order its fleet joins.
        fleet_ids = ((s.agent_id, s.zone, s.category) for s in self.world.specialists)
        on_spot = initial_spot(scenario.purchase.spot, fleet_ids)
        self.initial_spot = [s.agent_id for s in self.world.specialists if s.agent_id in on_spot]
        for spec in self.world.specialists:
            self.provisioner.start(
                AgentSpec(
                    spec.agent_id,
                    spec.zone,
                    spec.category,
                    spec.speed,
                    spec.slots,
                    spec.team,
                    spot=spec.agent_id in on_spot,
                )
            )
        await self._wait_for_fleet(js, len(self.world.specialists))
        # Scenario second 0 is set far enough ahead for a primary to take the lease and see
        # the whole fleet first: tasks arriving while no coordinator was ready waited seconds
        # that the simulator, whose coordinators exist at time 0, never charges.
        fleet = len(self.world.specialists)
        clock = Clock(time.time() + self._startup_lead_s(fleet), options.time_scale)
        await lease.put("epoch", encode({"epoch": clock.epoch}))
        self.clock = clock
        for _ in range(1 + options.standbys):
            self._start_coordinator()
        await self._wait_for_primary(fleet, clock)
        driver = asyncio.create_task(self._drive(js, clock))
        timeline = ChaosTimeline(
            scenario,
            self.provisioner,
            nc,
            self.server,
            _Replicas(self),
            options.broker_restarts,
            options.broker_kills,
            spot_agents=self.initial_spot,
            zones=list(self.world.zones),
        )
        chaos = asyncio.create_task(timeline.run(js, clock))
        probe = asyncio.create_task(self._probe())
        behind: str | None = None
        try:
            behind = await self._until_behind(self._main(driver, clock))
        finally:
            chaos.cancel()
            probe.cancel()
            driver.cancel()
            for pending in timeline.background:
                pending.cancel()
            await asyncio.gather(driver, chaos, probe, *timeline.background, return_exceptions=True)
        behind = behind or self.lag.behind(time.time(), whole_run=True)
        end_s = max(scenario.duration, clock.now())
        webhooks = [w for c, _ in self.coordinators for w in c.webhooks_sent]
        await nc.publish(BROADCAST, b"stop")
        await self._stop_fleet()
        await self._stop_coordinators()
        submits = [
            doc
            for stream, subject in submit_streams(self.world.zones)
            for doc in await read_all(js, stream, subject)
        ]
        results = await read_records(js, self.world.zones)
        events = await read_all(js, EVENTS, "orch.event")
        metric_rows = await read_all(js, METRICS, "orch.metric")
        queues = await task_streams(js)
        await nc.close()
        if behind is not None:
            raise LiveError(behind)  # no records: a run that could not keep up means nothing
        live = self._outcome(end_s, submits, results, events, metric_rows, webhooks, started)
        live.task_streams = queues
        return live

    def _outcome(
        self,
        end_s: float,
        submits: list[dict[str, Any]],
        results: list[dict[str, Any]],
        events: list[dict[str, Any]],
        metric_rows: list[dict[str, Any]],
        webhooks: list[dict[str, Any]],
        started: float,
    ) -> LiveRun:

        scenario = self.scenario
        # The window is the simulator's: the scenario's duration. What ended while the run
        # drained after it (until *end_s*) is reported apart (summary "drained").
        records = build_records(
            scenario,
            self.world,
            self.options.time_scale,
            scenario.duration,
            submits,
            results,
            events,
            metric_rows,
        )
        summary, sha = records.summary(scenario)
        wall = time.perf_counter() - started
        summary["live"] = {
            "time_scale": self.options.time_scale,
            "wall_s": wall,
            "duplicates_ignored": records.duplicates,
            "end_s": end_s,
            "webhooks": len(webhooks),
            "lag": self.lag.figures(),
        }
        result = records.result(scenario, sha, wall)
        return LiveRun(summary, result, webhooks, wall, drained=records.drained)

    # ------------------------------------------------------------------ lag

    async def _main(self, driver: asyncio.Task[None], clock: Clock) -> None:
        await driver
        await asyncio.sleep(clock.until(self.scenario.duration))
        if self.options.drain:
            await self._wait_done(self.options.grace_s)

    async def _until_behind(self, main: Awaitable[None]) -> str | None:
        """Run *main*; stop it early, with the lag message, once the run is behind for good."""
        work = asyncio.ensure_future(main)
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=0.25)
                message = self.lag.behind(time.time())
                if message is not None and not work.done():
                    return message
            work.result()
            return None
        finally:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)

    async def _probe(self) -> None:
        """Event-loop lag: how late a short sleep wakes; each wake is one lag sample."""
        loop = asyncio.get_running_loop()
        period = min(0.05, max(MIN_PERIOD_S, self.lag.budget.budget_wall_s / 2))
        while True:
            due = loop.time() + period
            await asyncio.sleep(period)
            self.lag.loop(loop.time() - due)
            self.lag.tick(time.time())

    # ------------------------------------------------------------------ pieces

    def _start_coordinator(self) -> Coordinator:
        config = CoordinatorConfig(
            self.url,
            self.token,
            self.clock,
            lease_s=self.options.lease_s,
            webhook_url=self.options.webhook_url,
            metrics_port=self.options.metrics_port,
            lag=self.lag,
            stalls=tuple(self.options.loop_stalls),
        )
        name = f"coord-{len(self.coordinators)}-{secrets.token_hex(2)}"
        coordinator = Coordinator(
            name,
            self.scenario,
            config,
            self.provisioner,
            tuple(self.world.zones),
            tuple(self.world.categories),
        )
        self.coordinators.append((coordinator, asyncio.create_task(coordinator.run())))
        return coordinator

    def primary(self) -> Coordinator | None:
        for coordinator, task in self.coordinators:
            if coordinator.is_primary and not task.done():
                return coordinator
        return None

    async def _stop_coordinators(self, timeout_s: float = 15.0) -> None:
        """Cancel the coordinators and wait for them — boundedly: a shutdown never hangs.

        A coordinator that does not stop in time is named on stderr and left
        behind (its connection closes with the process); the run's records
        come from the broker's streams, not from it.
        """
        tasks = [task for _, task in self.coordinators]
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, stuck = await asyncio.wait(tasks, timeout=timeout_s)
        for coordinator, task in self.coordinators:
            if task in stuck:
                print(
                    f"live run: coordinator {coordinator.name} did not stop within "
                    f"{timeout_s:g} s of being cancelled; left behind",
                    file=sys.stderr,
                )

    @staticmethod
    def _startup_lead_s(fleet: int) -> float:
        """Wall seconds from now to scenario second 0: the lease, the catch-up, one health round.

        Measured here: a primary is ready about 1 s after start plus about 10 ms per
        agent on a loaded 2-core machine; twice that, so the run does not start early.
        """
        return 2.0 + 0.02 * fleet

    async def _wait_for_primary(self, fleet: int, clock: Clock) -> None:
        """Wait until a primary coordinates the whole fleet (or scenario second 0 has come)."""
        while clock.now() < 0:
            primary = self.primary()
            if primary is not None and len(primary.agents) >= fleet:
                return
            await asyncio.sleep(0.02)
        primary = self.primary()
        seen = len(primary.agents) if primary is not None else 0
        print(
            f"live run: scenario second 0 came before a primary saw the whole fleet "
            f"({seen} of {fleet} agents); the first arrivals may wait for it"
        )

    async def _wait_for_fleet(self, js: Any, count: int) -> None:
        registry = await js.key_value(AGENTS_BUCKET)
        deadline = time.monotonic() + 30.0 + 1.0 * count
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if len(await registry.keys()) >= count:
                    return
            await asyncio.sleep(0.1)
        raise LiveError(f"live run: the fleet of {count} agents did not come up (see agent logs)")

    async def _drive(self, js: Any, clock: Clock) -> None:
        horizon = self.scenario.duration
        for t, document in arrivals(self.scenario):
            if t >= horizon:
                break
            delay = clock.until(t)
            if delay > 0:
                await asyncio.sleep(delay)
            key = f"sub.{document.get('task_id', document.get('job_id'))}.{document['kind']}"
            # Its home zone's submission stream: the zones' submissions fsync side by side.
            await publish(js, submit_subject(str(document["zone"])), document, key)

    async def _wait_done(self, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            primary = self.primary()
            if primary is not None:
                tasks = primary.tasks
                if tasks and all(t.done for t in tasks.values()):
                    return
            await asyncio.sleep(0.1)

    async def _stop_fleet(self) -> None:
        deadline = time.monotonic() + 10.0
        while self.provisioner.running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


class _Replicas:
    """The run's coordinators as the chaos timeline sees them (``sim.live.chaos.Replicas``)."""

    def __init__(self, run: _Run) -> None:
        self.run = run

    def crash_primary(self) -> None:
        primary = self.run.primary()
        for coordinator, task in self.run.coordinators:
            if coordinator is primary:
                task.cancel()

    def start(self) -> Coordinator:
        return self.run._start_coordinator()
