"""One coordinator replica: the simulator's policies, fed from a broker and the wall clock.

A replica waits for the lease (``leadership``); as the primary it rebuilds
its books from the streams (``catch_up``) and then runs its loops until it
is cancelled or loses the lease:

* the stream follow → ``intake`` (submissions, dispatch, results);
* every lease period / 3 → renew the lease;
* every health interval → ``health`` (heartbeats, the scenario's detector);
  every tenth of a second or interval → zones declared dark;
* every metrics interval → ``monitoring`` (sample, alerts, webhooks);
* every evaluation interval → ``scaling`` (the autoscaler, the provisioner).

Every decision is a call into sim.policies (built by
``sim.world.policy_set``, as the simulator builds them); the parts only
measure and act, and all of them talk to a :class:`~sim.live.broker.Broker`
— NATS in a live run, memory in the unit tests.
"""

from __future__ import annotations

import asyncio
import math
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sim.live.broker import Broker
from sim.live.cancel import stop_if_cancelled
from sim.live.coordinator.admission import LiveAdmission
from sim.live.coordinator.attempt_faults import FaultDraws
from sim.live.coordinator.catch_up import StreamFollow
from sim.live.coordinator.dag_transfers import DagTransfers
from sim.live.coordinator.deadlines import Deadlines
from sim.live.coordinator.escalation import Escalation
from sim.live.coordinator.exposition import serve_metrics
from sim.live.coordinator.health import HealthCheck
from sim.live.coordinator.intake import Intake
from sim.live.coordinator.leadership import Lease
from sim.live.coordinator.llm_gate import LlmGate, serve_gate
from sim.live.coordinator.message_loss import message_loss
from sim.live.coordinator.monitoring import Monitoring
from sim.live.coordinator.restore import restore
from sim.live.coordinator.scaling import Scaling
from sim.live.coordinator.spot import SpotReclaims
from sim.live.coordinator.state import (
    AgentView,
    Books,
    CoordinatorConfig,
    Counters,
    EventLog,
    LeaseLost,
    LiveJob,
    ScenarioTime,
)
from sim.live.lag import MIN_PERIOD_S, LagBudget, LagMonitor
from sim.live.provisioner import AgentSpec, Provisioner
from sim.live.snapshot import load as load_snapshot
from sim.live.task import LiveTask
from sim.live.transport import EVENTS, METRICS
from sim.metrics.collector import MetricsCollector
from sim.policies.dispatch import DispatchCore
from sim.policies.escalation import EscalationPolicy
from sim.policies.placement import ReservePool
from sim.scenario.schema import Scenario
from sim.world.policy_set import (
    build_policies,
    check_phases,
    coordinator_detector,
    dispatch_core,
    escalation_config,
    failure_detector,
    fault_seed,
)
from sim.world.streams import Streams
from sim.world.topology import zone_teams


