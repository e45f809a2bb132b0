"""What a primary coordinator knows, and the small services its parts share.

``Books`` is the coordinator's memory — tasks, DAG jobs, the agents seen in
heartbeats, the attempts in flight, the counters the autoscaler and the
metrics read. It is never the record: a coordinator taking over rebuilds it
from the broker's streams (sim.live.coordinator.catch_up). ``ScenarioTime``
turns the wall clock into scenario seconds that never move back, and
``EventLog`` writes the run's events to the broker in the shared format.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim.live.broker import Broker, event_document
from sim.live.clock import Clock
from sim.live.coordinator.admission import Verdict
from sim.live.lag import LagMonitor
from sim.live.provisioner import AgentSpec
from sim.live.task import LiveTask
from sim.policies.dag import DagProgress
from sim.policies.dag_locality import slot_frees_in


@dataclass
class LiveJob:
    job_id: int
    progress: DagProgress
    tasks: dict[int, int]  # node -> task id
    arrival_s: float
    ran_on: dict[int, str] = field(default_factory=dict)  # node -> the agent that completed it


@dataclass
class AgentView:
    """What the coordinator knows of an agent from its heartbeats."""

    agent_id: str
    zone: str
    category: str
    status: str = "idle"
    in_flight: int = 0
    slots: int = 1
    speed: float = 1.0
    team: str = ""  # "": in no team (the team bulkhead does not count it)
    spot: bool = False  # on spot capacity, as its heartbeats say
    last_beat_wall: float = 0.0
    #: Scenario time its current life began (first seen, or back): what billing counts.
    joined_s: float = 0.0
    healthy: bool = True
    draining: bool = False
    #: The process behind the heartbeats (None: a writer that does not say), and the one the
    #: coordinator declared dead, until a beat proves the verdict false or a new one appears.
    incarnation: str | None = None
    dead_incarnation: str | None = None
    #: Its heartbeats say it answers the coordinator's calls (an agent of an earlier
    #: version does not, and is sent work uncalled rather than judged dead for its silence).
    answers_calls: bool = False


@dataclass(frozen=True)
class CoordinatorConfig:
    url: str
    token: str | None
    clock: Clock
    lease_s: float = 1.5  # wall seconds a lease lasts without renewal
    webhook_url: str | None = None
    metrics_port: int | None = None
    autoscale: bool = True
    #: The wall clock (time.time); tests pass their own.
    wall: Callable[[], float] = time.time
    #: The run's lag books (shared by the run's coordinators); None: the coordinator's own.
    lag: LagMonitor | None = None
    #: Test hook: (from, to, wall s) — every health round whose scenario time falls in
    #: [from, to) blocks the event loop that long after reading the heartbeats and before
    #: judging them: a coordinator falling behind where it hurts most.
    stalls: tuple[tuple[float, float, float], ...] = ()
    #: Publish each task's outcome for its client (``orch.reply.*``): a service does.
    replies: bool = False
    #: Scenario time up to which the metrics and the autoscaler run on their grid; None:
    #: the scenario's duration (a run), ``math.inf`` for a service that runs until stopped.
    horizon_s: float | None = None
    #: The service compacts its record streams: a takeover starts from the stored snapshot
    #: (``sim.live.snapshot``) and reads only the streams' tails after it.
    snapshots: bool = False


@dataclass
class Counters:
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    #: Tasks shed at admission (tiers): done at once, never dispatched.
    shed: int = 0
    duplicates: int = 0
    started: int = 0
    wait_sum: float = 0.0
    busy_s: float = 0.0


@dataclass(frozen=True, slots=True)
class EarlyEnd:
    """A task's end read before its submission (a takeover's catch-up, mostly): counted once
    the submission says when the task arrived — by the metrics, only if *caught_up* is
    false or it ended after the predecessor's last sample."""

    outcome: str
    zone: str
    start_s: float
    end_s: float
    caught_up: bool


