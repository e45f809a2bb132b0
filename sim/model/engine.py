"""The run loop: build the world from a scenario, run it in SimPy, hand back the records.

Scenario: at time zero the fleet is provisioned and every specialist's slots
start looping; arrivals (independent tasks and DAG jobs) flow in until the
scenario's duration; a sampler writes the spec's metrics on its interval.
At the end the books must balance — every task submitted is completed,
failed, or still somewhere in the system — or the run fails loudly.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict

import pandas as pd
import simpy

from sim.metrics.collector import MetricsCollector
from sim.metrics.records import EventLog, TaskLog, canonical_sha256, jobs_frame
from sim.metrics.result import RunResult
from sim.metrics.scaling_rows import scaling_frame
from sim.model.admission import build_admission
from sim.model.breakers import CallBreakers
from sim.model.calls import Call, events_scheduled, run_until
from sim.model.chaos import Chaos
from sim.model.chief import Chief
from sim.model.control import ControlLoop
from sim.model.control_plane import ControlPlane
from sim.model.escalation import Escalator, needs_escalator
from sim.model.failover import Failover
from sim.model.fleet import Fleet
from sim.model.jobs import DagFlow
from sim.model.ledger import Ledger
from sim.model.llm_work import PROVIDER_COLUMNS, LlmWork
from sim.model.monitor import Monitor
from sim.model.roster import Roster
from sim.model.slots import SlotBooks
from sim.model.spot import SpotMarket
from sim.model.staging import StagedDags
from sim.model.task import Task
from sim.model.traffic import Traffic
from sim.model.zone_dispatch import ZoneDispatch
from sim.model.zone_state import ZoneState
from sim.policies.dispatch import DispatchCore
from sim.scenario.schema import Scenario
from sim.world.dag_source import DagSource
from sim.world.dispatch_overhead import overhead_sampler
from sim.world.network import Network
from sim.world.policy_set import build_policies, dispatch_core, fault_seed
from sim.world.streams import Streams
from sim.world.topology import World, build_world
from sim.world.workload import Arrival, ServiceDemand, TaskSource


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause Python's cycle collector while events run or the world is built (refcounts still free).

    The event loop makes no cyclic garbage worth collecting — a 12 h chaos
    soak leaves 23 cyclic objects (Raft nodes of crashed chiefs), a plain day
    none — but it allocates a task record, events and log rows per task, and
    the collector's passes over the growing heap cost about 5 % of the run.
    The previous state is restored afterwards, whatever happens.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_freeze_count() == 0:
                # All the run allocated is young: the first allocation after enabling
                # would scan it at once (0.08 s CPU after 12 h of baseline, several
                # times that in wall time on a busy machine). Move it to the oldest
                # generation instead, where a full collection finds any garbage as
                # usual. (Skipped if the host froze objects itself: unfreeze would
                # release them too.)
                gc.freeze()
                gc.unfreeze()
            gc.enable()


class ConservationError(RuntimeError):
    """Tasks went missing: the model has a bug, and the run's numbers cannot be trusted."""


ProgressHook = Callable[[float], None]