@dataclass
class Coordinator:
    """One coordinator replica (see the module docstring).

    *broker* None: ``run`` connects to NATS at ``config.url``; a test passes
    a :class:`~sim.live.memory_broker.MemoryBroker` and steps the parts.
    """

    name: str
    scenario: Scenario
    config: CoordinatorConfig
    provisioner: Provisioner
    zones: tuple[str, ...]
    categories: tuple[str, ...]
    broker: Broker | None = None
    is_primary: bool = False
    #: When (monotonic s) it first took the lease; None: it never led. The run's first
    #: primary plays the scenario's chief-1, the simulator's bootstrapped leader.
    led_since: float | None = None

    def __post_init__(self) -> None:
        s = self.scenario
        regions = {zone: self._region(zone) for zone in self.zones}
        # The simulator's own policies, from its streams of the same names and seed.
        self.policies = build_policies(s, Streams(s.seed, 0), regions)
        self.router = self.policies.router
        self.breakers = self.policies.breakers
        self.detector = failure_detector(s.health)
        # The simulator's own dispatch core: the same decisions, the same books.
        self.books = Books()
        self.dispatcher: DispatchCore[LiveTask] = dispatch_core(
            self.policies,
            frees_in=self.books.frees_in if s.policies.dag.data_locality else None,
        )
        self.time = ScenarioTime(self.config.clock, self.config.wall)
        budget = LagBudget.for_interval(self.config.clock.scale, s.health.interval)
        self.lag = self.config.lag or LagMonitor(budget)
        self.collector = MetricsCollector(list(self.zones), s.metrics.interval)
        self.stopped = asyncio.Event()
        #: The fleet's provider limits (the scenario's llm section), kept while primary.
        self.gate = LlmGate(s.llm) if s.llm is not None else None
        #: Tiers, tenants and shedding at the intake (the scenario's tiers section).
        self.admission = LiveAdmission(s, s.tiers, self.gate) if s.tiers is not None else None
        if self.admission is not None and self.gate is not None:
            self.gate.on_grant = self.admission.charge  # the tenants' token budgets
        self.follow: StreamFollow | None = None
        if self.broker is not None:
            self._bind(self.broker)

    def _spawns_on_spot(self, zone: str, category: str) -> bool:
        """Whether an agent started now in the pool runs on spot (False: no spot section)."""
        return self.spot is not None and self.spot.spawns_on_spot(zone, category)

    def _region(self, zone: str) -> str:
        return next(z.region for z in self.scenario.topology.zones if z.name == zone)

    def _bind(self, broker: Broker) -> None:
        """Build the parts around *broker* (each gets what it uses, nothing more)."""
        self.broker = broker
        self.event = EventLog(broker, self.time)
        #: Retries' backoffs and lost assignments' TTLs, each acted on when it ends.
        self.deadlines = Deadlines(self.time.now, self.time.until)
        self.intake = self._make_intake(broker)
        self.deadlines.watch(self.intake.escalation.next_due, self.intake.release_due)
        losses = self.intake.calls.losses
        if losses is not None:
            self.deadlines.watch(losses.next_due, self.intake.resend_lost)
        self.scaling = self._make_scaling(broker)
        self.health = self._make_health(broker)
        #: Spot reclaim notices acted on (None: no agent runs on spot).
        self.spot = self._make_spot(broker)
        self.monitoring = self._make_monitoring(broker)
        if self.admission is not None:
            self.monitoring.level_rows.append(self.admission.rows)
        if self.spot is not None:
            self.monitoring.level_rows.append(self.spot.rows)
        self.lease = Lease(broker, self.name, self.config.lease_s, self.config.wall)

    def _make_intake(self, broker: Broker) -> Intake:
        """Submissions in, results out, and the escalation of failed attempts."""
        s, books = self.scenario, self.books
        seed = fault_seed(Streams(s.seed))  # (the simulator's: attempt faults, message loss)
        return Intake(
            s,
            books,
            self.dispatcher,
            broker,
            self.time,
            self.event,
            self.collector,
            Escalation(
                EscalationPolicy(escalation_config(s)),
                books,
                self.dispatcher,
                self.router,
                self.event,
                notify=self.deadlines.changed,
            ),
            replies=self.config.replies,
            admission=self.admission,
            breakers=self.breakers,
            fault_draws=FaultDraws(s, seed),
            transfers=DagTransfers(s, books, seed),
            losses=message_loss(s, self.deadlines.changed, seed),
        )

    def _make_health(self, broker: Broker) -> HealthCheck:
        """Heartbeats and the detectors of agents and zone coordinators."""
        s = self.scenario
        return HealthCheck(
            s,
            self.books,
            self.intake,
            broker,
            self.time,
            self.event,
            self.detector,
            self.router,
            self.lag,
            self.config.stalls,
            # The simulator's failover judges zone coordinators with these check phases.
            coordinator_detector(
                s.health,
                check_phases(Streams(s.seed, 0).get("health"), s.health.interval, s.health.phases),
            ),
            # A dead agent's replacement, as the simulator's failover asks for one.
            replace=self.scaling.replace if s.health.replace_failed else None,
        )

    def _make_scaling(self, broker: Broker) -> Scaling:
        """The scaling loop acting through the provisioner."""
        s = self.scenario
        return Scaling(
            self.books,
            self.intake,
            broker,
            self.time,
            self.event,
            self.policies.scaling_loop,
            self.provisioner,
            s.scaling.pipeline.actuation_delay,
            (self.zones, self.categories),
            zone_teams(s),
            ReservePool(s.topology.reserve_pool),
            s.purchase.billing.drain_unit_s,
            spot_rule=self._spawns_on_spot,
        )

    def _make_spot(self, broker: Broker) -> SpotReclaims | None:
        """Spot reclaim notices, None when no agent runs on spot."""
        s = self.scenario
        spot = s.purchase.spot
        if spot is None:
            return None
        return SpotReclaims(
            spot,
            self.books,
            self.intake,
            broker,
            self.time,
            self.event,
            self.scaling.replace if s.health.replace_failed else None,
        )

    def _make_monitoring(self, broker: Broker) -> Monitoring:
        """Metrics, alerts and the autoscaler's window."""
        s, config = self.scenario, self.config
        return Monitoring(
            self.books,
            broker,
            self.time,
            self.event,
            self.collector,
            self.policies.alerts,
            self.scaling,
            self.zones,
            s.control_agents(),
            autoscale=config.autoscale and s.scaling.auto_scale.enabled,
            webhook_url=config.webhook_url,
        )

    # ------------------------------------------------------------------ the books, read-only

    @property
    def tasks(self) -> dict[int, LiveTask]:
        return self.books.tasks

    @property
    def jobs(self) -> dict[int, LiveJob]:
        return self.books.jobs

    @property
    def agents(self) -> dict[str, AgentView]:
        return self.books.agents

    @property
    def counters(self) -> Counters:
        return self.books.counters

    @property
    def latencies(self) -> deque[float]:
        return self.books.latencies

    @property
    def in_flight(self) -> dict[tuple[int, int], tuple[str, str, float]]:
        return self.books.in_flight

    @property
    def requested(self) -> dict[str, AgentSpec]:
        return self.books.requested

    @property
    def webhooks_sent(self) -> list[dict[str, Any]]:
        return self.monitoring.webhooks_sent if self.broker is not None else []

    def queue_depth(self) -> int:
        """Tasks waiting for an agent (``FleetCounts.waiting``)."""
        return self.intake.counts.waiting()

    def now(self) -> float:
        """Scenario time, never moving back (the policies require it; results arrive late)."""
        return self.time.now()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Wait for the lease, then coordinate until cancelled or the lease is lost."""
        if self.broker is None:
            from sim.live.nats_broker import NatsBroker

            self._bind(await NatsBroker.connect(self.config.url, self.config.token, self.name))
        assert self.broker is not None
        try:
            while not await self.lease.try_take():
                await asyncio.sleep(self.config.lease_s / 4)
            self.is_primary = True
            self.led_since = time.monotonic()
            await self.event("coordinator_primary", self.name)
            await self._lead()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug, not an outage: say so loudly; the standby takes over when the lease lapses.
            traceback.print_exc()
            raise
        finally:
            self.is_primary = False
            self.stopped.set()
            await self.broker.close()

    async def take_over(self) -> None:
        """Rebuild the books from the streams (results, the fleet, submissions), after the
        compacted snapshot when the service keeps one (``sim.live.snapshot``)."""
        assert self.broker is not None
        self.follow = StreamFollow(
            self.name, self.broker, self.books, self.intake, self.time, self.lag, self.zones
        )
        if self.config.snapshots:  # a compacting service: the snapshot, then the tails
            snapshot = await load_snapshot(self.broker)
            if snapshot is not None:
                restore(self.books, self.follow, snapshot)
        # The predecessor's word, read once: its pools (health), its scale changes, and its
        # samples (the alerts' state, and where the next interval starts).
        history = await self.broker.read_all(EVENTS, "orch.event")
        self.health.inherit(history)
        self.monitoring.resume(await self.broker.read_all(METRICS, "orch.metric"))
        await self.follow.catch_up(self._before_placing)
        await self.scaling.resume(history)

    async def _before_placing(self) -> None:
        """What a takeover learns before it places anything: the pools (health), and the
        zones chaos has announced dark or cut off — a zone its predecessor knew was out of
        reach must not take the backlog first and be found dark a poll later."""
        await self.health.check_health()
        await self.health.check_zones()

    async def pump(self) -> int:
        """Handle what the streams hold now (a test's step; live, ``_lead`` follows them)."""
        assert self.follow is not None
        return await self.follow.pump()

    async def _lead(self) -> None:
        """Renew the lease from the first moment, take over, then coordinate.

        The lease is renewed while the takeover catches up too: the catch-up
        reads the run's whole history, and on a loaded host that took longer
        than the lease (a full-fleet partition at x10: the new primary lost the
        lease to the next standby 1.8 wall s after taking it — a second
        takeover, live only). A lease lost meanwhile ends the takeover.
        """
        renewing = asyncio.ensure_future(
            self._periodic(self.config.lease_s / 3, lambda late: self.lease.renew())
        )
        tasks = [renewing]
        try:
            taking = asyncio.ensure_future(self.take_over())
            tasks.append(taking)
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the takeover's error, or the lease lost
            tasks.remove(taking)
            tasks += [asyncio.ensure_future(loop) for loop in self._leading_loops()]
            # The first loop to fail ends them all: none may go on acting for a replica that
            # stopped leading (or whose connection is gone).
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        except LeaseLost:
            await self.event("coordinator_lost_lease", self.name)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.follow is not None:
                await self.follow.close()

    def _leading_loops(self) -> list[Coroutine[Any, Any, None]]:
        """What a primary does once it has taken over (the lease's renewal runs already)."""
        assert self.follow is not None
        assert self.broker is not None
        s, scale = self.scenario, self.config.clock.scale
        interval_wall = max(MIN_PERIOD_S, s.health.interval / scale)
        loops = [
            self.follow.follow(),
            self._periodic(interval_wall, self.health.check_health),
            self._periodic(min(0.1, interval_wall), lambda late: self.health.check_zones()),
            self.deadlines.run(),
            self._on_grid(s.metrics.interval, self.monitoring.sample),
        ]
        if self.spot is not None:
            spot = self.spot
            loops.append(self._periodic(min(0.1, interval_wall), lambda late: spot.check()))
        if self.config.autoscale and s.scaling.auto_scale.enabled:
            loops.append(self._on_grid(s.scaling.decision_interval(), self.scaling.evaluate))
        if self.config.metrics_port is not None:
            loops.append(serve_metrics(self, self.config.metrics_port))
        if self.gate is not None:
            loops.append(
                serve_gate(self.broker, self.gate, self.time.now, self._alive, interval_wall)
            )
        return loops

    def _alive(self) -> set[str]:
        return {a.agent_id for a in self.books.agents.values() if a.healthy}

    async def _periodic(self, period_s: float, action: Callable[[float], Awaitable[None]]) -> None:
        """Call *action(late)* every *period_s* wall s; *late*: how late this wake-up came."""
        loop = asyncio.get_running_loop()
        while True:
            stop_if_cancelled()  # a cancel an action swallowed whole still ends the loop
            due = loop.time() + period_s
            await asyncio.sleep(period_s)
            late = max(0.0, loop.time() - due)
            self.lag.loop(late)
            try:
                await action(late)
            except (LeaseLost, asyncio.CancelledError):
                raise
            except Exception as exc:
                stop_if_cancelled()
                print(f"{self.name}: {getattr(action, '__name__', action)}: {exc!r}")

    async def _on_grid(self, interval: float, action: Callable[[float], Awaitable[None]]) -> None:
        """Call *action(t)* at every multiple t of *interval* (scenario s) up to the duration.

        The policy sees the tick's own time, as in the simulator, not the wall
        clock's jitter around it: a cooldown of exactly two intervals then ends
        on a tick rather than a few milliseconds after it.
        """
        clock = self.config.clock
        horizon = self.config.horizon_s
        if horizon is None:
            horizon = self.scenario.duration
        tick = math.floor(max(clock.now(), 0.0) / interval) + 1
        while tick * interval <= horizon + 1e-9:
            stop_if_cancelled()
            await asyncio.sleep(clock.until(tick * interval))
            try:
                # The tick's own time even when this loop runs late: a late tick stamped
                # with the wall clock moved the autoscaler's cooldowns off the grid (a
                # scale-up at 90.47 s blocked the scale-down due at 150 s, 59.53 s later).
                await action(tick * interval)
            except (LeaseLost, asyncio.CancelledError):
                raise
            except Exception as exc:
                stop_if_cancelled()
                print(f"{self.name}: {getattr(action, '__name__', action)}: {exc!r}")
            tick += 1
        await asyncio.Event().wait()

    # ------------------------------------------------------------------ steps (tests call these)

    async def check_health(self, late_wall_s: float = 0.0) -> None:
        await self.health.check_health(late_wall_s)

    async def check_zones(self) -> None:
        await self.health.check_zones()

    async def check_spot(self) -> None:
        if self.spot is not None:
            await self.spot.check()

    async def evaluate(self, at: float | None = None) -> None:
        await self.scaling.evaluate(at)

    async def sample(self, at: float | None = None) -> None:
        await self.monitoring.sample(at)