@dataclass
class Books:
    """The primary's memory (see the module docstring)."""

    tasks: dict[int, LiveTask] = field(default_factory=dict)
    jobs: dict[int, LiveJob] = field(default_factory=dict)
    agents: dict[str, AgentView] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=5000))
    #: Attempts started and not ended: (task, attempt) -> (agent, zone, start_s).
    in_flight: dict[tuple[int, int], tuple[str, str, float]] = field(default_factory=dict)
    requested: dict[str, AgentSpec] = field(default_factory=dict)  # started, not yet beating
    #: Tasks whose end was read before their submission: task id -> that end.
    pending_done: dict[int, EarlyEnd] = field(default_factory=dict)
    #: Finished work compacted out of the streams and the books (``sim.live.snapshot``), kept
    #: for its dedupe window: task id -> outcome, and the job ids. A resubmission is ignored,
    #: a late end is a duplicate.
    forgotten: dict[int, str] = field(default_factory=dict)
    forgotten_jobs: set[int] = field(default_factory=set)
    #: Assignments found in the streams by a takeover: task id -> (agent, number).
    recovered: dict[int, tuple[str, int]] = field(default_factory=dict)
    #: Tasks whose routing record a takeover read before their submission, and when they
    #: were routed: not recorded again (records travel in bundles, which the broker cannot
    #: dedupe record by record); a DAG node's routing is its release, its arrival.
    routed_before: dict[int, float] = field(default_factory=dict)
    #: Admission verdicts a takeover read before their submission: kept, not decided again.
    admissions: dict[int, Verdict] = field(default_factory=dict)
    #: Spot agents given a reclaim notice: agent id -> the notice's deadline (scenario s).
    reclaiming: dict[str, float] = field(default_factory=dict)
    #: Spot agents taken back: out of the fleet for good under this id.
    reclaimed: set[str] = field(default_factory=set)
    #: When each agent's load last changed, as far as this coordinator knows (assignments
    #: sent or read, ends read): the order its balancer's pools keep agents of equal load
    #: in, which a takeover restores (``reached``).
    last_change_s: dict[str, float] = field(default_factory=dict)
    #: The pools' order among equal loads is to be restored before the next placing: a
    #: takeover's catch-up joined the agents by id, or adopted what they hold since.
    order_stale: bool = False
    catching_up: bool = False
    #: While a takeover's catch-up reads the submissions (zone by zone), the tasks it is to
    #: place anew wait here, so that everything the agents hold, from every zone's stream,
    #: is adopted before anything is placed (None: not reading them).
    deferred: list[LiveTask] | None = None

    def changed(self, agent_id: str, at_s: float) -> None:
        """*agent_id*'s load changed at scenario time *at_s* (an assignment or an end)."""
        if at_s > self.last_change_s.get(agent_id, -math.inf):
            self.last_change_s[agent_id] = at_s

    def reached(self, agent_id: str) -> float:
        """When *agent_id* reached its load (``-inf``: not since it joined)."""
        return self.last_change_s.get(agent_id, -math.inf)

    def end_notice(self, agent_id: str) -> bool:
        """A spot agent's life ends (drained or taken back): True if it was under notice."""
        if self.reclaiming.pop(agent_id, None) is None:
            return False
        self.reclaimed.add(agent_id)
        return True

    def serving(self) -> list[AgentView]:
        return [a for a in self.agents.values() if a.healthy and not a.draining]

    def frees_in(self, agent_id: str, now: float) -> float:
        """Expected scenario seconds until one of the agent's slots frees (``slot_frees_in``)."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return math.inf
        serving: list[tuple[float, float | None]] = []
        for (task_id, _), (who, _, start) in self.in_flight.items():
            if who == agent_id:
                task = self.tasks.get(task_id)
                stated = task.work_s if task is not None and task.job_id >= 0 else None
                serving.append((start, stated))
        return slot_frees_in(now, agent.speed, serving, agent.in_flight > len(serving))


class ScenarioTime:
    """Scenario seconds from the wall clock, never moving back (the policies require it)."""

    def __init__(self, clock: Clock, wall: Callable[[], float]) -> None:
        self.clock, self.wall = clock, wall
        self._now = -math.inf

    def at_wall(self, wall_s: float) -> float:
        return (wall_s - self.clock.epoch) * self.clock.scale

    def raw(self) -> float:
        """Scenario time now, as the wall clock says (may be below an earlier ``now``)."""
        return self.at_wall(self.wall())

    def now(self) -> float:
        self._now = max(self._now, self.raw())
        return self._now

    def until(self, t: float) -> float:
        """Wall seconds from now until scenario time *t* (negative once it has passed)."""
        return self.clock.epoch + t / self.clock.scale - self.wall()

    def advance(self, t: float) -> float:
        """A grid tick's own time: the clock reads at least *t* from now on."""
        self._now = max(self._now, t)
        return self._now


class EventLog:
    """The run's events, published in the shared format (time, kind, subject, detail)."""

    def __init__(self, broker: Broker, time: ScenarioTime) -> None:
        self.broker, self.time = broker, time

    async def __call__(self, kind: str, subject: str = "", **detail: Any) -> None:
        await self.at(self.time.raw(), kind, subject, **detail)

    async def at(self, time_s: float, kind: str, subject: str = "", **detail: Any) -> None:
        """An event of a moment already past: a decision stamped when it was taken (an
        alert at its evaluation), not when the message went out after other awaits."""
        await self.broker.publish("orch.event", event_document(time_s, kind, subject, detail))


class LeaseLost(Exception):
    """Another coordinator holds the lease now: stop acting at once."""