class Simulation:
    """One replication of one scenario: the composition root that wires the shell together.

    Each collaborator is handed what it uses, no more; the attributes here
    are for the run loop, the tests and the notebooks.
    """

    def __init__(self, scenario: Scenario, replication: int = 0) -> None:
        # Building allocates a dozen containers per agent and makes no garbage cycles; at
        # 10,000 agents the collector's passes over them cost more than the building (0.36-
        # 0.82 s against 0.14 s, growing with what the process already holds).
        with _no_cyclic_gc():
            self._compose(scenario, replication)

    def _compose(self, scenario: Scenario, replication: int) -> None:
        self.scenario = scenario
        self.replication = replication
        self.env = env = simpy.Environment()
        streams = Streams(scenario.seed, replication)
        self.world: World = build_world(scenario, streams.get("world"))
        self.network = Network(
            scenario.network, self.world.regions, self.world.chief_region, streams.get("network")
        )
        self.events = EventLog()
        self.task_log = TaskLog()
        self.collector = MetricsCollector(self.world.zones, scenario.metrics.interval)
        self.policies = build_policies(scenario, streams, self.world.regions)
        self.zones = {z: ZoneState(name=z, region=self.world.regions[z]) for z in self.world.zones}
        self.core: DispatchCore[Task] = dispatch_core(
            self.policies,
            frees_in=self._frees_in if scenario.policies.dag.data_locality else None,
        )
        core = self.core
        self.roster = Roster(core)
        self.agents = self.roster.agents
        self.traffic = Traffic(scenario, self.world.zones, self.world.teams)
        for name, zone in self.zones.items():
            zone.coord = self.traffic.zone_coordinator(name)
        self._build_dispatch(streams)
        self.admission = build_admission(scenario, streams, self._waiting, self.llm)
        if self.admission is not None:
            self.collector.extra_columns += ("tasks_shed",)
        self._build_fleet(streams)
        self._build_control(streams)
        self.demand = ServiceDemand(scenario, streams)
        self.tasks = TaskSource(scenario, streams, self.demand)
        self.dags = DagSource(scenario, streams, self.demand, self.network)
        self.dags.set_max_speed(max((s.speed for s in self.world.specialists), default=1.0))
        self.jobs = DagFlow(
            env, scenario, self.dags, self.ledger, self.chief.submit, self.network, self.events
        )
        self.slots.on_job_node_done = self.jobs.node_done
        self.jobs.llm_plans = self.llm.plans if self.llm is not None else None
        self.staging: StagedDags | None = None
        if scenario.policies.dag.dispatch == "planned":
            self._build_staging(scenario)
        self.ledger.on_job_node_failed = self.jobs.node_failed

    def _build_staging(self, scenario: Scenario) -> None:
        """Planned DAG dispatch: the chief, the zones and the slots each reach the staged jobs."""
        staging = StagedDags(
            self.env,
            self.zone_dispatch,
            self.ledger,
            self.traffic,
            self.jobs.node_task,
            self.chief.submit,
            spill=scenario.policies.spill_across_zones,
            draw_seed=self.slots.draw_seed,
        )
        self.jobs.staging = self.chief.staging = self.zone_dispatch.staging = staging
        self.slots.staging = staging
        self.ledger.on_planned_dropped = staging.dropped
        self.staging = staging

    def _build_dispatch(self, streams: Streams) -> None:
        """The chief, the zone coordinators, the slots' side and the escalation between them."""
        scenario, env, core, network = self.scenario, self.env, self.core, self.network
        self.ledger = Ledger(env, self.task_log, self.collector)
        breakers, open_s = self.policies.breakers, self.policies.breaker_open_s
        self.breakers = CallBreakers(env, self.events, core, self.agents, breakers, open_s)
        counts = self.traffic.counts
        #: The run's key for the draws both shells key by task: attempt faults, message loss,
        #: a throttled model call's backoff, a DAG input's transfer.
        seed = fault_seed(streams)
        self.zone_dispatch = ZoneDispatch(
            env, network, core, self.zones, self.roster, self.breakers, self.ledger, counts
        )
        self.chief = Chief(
            env,
            network,
            core,
            self.zones,
            self.zone_dispatch,
            self.breakers,
            self.ledger,
            self.events,
            counts,
            self.traffic.chief_queue(),
            overhead_sampler(scenario.coordination.dispatch_overhead, streams, scenario.duration),
            seed,
        )
        self.slots = SlotBooks(
            env,
            network,
            core,
            self.zones,
            self.roster,
            self.ledger,
            self.traffic,
            self.collector,
            self.task_log,
            draw_seed=seed,
        )
        self.escalator: Escalator | None = None
        if needs_escalator(scenario):
            self.escalator = self.slots.escalator = Escalator(
                env,
                scenario,
                seed,
                chief=self.chief,
                zone_dispatch=self.zone_dispatch,
                ledger=self.ledger,
                events=self.events,
                network=network,
                traffic=self.traffic,
                zones=self.zones,
                roster=self.roster,
                balancer=self.policies.balancer,
                router=self.policies.router,
            )
        self.llm: LlmWork | None = None
        if scenario.llm is not None:
            self.llm = self.slots.llm = LlmWork(env, scenario.llm, streams, seed)
            self.collector.extra_columns = PROVIDER_COLUMNS

    def _build_fleet(self, streams: Streams) -> None:
        """The specialists at time zero (their slot loops start now) and the spot market."""
        scenario = self.scenario
        self.fleet = Fleet(
            self.env,
            scenario,
            self.world,
            self.zones,
            self.roster,
            self.core,
            self.traffic,
            self.slots,
            self.events,
            streams.get("fleet"),
            streams.get("startup"),
        )
        self.slots.on_agent_stopped = self.fleet.stopped
        spot = scenario.purchase.spot
        if spot is not None:
            self.fleet.market = SpotMarket(self.env, spot, streams.get("spot.reclaims"))
        self.fleet.provision()

    def _build_control(self, streams: Streams) -> None:
        """Autoscaling and alerts, and the monitoring whose samples they read."""
        scenario, env = self.scenario, self.env
        self.control = ControlLoop(
            env,
            scenario,
            self.policies,
            world=self.world,
            fleet=self.fleet,
            zones=self.zones,
            core=self.core,
            slots=self.slots,
            ledger=self.ledger,
            events=self.events,
        )
        self.monitor = Monitor(
            env,
            scenario.metrics,
            self.collector,
            zones=self.zones,
            core=self.core,
            roster=self.roster,
            fleet=self.fleet,
            traffic=self.traffic,
            ledger=self.ledger,
            control=self.control,
            llm=self.llm,
            admission=self.admission,
        )
        self.monitor.fleet_traffic()
        self._build_faults(streams)

    def _build_faults(self, streams: Streams) -> None:
        """Failover, the chiefs' Raft group, and the chaos that puts both to work."""
        scenario, env = self.scenario, self.env
        self.failover = Failover(
            env,
            scenario,
            streams.get("health"),
            fleet=self.fleet,
            roster=self.roster,
            zones=self.zones,
            core=self.core,
            chief=self.chief,
            slots=self.slots,
            events=self.events,
            router=self.policies.router,
            network=self.network,
            traffic=self.traffic,
            chief_region=self.world.chief_region,
        )
        self.control_plane = ControlPlane(
            env, scenario, self.events, streams.get("raft"), streams.get("raft.network")
        )
        self.control_plane.on_commit = self.chief.send
        self.chief.control_plane = self.control_plane
        self.control.control_plane = self.control_plane
        self.control_plane.on_new_leader = self.control.new_leader
        self.chaos = Chaos(
            env,
            scenario,
            self.world,
            streams.get("chaos"),
            events=self.events,
            network=self.network,
            fleet=self.fleet,
            failover=self.failover,
            control_plane=self.control_plane,
            escalator=self.escalator,
        )
        if self.fleet.market is not None:
            self.fleet.market.on_reclaim = self.chaos.inject

    # ------------------------------------------------------------------ processes

    def arrivals(self) -> None:
        """Independent tasks reach the chief coordinator, one after another.

        A chain of timeouts rather than a process: each arrival schedules the
        next, which saves a generator resume per task on the hottest path.
        """
        self._arrival_stream = iter(self.tasks)
        #: The callback as one bound method, not a fresh one per arrival scheduled.
        self._arrive = self._next_arrival
        self._next_arrival(None)

    def _next_arrival(self, event: Call | None) -> None:
        env, ledger = self.env, self.ledger
        now = env.now
        if event is not None:
            arrival: Arrival = event.payload
            ledger.submitted += 1
            task = Task(
                ledger.new_task_id(),
                now,
                arrival.category,
                arrival.zone,
                arrival.work,
                arrival.affinity_key,
            )
            task.deadline = arrival.deadline
            if self.llm is not None:
                task.plan = self.llm.plans.for_task(arrival.category)
            if self.admission is None or self.admission.admit(task, now):
                self.chief.submit(task, now)
        following = next(self._arrival_stream, None)
        if following is not None:
            delay = following.time - now
            delay = delay if delay > 0.0 else 0.0
            Call(env, delay, following, self._arrive)

    def _waiting(self) -> int:
        """Tasks waiting for an agent: in the pools' queues and in agents' local queues."""
        return self.core.queued() + sum(z.local_queued for z in self.zones.values())

    def _frees_in(self, agent_id: str, now: float) -> float:
        agent = self.agents.get(agent_id)
        return agent.frees_in(now) if agent is not None else math.inf

    # ------------------------------------------------------------------ run

    def start(self) -> None:
        """Set every process going: arrivals, monitoring, control loop, chaos."""
        scenario, env = self.scenario, self.env
        self.events.add(
            0.0, "run_start", scenario.name, seed=scenario.seed, replication=self.replication
        )
        self.arrivals()
        env.process(self.jobs.arrivals())
        env.process(self.monitor.sampler())
        if self.control.enabled:
            env.process(self.control.autoscaling())
        spot = scenario.purchase.spot
        if (
            scenario.chaos
            or scenario.chaos_random.enabled
            or (spot is not None and spot.zone_reclaim_mtbf is not None)
        ):
            env.process(self.chaos.timeline())
        if scenario.health.per_message:
            self.fleet.on_join = lambda agent: env.process(self.failover.monitor(agent.id))
            for agent_id in list(self.fleet.agents):
                env.process(self.failover.monitor(agent_id))
        if scenario.warmup > 0:
            env.timeout(scenario.warmup).callbacks.append(
                lambda _: self.events.add(env.now, "warmup_end", scenario.name)
            )

    def run(self, progress: ProgressHook | None = None, steps: int = 100) -> RunResult:
        """Run to the scenario's duration and return the records (checks conservation)."""
        scenario, env = self.scenario, self.env
        started = time.perf_counter()
        self.start()
        steps = steps if progress is not None else 1
        with _no_cyclic_gc():
            for step in range(1, steps + 1):
                run_until(env, scenario.duration * step / steps)
                if progress is not None:
                    progress(env.now)
        if self.monitor.last_sample < env.now:
            # SimPy stops before events at the horizon: take the closing sample by hand.
            self.monitor.sample(env.now, bool(scenario.metrics.agent_level))
        self.control_plane.finish(env.now)
        self.events.add(env.now, "run_end", scenario.name)
        self._record_unfinished()
        counts = self._check_conservation()
        wall = time.perf_counter() - started
        tasks = self.task_log.frame(self.replication, scenario.warmup)
        events = self.events.frame(self.replication)
        return RunResult(
            scenario=scenario,
            replication=self.replication,
            tasks=tasks,
            metrics=self.collector.frame(self.replication),
            events=events,
            agents=self.fleet.frame(self.replication, env.now),
            jobs=self._jobs_frame(),
            counts=counts,
            events_sha256=canonical_sha256(events, tasks),
            wall_s=wall,
            sim_events=events_scheduled(env),
            llm=self.llm.frame(self.replication) if self.llm is not None else None,
            tiers=self.admission.frame(self.replication) if self.admission is not None else None,
            scaling=self._scaling_frame(),
        )

    def _scaling_frame(self) -> pd.DataFrame | None:
        """``scaling.parquet``: every evaluation the autoscaler made (None: autoscaling off)."""
        if not self.control.enabled:
            return None
        return scaling_frame(self.control.evaluations, self.replication)

    def _record_unfinished(self) -> None:
        """Tasks still in the system at the end get an 'in_flight' row (start -1 if unstarted)."""
        now = self.env.now
        for task in sorted(self.ledger.live.values(), key=lambda t: t.id):
            if task.enqueued >= 0:
                task.queued += now - task.enqueued
            served = (now - task.start) if task.start >= 0 else 0.0
            self.task_log.record(task, "in_flight", math.nan, math.nan, served)

    def _check_conservation(self) -> dict[str, int]:
        d = self.ledger
        present = self._physically_present()
        shed = self.admission.shed if self.admission is not None else 0
        in_flight = d.submitted - d.completed - d.failed - shed
        lost = in_flight - present
        counts = {
            "submitted": d.submitted,
            "completed": d.completed,
            "failed": d.failed,
            "shed": shed,
            "in_flight": in_flight,
            "lost": lost,
            "retried": d.retried,
            "expired_messages": d.expired,
            "resent_messages": d.resent,
            "failed_calls": d.call_failures,
            "attempt_errors": d.attempt_errors,
        }
        if lost != 0 or len(d.live) + d.blocked != in_flight:
            raise ConservationError(
                f"task conservation broken: submitted={d.submitted} completed={d.completed} "
                f"failed={d.failed} shed={shed} found in system={present} "
                f"ledger={len(d.live)}+{d.blocked}"
            )
        return counts

    def _physically_present(self) -> int:
        """Tasks found where they should be: queues, agents, messages, blocked DAG nodes."""
        queued = self.core.queued()
        held = sum(self.core.load(agent_id) for agent_id in self.agents)
        stranded = sum(len(zone.stranded) for zone in self.zones.values())
        stranded += len(self.control_plane.held)
        return queued + held + self.ledger.in_transit + self.ledger.blocked + stranded

    def _jobs_frame(self) -> pd.DataFrame:
        return jobs_frame([asdict(j) for j in self.ledger.jobs], self.replication)


def run_scenario(
    scenario: Scenario, replication: int = 0, progress: ProgressHook | None = None
) -> RunResult:
    """Build and run one replication."""
    return Simulation(scenario, replication).run(progress)
