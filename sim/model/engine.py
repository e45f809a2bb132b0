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
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import simpy

from sim.metrics.collector import AgentColumns, MetricsCollector, ZoneSnapshot
from sim.metrics.records import EventLog, TaskLog, canonical_sha256, jobs_frame
from sim.metrics.result import RunResult
from sim.model.admission import build_admission
from sim.model.agent import Specialist
from sim.model.calls import Call, run_until
from sim.model.chaos import Chaos
from sim.model.control import ControlLoop
from sim.model.control_plane import ControlPlane
from sim.model.coordinator import Dispatcher, JobRecord, ZoneState
from sim.model.escalation import Escalator, needs_escalator
from sim.model.failover import Failover
from sim.model.fleet import Fleet
from sim.model.llm_work import PROVIDER_COLUMNS, LlmWork
from sim.model.spot import SpotMarket
from sim.model.task import Task
from sim.model.traffic import Traffic
from sim.policies.dag import largest_input
from sim.scenario.schema import Scenario
from sim.world.dag_job import DagJob
from sim.world.dag_source import DagSource
from sim.world.network import Network
from sim.world.policy_set import build_policies, dispatch_core
from sim.world.streams import Streams
from sim.world.topology import World, build_world
from sim.world.workload import Arrival, ServiceDemand, TaskSource


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause Python's cycle collector while events run (reference counting still frees).

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
    """One replication of one scenario."""

    def __init__(self, scenario: Scenario, replication: int = 0) -> None:
        self.scenario = scenario
        self.replication = replication
        self.env = simpy.Environment()
        streams = Streams(scenario.seed, replication)
        self.world: World = build_world(scenario, streams.get("world"))
        self.network = Network(
            scenario.network, self.world.regions, self.world.chief_region, streams.get("network")
        )
        self.events = EventLog()
        self.task_log = TaskLog()
        self.collector = MetricsCollector(self.world.zones, scenario.metrics.interval)
        self.policies = build_policies(scenario, streams, self.world.regions)
        self.balancer = self.policies.balancer
        self.router = self.policies.router
        self.zones = {z: ZoneState(name=z, region=self.world.regions[z]) for z in self.world.zones}
        self.agents: dict[str, Specialist] = {}
        self.dispatcher = Dispatcher(
            self.env,
            self.network,
            self.balancer,
            self.router,
            self.zones,
            self.agents,
            self.collector,
            self.task_log,
            self.events,
            dispatch_core(
                self.policies,
                frees_in=self._frees_in if scenario.policies.dag.data_locality else None,
            ),
        )
        self.traffic = Traffic(scenario, self.world.zones, self.world.teams)
        self.dispatcher.use_traffic(self.traffic)
        if needs_escalator(scenario):
            self.dispatcher.escalator = Escalator(self.dispatcher, scenario, streams.get("errors"))
        self.llm: LlmWork | None = None
        if scenario.llm is not None:
            self.llm = self.dispatcher.llm = LlmWork(self.env, scenario.llm, streams)
            self.collector.extra_columns = PROVIDER_COLUMNS
        self.admission = build_admission(scenario, streams, self._waiting, self.llm)
        if self.admission is not None:
            self.collector.extra_columns += ("tasks_shed",)
        self.fleet = Fleet(
            self.env,
            scenario,
            self.world,
            self.zones,
            self.balancer,
            self.dispatcher,
            self.events,
            streams.get("fleet"),
        )
        spot = scenario.purchase.spot
        if spot is not None:
            self.fleet.market = SpotMarket(self.env, spot, streams.get("spot.reclaims"))
        self.fleet.provision()
        self._fleet_traffic()
        self.control = ControlLoop(self)
        self.failover = Failover(self, streams.get("health"))
        self.control_plane = ControlPlane(self, streams.get("raft"), streams.get("raft.network"))
        self.dispatcher.control_plane = self.control_plane
        self.chaos = Chaos(self, streams.get("chaos"))
        if self.fleet.market is not None:
            self.fleet.market.on_reclaim = self.chaos.inject
        self.dispatcher.breakers = self.policies.breakers
        self.dispatcher.breaker_open_s = self.policies.breaker_open_s
        self.demand = ServiceDemand(scenario, streams)
        self.tasks = TaskSource(scenario, streams, self.demand)
        self.dags = DagSource(scenario, streams, self.demand, self.network)
        self.dags.set_max_speed(max((s.speed for s in self.world.specialists), default=1.0))
        self.dispatcher.on_job_node_done = self._job_node_done
        self.dispatcher.on_job_node_failed = self._job_node_failed
        self._open_jobs: dict[int, DagJob] = {}
        self._job_ids = 0
        self._last_agent_sample = 0.0
        self._last_sample = 0.0
        self._previous_busy: dict[str, float] = {}

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

    def _next_arrival(self, event: simpy.Event | None) -> None:
        env, dispatcher = self.env, self.dispatcher
        now = env._now
        if event is not None:
            arrival: Arrival = event._value  # a triggered Timeout's value, without the property
            dispatcher.submitted += 1
            task = Task(
                dispatcher.new_task_id(),
                now,
                arrival.category,
                arrival.zone,
                arrival.work,
                arrival.affinity_key,
            )
            task.deadline = arrival.deadline
            if self.admission is None or self.admission.admit(task, now):
                dispatcher.submit(task)
        following = next(self._arrival_stream, None)
        if following is not None:
            delay = following.time - now
            delay = delay if delay > 0.0 else 0.0
            Call(env, delay, following, self._arrive)

    def _waiting(self) -> int:
        """Tasks waiting for an agent: in the pools' queues and in agents' local queues."""
        return self.dispatcher.core.queued() + sum(z.local_queued for z in self.zones.values())

    def job_arrivals(self) -> Generator[simpy.Event, Any, None]:
        """DAG jobs reach the chief, which plans them and releases their entry nodes."""
        env = self.env
        for when, job_dag, shape, zone in self.dags:
            delay = when - env.now
            if delay > 0:
                yield env.timeout(delay)
            self._job_ids += 1
            job = self.dags.start_job(self._job_ids, job_dag, shape, zone, env.now)
            self._open_jobs[job.job_id] = job
            count = len(job_dag.nodes)
            self.dispatcher.submitted += count
            self.dispatcher.blocked += count
            for node in job.progress.ready():
                self._release(job, node)

    def _release(self, job: DagJob, node: int) -> None:
        dispatcher = self.dispatcher
        dispatcher.blocked -= 1
        policy = self.scenario.policies.dag
        critical = policy.critical_to_fastest and node in job.plan.critical
        priority = job.plan.rank[node] if policy.order == "upward_rank" else 0.0
        task = Task(
            dispatcher.new_task_id(),
            self.env.now,
            job.dag_node(node).category,
            job.home_zone,
            job.work[node],
            job=job,
            node=node,
            priority=priority,
            critical=critical,
        )
        if policy.data_locality:
            task.near = self._near(job, node)
        dispatcher.submit(task)

    def _near(self, job: DagJob, node: int) -> tuple[str, float] | None:
        """The agent holding the node's largest input, and the expected time to move it."""
        placement = job.placement

        def ran_on(pred: int) -> str | None:
            where = placement.get(pred)
            return where[0] if where is not None else None

        largest = largest_input(job.progress.predecessors(node), ran_on)
        if largest is None:
            return None
        return largest[0], self.network.mean_transfer(largest[1])

    def _frees_in(self, agent_id: str, now: float) -> float:
        agent = self.agents.get(agent_id)
        return agent.frees_in(now) if agent is not None else math.inf

    def _job_node_done(self, job: DagJob, node: int) -> None:
        for successor in job.progress.complete(node):
            self._release(job, successor)
        if job.progress.done:
            del self._open_jobs[job.job_id]
            self.dispatcher.jobs.append(
                JobRecord(
                    job_id=job.job_id,
                    shape=job.shape,
                    nodes=len(job.dag.nodes),
                    arrival_s=job.arrival,
                    complete_s=self.env.now,
                    cp_bound_s=job.cp_bound_s,
                    work_s=job.plan.total_work_s,
                )
            )

    def _job_node_failed(self, job: DagJob, node: int) -> None:
        """A DAG node failed for good: everything downstream of it can never run, so fails too."""
        dispatcher = self.dispatcher
        now = self.env.now
        pending = [succ for succ, _ in job.progress.successors(node)]
        seen: set[int] = set()
        while pending:
            successor = pending.pop()
            if successor in seen:
                continue
            seen.add(successor)
            pending.extend(s for s, _ in job.progress.successors(successor))
        for successor in sorted(seen):
            dispatcher.blocked -= 1
            dispatcher.failed += 1
            orphan = Task(
                dispatcher.new_task_id(),
                now,
                job.dag_node(successor).category,
                job.home_zone,
                job.work[successor],
                job=job,
                node=successor,
                critical=successor in job.plan.critical,
            )
            orphan.attempt = 0
            orphan.zone = ""
            dispatcher.task_log.record(orphan, "failed", now, now, 0.0, "upstream_failed")
        self._open_jobs.pop(job.job_id, None)
        self.events.add(now, "job_failed", str(job.job_id), node=node, downstream=len(seen))

    def sampler(self) -> Generator[simpy.Event, Any, None]:
        """The monitoring system: zone and global metrics every interval, agents less often."""
        interval = self.scenario.metrics.interval
        agent_every = self.scenario.metrics.agent_interval
        sample_agents = bool(self.scenario.metrics.agent_level)
        while True:
            yield self.env.timeout(interval)
            self._sample(self.env.now, sample_agents and self._agents_due(agent_every))

    def _agents_due(self, every: float) -> bool:
        return self.env.now - self._last_agent_sample >= every - 1e-9

    def _sample(self, now: float, agents: bool) -> None:
        self._last_sample = now
        row = self.collector.sample(now, self._zone_snapshots(), self.fleet.cost.total(now))
        self.traffic.completed(self.dispatcher.completed)
        self.collector.sample_traffic(now, *self.traffic.sample(now))
        if self.llm is not None:
            self.collector.extend(self.llm.provider_rows(now))
        if self.admission is not None:
            self.collector.extend(self.admission.tier_rows(now))
        if self.fleet.market is not None:
            self.collector.extend(self.fleet.market.rows(now))
        self._fleet_traffic()
        self.control.sampled(now, row)
        if agents:
            self.collector.sample_agent_columns(now, self._agent_snapshots(now))
            self._last_agent_sample = now

    def _fleet_traffic(self) -> None:
        """Tell the traffic model who is alive now: heartbeats and polls scale with it."""
        members = {team: len(agents) for team, agents in self.dispatcher.team_members.items()}
        per_zone = {z.name: z.active_agents for z in self.zones.values()}
        self.traffic.fleet_changed(members, per_zone)

    def _zone_snapshots(self) -> list[ZoneSnapshot]:
        queued_in = self.dispatcher.core.queued_in
        return [
            ZoneSnapshot(
                zone=z.name,
                total_agents=z.total_agents,
                active_agents=z.active_agents,
                busy_agents=z.busy_agents,
                queue_depth=queued_in[z.name] + z.local_queued,
                in_flight=z.in_flight,
                in_system=z.in_flight + queued_in[z.name],
                slots=z.slots,
                busy_slots=z.busy_slots,
                offline_agents=z.offline_agents,
            )
            for z in self.zones.values()
        ]

    def _agent_snapshots(self, now: float) -> AgentColumns:
        """Every agent's metrics as columns: one pass over the agents, arithmetic in numpy.

        The same IEEE operations in the same order as per agent (a busy share is
        (busy - previous) / (span x slots)), so the values are identical.
        """
        span = max(now - self._last_agent_sample, 1e-9)
        agents = list(self.agents.values())
        ids = [agent.id for agent in agents]
        busy = [agent.busy_slot_seconds(now) for agent in agents]
        previous = self._previous_busy
        before = np.asarray([previous.get(agent_id, 0.0) for agent_id in ids], dtype=np.float64)
        previous.update(zip(ids, busy, strict=True))
        slots = np.asarray([agent.slots for agent in agents], dtype=np.float64)
        busy_slots = np.asarray([agent.busy_slots for agent in agents], dtype=np.float64)
        completed = np.asarray([agent.completed for agent in agents], dtype=np.float64)
        served = np.asarray([agent.served_time for agent in agents], dtype=np.float64)
        average = np.full(len(agents), math.nan)
        np.divide(served, completed, out=average, where=completed > 0)
        return AgentColumns(
            agent_id=ids,
            zone=[agent.zone for agent in agents],
            status=[agent.status for agent in agents],
            current_task=np.asarray(
                [agent.current[0].id if agent.current else -1 for agent in agents],
                dtype=np.float64,
            ),
            cpu_usage=(np.asarray(busy, dtype=np.float64) - before) / (span * slots),
            memory_usage=0.25 + 0.75 * busy_slots / slots,
            tasks_completed=completed,
            error_count=np.asarray([agent.errors for agent in agents], dtype=np.float64),
            avg_task_duration_s=average,
        )

    # ------------------------------------------------------------------ run

    def start(self) -> None:
        """Set every process going: arrivals, monitoring, control loop, chaos."""
        scenario, env = self.scenario, self.env
        self.events.add(
            0.0, "run_start", scenario.name, seed=scenario.seed, replication=self.replication
        )
        self.arrivals()
        env.process(self.job_arrivals())
        env.process(self.sampler())
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
        if self._last_sample < env.now:
            # SimPy stops before events at the horizon: take the closing sample by hand.
            self._sample(env.now, bool(scenario.metrics.agent_level))
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
            sim_events=int(next(env._eid)),
            llm=self.llm.frame(self.replication) if self.llm is not None else None,
            tiers=self.admission.frame(self.replication) if self.admission is not None else None,
        )

    def _record_unfinished(self) -> None:
        """Tasks still in the system at the end get an 'in_flight' row (start -1 if unstarted)."""
        now = self.env.now
        for task in sorted(self.dispatcher.live.values(), key=lambda t: t.id):
            if task.enqueued >= 0:
                task.queued += now - task.enqueued
            served = (now - task.start) if task.start >= 0 else 0.0
            self.task_log.record(task, "in_flight", math.nan, math.nan, served)

    def _check_conservation(self) -> dict[str, int]:
        d = self.dispatcher
        present = d.physically_present()
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

    def _jobs_frame(self) -> pd.DataFrame:
        return jobs_frame([asdict(j) for j in self.dispatcher.jobs], self.replication)


def run_scenario(
    scenario: Scenario, replication: int = 0, progress: ProgressHook | None = None
) -> RunResult:
    """Build and run one replication."""
    return Simulation(scenario, replication).run(progress)
