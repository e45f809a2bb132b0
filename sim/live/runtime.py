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
``sim.live.chaos``, the coordinator replicas are ``sim.live.replicas`` and the
options and outcome ``sim.live.run_options``; this module starts, waits,
watches its own lag and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from sim.live.arrivals import arrivals
from sim.live.beats import agent_beats
from sim.live.broker import unbundle
from sim.live.cancel import close_bounded
from sim.live.chaos import ChaosTimeline
from sim.live.clock import Clock
from sim.live.lag import MIN_PERIOD_S, LagBudget, LagMonitor
from sim.live.nats_broker import NatsBroker
from sim.live.provisioner import (
    AGENTS_PER_LINK,
    RUN_SPAWN_GAP_S,
    AgentSpec,
    LocalProcessProvisioner,
    Provisioner,
    SimulatedFleet,
)
from sim.live.records import build_records
from sim.live.replicas import RunReplicas
from sim.live.run_options import LiveOptions, LiveRun, scaled_scenario
from sim.live.spot_notices import SPOT_HANDLED_KEY, SPOT_NOTICES_KEY
from sim.live.subjects import ANNOUNCEMENT_KEYS
from sim.live.transport import (
    AGENTS_BUCKET,
    BROADCAST,
    EVENTS,
    LEASE_BUCKET,
    METRICS,
    EmbeddedServer,
    Layout,
    LiveError,
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
    zone_tasks_streams,
)
from sim.scenario.schema import Scenario
from sim.world.random_chaos import random_failures
from sim.world.spot_books import initial_spot
from sim.world.streams import Streams
from sim.world.topology import build_world

__all__ = ["LiveOptions", "LiveRun", "arrivals", "live_run", "scaled_scenario"]


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
    """One live run from an empty broker to its records (see the module docstring)."""

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
        self.provisioner = self._provisioner()
        budget = LagBudget.for_interval(scale, health.interval, options.lag_budget)
        #: One lag book for the process: coordinators and this runtime share its event loop.
        self.lag = LagMonitor(budget)
        self.replicas = RunReplicas(
            scenario, options, url, token, self.provisioner, self.world, self.lag
        )
        #: The starting fleet's spot agents, in the order they joined (their random reclaims).
        self.initial_spot: list[str] = []

    def _provisioner(self) -> Provisioner:
        """The fleet's provisioner: agent processes, or agents simulated in this process."""
        options, scale = self.options, self.options.time_scale
        if options.agents_mode == "simulated":
            # Links for the fleet and for what autoscaling may add to it.
            room = max(self.scenario.scaling.max_agents, len(self.world.specialists))
            return SimulatedFleet(
                self.url,
                self.token,
                scale,
                handler=options.handler,
                heartbeat_s=self.heartbeat_s,
                ack_wait_s=self.ack_wait_s,
                links=-(-room // AGENTS_PER_LINK),
            )
        if options.agents_mode == "process":
            return LocalProcessProvisioner(
                self.url,
                self.token,
                scale,
                handler=options.handler,
                heartbeat_s=self.heartbeat_s,
                ack_wait_s=self.ack_wait_s,
                log_dir=options.log_dir,
            )
        raise LiveError(f"agents mode: expected process or simulated, got {options.agents_mode!r}")

    def _start_gap_wall_s(self) -> float:
        """Wall seconds between two agent starts during the run: the scenario's
        ``scaling.spawn_gap``, and for agent processes no less than this host can take
        (``RUN_SPAWN_GAP_S``: a burst started at once held both cores of a small machine)."""
        wanted = self.scenario.scaling.spawn_gap / self.options.time_scale
        if isinstance(self.provisioner, LocalProcessProvisioner):
            return max(wanted, RUN_SPAWN_GAP_S)
        return wanted if isinstance(self.provisioner, SimulatedFleet) else 0.0

    async def execute(self, started: float) -> LiveRun:
        """Lay out the broker, start the fleet and the replicas, run, stop, fold the records."""
        scenario, options = self.scenario, self.options
        nc = await connect(self.url, self.token, "orchestra-live-run")
        self.nc = nc
        js = nc.jetstream()
        lease = await self._clear_broker(js)
        await self._start_fleet(js)
        if isinstance(self.provisioner, LocalProcessProvisioner | SimulatedFleet):
            self.provisioner.pace(self._start_gap_wall_s())  # the fleet is up: starts take turns
        # Scenario second 0 is set far enough ahead for a primary to take the lease and see
        # the whole fleet first: tasks arriving while no coordinator was ready waited seconds
        # that the simulator, whose coordinators exist at time 0, never charges.
        fleet = len(self.world.specialists)
        clock = Clock(time.time() + self._startup_lead_s(fleet), options.time_scale)
        await lease.put("epoch", encode({"epoch": clock.epoch}))
        self.replicas.clock = clock
        for _ in range(1 + options.standbys):
            self.replicas.start()
        await self.replicas.wait_for_primary(fleet, clock)
        behind = await self._run_scenario(js, clock)
        behind = behind or self.lag.behind(time.time(), whole_run=True)
        end_s = max(scenario.duration, clock.now())
        webhooks = self.replicas.webhooks()
        await nc.publish(BROADCAST, b"stop")
        await self._stop_fleet()
        await self.replicas.stop()
        submits = [
            doc
            for stream, subject in submit_streams(self.world.zones)
            for doc in unbundle(await read_all(js, stream, subject))
        ]
        results = await read_records(js, self.world.zones)
        events = await read_all(js, EVENTS, "orch.event")
        metric_rows = await read_all(js, METRICS, "orch.metric")
        queues = await task_streams(js)
        await close_bounded(nc)
        if behind is not None:
            raise LiveError(behind)  # no records: a run that could not keep up means nothing
        live = self._outcome(end_s, submits, results, events, metric_rows, webhooks, started)
        live.task_streams = queues
        return live

    async def _clear_broker(self, js: Any) -> Any:
        """The run's streams laid out and emptied, the lease bucket's run keys gone."""
        layout = Layout(
            tuple(self.world.zones),
            tuple(self.world.categories),
            self.ack_wait_s,
            heartbeat_ttl_s=max(2.0, 20 * self.heartbeat_s),
        )
        await ensure_layout(js, layout)
        zone_queues = [name for zone in self.world.zones for name, _ in zone_tasks_streams(zone)]
        records = [name for name, _ in record_streams(self.world.zones)]
        arrivals_streams = [name for name, _ in submit_streams(self.world.zones)]
        for stream in (*arrivals_streams, *zone_queues, *records, EVENTS, METRICS):
            await js.purge_stream(stream)
        lease = await js.key_value(LEASE_BUCKET)
        # Chaos's announcements too: a broker kept from an earlier run (--nats) must not tell
        # this run's coordinator that zones are dark from its first look.
        for key in ("primary", "epoch", *ANNOUNCEMENT_KEYS, SPOT_NOTICES_KEY, SPOT_HANDLED_KEY):
            with contextlib.suppress(Exception):
                await lease.delete(key)
        return lease

    async def _start_fleet(self, js: Any) -> None:
        """Start every specialist of the world and wait for each one's heartbeat."""
        if isinstance(self.provisioner, SimulatedFleet):
            await self.provisioner.open()
        # The simulator's spot share, pool by pool, in the order its fleet joins.
        fleet_ids = ((s.agent_id, s.zone, s.category) for s in self.world.specialists)
        on_spot = initial_spot(self.scenario.purchase.spot, fleet_ids)
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

    async def _run_scenario(self, js: Any, clock: Clock) -> str | None:
        """Arrivals, chaos and the lag probe until the work is done; the lag message if behind."""
        options = self.options
        driver = asyncio.create_task(self._drive(js, clock))
        timeline = ChaosTimeline(
            self.scenario,
            self.provisioner,
            self.nc,
            self.server,
            self.replicas,
            options.broker_restarts,
            options.broker_kills,
            spot_agents=self.initial_spot,
            zones=list(self.world.zones),
            random_failures=random_failures(self.scenario, self.world),
        )
        chaos = asyncio.create_task(timeline.run(js, clock))
        probe = asyncio.create_task(self._probe())
        try:
            return await self._until_behind(self._main(driver, clock))
        finally:
            chaos.cancel()
            probe.cancel()
            driver.cancel()
            for pending in timeline.background:
                pending.cancel()
            await asyncio.gather(driver, chaos, probe, *timeline.background, return_exceptions=True)

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
            # (scenario seconds between two starts: what a replay's scaling.spawn_gap must be)
            "spawn_gap_s": self._start_gap_wall_s() * self.options.time_scale,
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
                clock = self.replicas.clock
                now_s = clock.now() if clock is not None else None
                message = self.lag.behind(time.time(), scenario_s=now_s)
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

    @staticmethod
    def _startup_lead_s(fleet: int) -> float:
        """Wall seconds from now to scenario second 0: the lease, the catch-up, one health round.

        Measured on this 2-core machine (2026-12-06): a primary saw the whole fleet 0.04 s
        after it started with 16 agents (with two busy loops beside it), 0.12 s with the
        spec's 173. An older build needed about 1 s plus 10 ms an agent; that is the lead,
        still 8-25 times today's need. (It was twice that: every live run, and every live
        test, waited 2.3 s for 16 agents and 5.5 s for 173 with a primary ready.)
        """
        return 1.0 + 0.01 * fleet

    async def _wait_for_fleet(self, js: Any, count: int) -> None:
        """Until *count* agents beat (on their own keys or in their fleet's bundles)."""
        registry = NatsBroker(self.nc)
        deadline = time.monotonic() + 30.0 + 1.0 * count
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                entries = await registry.kv_entries(AGENTS_BUCKET)
                if len(agent_beats({k: e.value for k, e in entries.items()})) >= count:
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
            primary = self.replicas.primary()
            if primary is not None:
                tasks = primary.tasks
                if tasks and all(t.done for t in tasks.values()):
                    return
            await asyncio.sleep(0.1)

    async def _stop_fleet(self) -> None:
        deadline = time.monotonic() + 10.0
        while self.provisioner.running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
