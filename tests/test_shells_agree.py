"""Both shells' dispatch, driven through the same operations, decide the same.

The SimPy side is a real ``Simulation`` built from a small scenario through
the normal constructors, with latency, coordinator queues and the Raft
commit switched off, so every message is delivered the moment it is sent.
The environment is never run: the test plays the specialists' slot loops
itself, step for step as ``Specialist.work_loop`` does (take from the local
queue, else pull; an idle slot sleeps until work reaches the agent; a
draining agent's slot stops when its local queue is empty), and calls the
dispatcher, the fleet and the failover exactly where the loop and the
chaos would.

The live side is the dispatch core as ``sim.live.coordinator`` calls it: an
agent's first heartbeat is ``join``, a submission is ``route``, an end
report is ``ended``, a death is ``gone`` followed by the core's ``retry``
decision for each task it held (``route`` again, or a failure for good) and
the evacuation of stranded pools, a scale-down is ``drain_choice`` then
``drain``, and a drained agent going offline is ``gone``. Its agents take
assignments from their own work queue in order (``started``).

Programs may set the team bulkhead (``policies.team_limit``): both shells
keep the same books, and a reopened team's sleeping slots (simulator) or
free slots (live) pull in the same order. A zone outage goes through the
zone gate in both: the simulator's failover darkens, then declares the zone,
evacuates its queue and declares its agents dead one by one; the live health
check does the same on the outage announcement (``check_zones``; here its
declaration follows at once, as the simulator's here); when the zone is back
its agents rejoin under their ids.

Every step must make the same assignments in the same order, leave the same
tasks waiting in the same order in every pool, the same holders, the same
tasks being served, the same failures for good, attempts and avoid lists.

Known difference kept out of the programs: the live coordinator evacuates a
pool left with no agent at once (``stranded_pools``); the simulator leaves
it to neighbour pulls and replacements. Deaths and drains here always leave
the pool another serving agent.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sim.live.task import LiveTask
from sim.model.agent import Specialist
from sim.model.engine import Simulation
from sim.model.task import Task
from sim.policies.balancing import STRATEGIES
from sim.policies.dispatch import Assignment, DispatchCore
from sim.policies.types import AgentInfo
from sim.scenario.load import scenario_from_dict
from sim.world.policy_set import build_policies, dispatch_core
from sim.world.streams import Streams

ZONES = ("A", "B", "C")
CATEGORIES = ("Gen", "Rev")


def scenario(
    strategy: str, slots: int, queue_limit: int, spill: bool, budget: int, team_limit: int | None
) -> Any:
    return scenario_from_dict(
        {
            "name": "shells_agree",
            "seed": 5,
            "duration": "1h",
            "warmup": "0s",
            "topology": {
                "control_plane": {"chiefs": 1, "region": "us-east-1"},
                "zones": [
                    {"name": z, "region": r, "team_leads": 1, "standby": False, "specialists": 2}
                    for z, r in zip(ZONES, ("us-east-1", "us-west-2", "eu-west-1"), strict=True)
                ],
                "specialists": 6,
                "categories": {"Gen": 1, "Rev": 1},
                "specialist": {"slots": slots, "queue_limit": queue_limit, "speed_cv": 0.3},
                "reserve_pool": 50,
            },
            "workload": {"dags": {"rate_per_min": 0}},
            "network": {"enabled": False},
            "coordination": {"capacity": False},
            # A zone's agents restart the moment it is back (no start-up): the program steps
            # the shells itself and never runs the simulator's clock.
            "scaling": {"auto_scale": {"enabled": False}, "spawn_delay": 0},
            "health": {"replace_failed": False},
            "retry": {"budget": budget},
            "policies": {
                "load_balancing": strategy,
                "spill_across_zones": spill,
                "circuit_breaker": {"enabled": False},
                "team_limit": team_limit,
            },
        }
    )


def logged(core: DispatchCore[Any], log: list[tuple[int, str]]) -> None:
    """Record every booking the core makes, in order (the shells' assignments)."""
    hold = core.hold

    def logging_hold(task: Any, agent_id: str) -> None:
        log.append((task.id, agent_id))
        hold(task, agent_id)

    core.hold = logging_hold  # type: ignore[method-assign]


class SimShell:
    """The SimPy dispatcher, its slots played by the test (see the module docstring)."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        #: What the slot loops call (SlotBooks), and the run's ledger.
        self.d = sim.slots
        self.ledger = sim.ledger
        assert sim.chief.control_plane is not None
        assert sim.chief.control_plane.steady_commit_s == 0.0
        self.log: list[tuple[int, str]] = []
        logged(sim.core, self.log)
        self.failed: list[int] = []
        fail = self.ledger.fail

        def logging_fail(task: Task, reason: str, *, attempt_counted: bool = False) -> None:
            self.failed.append(task.id)
            fail(task, reason, attempt_counted=attempt_counted)

        self.ledger.fail = logging_fail  # type: ignore[method-assign]
        #: Members of teams the bulkhead reopened, whose sleeping slots wake (in order).
        self.woken: list[str] = []

        def recording_wake() -> None:
            self.woken.extend(sim.core.take_reopened())

        sim.roster.wake_reopened = recording_wake  # type: ignore[method-assign]
        self.serving: dict[str, list[Task]] = {}
        self.idle: dict[str, int] = {}
        for agent in list(sim.fleet.agents.values()):
            self.slots_start(agent)

    def slots_start(self, agent: Specialist) -> None:
        """A joined agent's slot loops start: each looks for work once."""
        agent.live_slots = agent.slots
        self.serving[agent.id] = []
        self.idle[agent.id] = 0
        for _ in range(agent.slots):
            self.slot_free(agent)

    def slot_free(self, agent: Specialist) -> None:
        """One turn of a free slot's loop (Specialist.work_loop up to service start)."""
        if agent.draining and not agent.local:
            agent.live_slots -= 1
            if agent.live_slots == 0:
                self.d.agent_stopped(agent)
                del self.serving[agent.id]
            return
        if agent.local:
            task = agent.local.popleft()
            self.d.local_taken(agent, task)
        else:
            pulled = self.d.pull(agent)
            if pulled is None:
                self.idle[agent.id] += 1
                return
            task = pulled[0]
        self.d.service_started(agent, task)
        self.serving[agent.id].append(task)

    def settle(self) -> None:
        """Sleeping slots wake for work that reached their agent (or for a drain).

        First those a team's reopening woke, in the order they were woken,
        each of its sleeping slots once (a slot finding nothing sleeps again).
        """
        woken, self.woken = self.woken, []
        for agent_id in woken:
            agent = self.sim.fleet.agents.get(agent_id)
            asleep = self.idle.get(agent_id, 0)
            for _ in range(asleep):
                if agent is None or agent_id not in self.serving:
                    break
                self.idle[agent_id] -= 1
                self.slot_free(agent)
        for agent_id in sorted(self.idle):
            agent = self.sim.fleet.agents.get(agent_id)
            while (
                agent is not None and self.idle.get(agent_id, 0) and (agent.local or agent.draining)
            ):
                self.idle[agent_id] -= 1
                self.slot_free(agent)

    def join(self, zone: str, category: str) -> str:
        agent_id = self.sim.fleet.spawn(zone, category, 0.0, "test")
        assert agent_id is not None
        self.slots_start(self.sim.fleet.agents[agent_id])
        return agent_id

    def arrive(self, zone: str, category: str, priority: float, critical: bool) -> int:
        task = Task(self.ledger.new_task_id(), 0.0, category, zone, 10.0, priority=priority)
        task.critical = critical
        self.ledger.submitted += 1
        self.sim.chief.submit(task, 0.0)  # the environment never runs: always time 0
        return task.id

    def end(self, agent_id: str, index: int) -> None:
        agent = self.sim.fleet.agents[agent_id]
        task = self.serving[agent_id].pop(index)
        self.d.service_ended(agent, task)
        self.slot_free(agent)

    def die(self, agent_id: str) -> None:
        agent = self.sim.fleet.agents[agent_id]
        self.sim.failover.crash(agent, "test")
        self.sim.failover._detected(agent)
        del self.serving[agent_id]
        del self.idle[agent_id]

    def restart(self, agent_id: str) -> None:
        self.sim.failover.restart(agent_id)
        self.slots_start(self.sim.fleet.agents[agent_id])

    def drain(self, zone: str, category: str) -> str | None:
        chosen = self.sim.core.drain_choice(zone, category)
        if chosen is not None:
            self.sim.fleet.drain(chosen, "test")
        return chosen

    def zone_outage(self, zone: str) -> list[str]:
        """The region goes dark; the chief's checks declare the zone, then each agent, dead."""
        failover = self.sim.failover
        agents = sorted(a.id for a in self.sim.fleet.agents.values() if a.zone == zone)
        failover.reach.zone_down(zone)
        failover.reach._zone_detected(zone, failover.reach._generation[zone])
        for agent_id in agents:
            failover._detected(self.sim.fleet.agents[agent_id])
            del self.serving[agent_id], self.idle[agent_id]
        return agents

    def zone_back(self, zone: str) -> list[str]:
        """The region is back: its failed agents restart under their ids (slots start after)."""
        before = set(self.sim.fleet.agents)
        self.sim.failover.reach.zone_up(zone)
        back = sorted(set(self.sim.fleet.agents) - before)
        for agent_id in back:
            self.slots_start(self.sim.fleet.agents[agent_id])
        return back


class LiveShell:
    """The dispatch core as the live coordinator drives it, agents playing their work queues."""

    def __init__(self, scenario_: Any, sim: Simulation) -> None:
        policies = build_policies(scenario_, Streams(scenario_.seed, 0), sim.world.regions)
        self.core: DispatchCore[LiveTask] = dispatch_core(policies)
        self.log: list[tuple[int, str]] = []
        logged(self.core, self.log)
        self.tasks: dict[int, LiveTask] = {}
        self.failed: list[int] = []
        self.slots: dict[str, int] = {}
        self.subject: dict[str, deque[LiveTask]] = {}
        self.serving: dict[str, list[LiveTask]] = {}
        self.infos: dict[str, AgentInfo] = {}
        for spec in sim.world.specialists:  # the fleet's first heartbeats, in the fleet's order
            self.join(sim.fleet.agents[spec.agent_id].info)

    def send(self, assignments: list[Assignment[LiveTask]] | Assignment[LiveTask] | None) -> None:
        if assignments is None:
            return
        if isinstance(assignments, Assignment):
            assignments = [assignments]
        for a in assignments:
            self.subject[a.agent_id].append(a.task)

    def settle(self) -> None:
        """Agents take from their work queues into free slots; drained agents go offline."""
        for agent_id in sorted(self.subject):
            queue, serving = self.subject[agent_id], self.serving[agent_id]
            while queue and len(serving) < self.slots[agent_id]:
                task = queue.popleft()
                self.core.started(task, agent_id)
                serving.append(task)
            if agent_id in self.core.draining and not queue and not serving:
                self.gone(agent_id)

    def join(self, info: AgentInfo) -> None:
        self.infos[info.agent_id] = info
        self.slots[info.agent_id] = info.slots
        self.subject[info.agent_id] = deque()
        self.serving[info.agent_id] = []
        self.send(self.core.join(info))

    def arrive(self, task_id: int, zone: str, category: str, priority: float, crit: bool) -> None:
        task = LiveTask(task_id, category, zone, 0.0, 10.0, priority=priority, critical=crit)
        self.tasks[task_id] = task
        self.send(self.core.route(task, 0.0))

    def end(self, agent_id: str, index: int) -> None:
        task = self.serving[agent_id].pop(index)
        task.done = True
        self.send(self.core.ended(task.task_id, agent_id))

    def gone(self, agent_id: str) -> None:
        """Coordinator._agent_gone: retry (or fail) what it held, evacuate stranded pools."""
        del self.subject[agent_id], self.serving[agent_id]
        for task in self.core.gone(agent_id):
            if self.core.retry(task, agent_id):
                self.send(self.core.route(task, 0.0))
            else:
                self.failed.append(task.task_id)
        self.send(self.core.wake_reopened())  # what it held may have reopened its team
        for zone, category in self.core.stranded_pools():
            for task in self.core.evacuate(zone, category):
                self.send(self.core.route(task, 0.0))

    def drain(self, zone: str, category: str) -> str | None:
        chosen = self.core.drain_choice(zone, category)
        if chosen is not None:
            self.core.drain(chosen)
        return chosen

    def zone_outage(self, zone: str) -> list[str]:
        """HealthCheck.check_zones: dark, then declared; its queue evacuated, its agents gone."""
        self.core.mark_dark(zone, True)
        self.core.zones.declare_down(zone)
        for task in self.core.evacuate(zone):
            self.send(self.core.route(task, 0.0))
        agents = sorted(a for a, info in self.core.agents.items() if info.zone == zone)
        self.core.unreachable.update(agents)
        for agent_id in agents:
            self.gone(agent_id)
        for pool in self.core.stranded_pools():
            for task in self.core.evacuate(*pool):
                self.send(self.core.route(task, 0.0))
        return agents

    def zone_back(self, zone: str, agents: list[AgentInfo]) -> None:
        """The zone is up again; its agents rejoin as their heartbeats resume."""
        self.core.mark_dark(zone, False)
        self.core.zones.declare_up(zone)
        for info in agents:
            self.join(info)


class ShellsAgree(RuleBasedStateMachine):
    """The same program on both shells; their decisions compared after every step."""

    @initialize(
        strategy=st.sampled_from(STRATEGIES),
        slots=st.integers(1, 2),
        queue_limit=st.integers(0, 1),
        spill=st.booleans(),
        budget=st.integers(0, 2),
        team_limit=st.sampled_from((None, 1, 2, 3)),
    )
    def build(
        self,
        strategy: str,
        slots: int,
        queue_limit: int,
        spill: bool,
        budget: int,
        team_limit: int | None,
    ) -> None:
        s = scenario(strategy, slots, queue_limit, spill, budget, team_limit)
        self.sim = SimShell(Simulation(s))
        self.live = LiveShell(s, self.sim.sim)
        self.dead: set[str] = set()
        self.down: set[str] = set()

    def settle(self) -> None:
        self.sim.settle()
        self.live.settle()

    def serving_agents(self) -> list[str]:
        return sorted(a for a, tasks in self.sim.serving.items() if tasks)

    def staffed_elsewhere(self, agent_id: str) -> bool:
        """Another serving agent of the pool remains if *agent_id* leaves it."""
        info = self.live.core.agents.get(agent_id)
        if info is None or agent_id in self.live.core.draining:
            return False
        return any(
            other != agent_id
            and o.zone == info.zone
            and o.category == info.category
            and other not in self.live.core.draining
            for other, o in self.live.core.agents.items()
        )

    @rule(zone=st.sampled_from(ZONES), category=st.sampled_from(CATEGORIES))
    def join(self, zone: str, category: str) -> None:
        if zone in self.down:
            return  # (live would join it; the simulator's dark zone keeps it from pulling)
        agent_id = self.sim.join(zone, category)
        self.live.join(self.sim.sim.fleet.agents[agent_id].info)
        self.settle()

    @rule(
        zone=st.sampled_from(ZONES),
        category=st.sampled_from(CATEGORIES),
        priority=st.sampled_from((0.0, 1.0, 3.0)),
        critical=st.booleans(),
    )
    def arrive(self, zone: str, category: str, priority: float, critical: bool) -> None:
        task_id = self.sim.arrive(zone, category, priority, critical)
        self.live.arrive(task_id, zone, category, priority, critical)
        self.settle()

    @rule(
        zone=st.sampled_from(ZONES),
        category=st.sampled_from(CATEGORIES),
        count=st.integers(2, 8),
    )
    def burst(self, zone: str, category: str, count: int) -> None:
        """Several arrivals at once: enough to fill the pools and queue the rest."""
        for n in range(count):
            priority = float(n % 3)
            task_id = self.sim.arrive(zone, category, priority, False)
            self.live.arrive(task_id, zone, category, priority, False)
        self.settle()

    @precondition(lambda self: bool(self.serving_agents()))
    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        agent_id = data.draw(st.sampled_from(self.serving_agents()))
        index = data.draw(st.integers(0, len(self.sim.serving[agent_id]) - 1))
        self.sim.end(agent_id, index)
        self.live.end(agent_id, index)
        self.settle()

    @precondition(lambda self: any(self.staffed_elsewhere(a) for a in self.live.core.agents))
    @rule(data=st.data())
    def die(self, data: st.DataObject) -> None:
        candidates = sorted(a for a in self.live.core.agents if self.staffed_elsewhere(a))
        agent_id = data.draw(st.sampled_from(candidates))
        self.sim.die(agent_id)
        self.live.gone(agent_id)
        self.dead.add(agent_id)
        self.settle()

    def restartable(self) -> list[str]:
        failed = self.sim.sim.fleet.failed
        return sorted(a for a in self.dead if failed[a].zone not in self.down)

    @precondition(lambda self: bool(self.restartable()))
    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        agent_id = data.draw(st.sampled_from(self.restartable()))
        self.dead.discard(agent_id)
        self.sim.restart(agent_id)
        self.live.join(self.sim.sim.fleet.agents[agent_id].info)
        self.settle()

    @precondition(lambda self: any(self.staffed_elsewhere(a) for a in self.live.core.agents))
    @rule(data=st.data())
    def drain(self, data: st.DataObject) -> None:
        pools = sorted(
            {
                (info.zone, info.category)
                for a, info in self.live.core.agents.items()
                if self.staffed_elsewhere(a)
            }
        )
        zone, category = data.draw(st.sampled_from(pools))
        assert self.sim.drain(zone, category) == self.live.drain(zone, category)
        self.settle()

    @precondition(lambda self: not self.down)
    @rule(zone=st.sampled_from(ZONES))
    def zone_outage(self, zone: str) -> None:
        """A region goes dark: declared, its queue evacuated, its agents declared dead."""
        if any(self.live.core.agents[a].zone == zone for a in self.live.core.draining):
            return  # (the simulator's draining agents do not crash; live's leave with the zone)
        assert self.sim.zone_outage(zone) == self.live.zone_outage(zone)
        self.down.add(zone)
        self.settle()

    @precondition(lambda self: bool(self.down))
    @rule()
    def zone_back(self) -> None:
        zone = min(self.down)
        self.down.discard(zone)
        back = self.sim.zone_back(zone)
        self.live.zone_back(zone, [self.sim.sim.fleet.agents[a].info for a in back])
        self.dead -= set(back)
        self.settle()

    @invariant()
    def same_decisions(self) -> None:
        if not hasattr(self, "sim"):
            return
        sim_core, live_core = self.sim.sim.core, self.live.core
        assert self.sim.log == self.live.log  # every assignment, in order
        assert sim_core.holder == live_core.holder
        pools = {(z, c) for z in ZONES for c in CATEGORIES}
        for zone, category in sorted(pools):
            assert [t.id for t in sim_core.pool_waiting(zone, category)] == [
                t.id for t in live_core.pool_waiting(zone, category)
            ], (zone, category)
        assert {a: [t.id for t in ts] for a, ts in self.sim.serving.items()} == {
            a: [t.id for t in ts] for a, ts in self.live.serving.items()
        }
        assert self.sim.failed == self.live.failed
        for task_id, task in self.live.tasks.items():
            mirror = self.sim.ledger.live.get(task_id)
            if mirror is not None:
                assert (mirror.attempt, mirror.avoid) == (task.attempt, task.avoid)
        assert sim_core.members.keys() == live_core.members.keys()
        assert sim_core.zones.declared == live_core.zones.declared
        assert sim_core.router.down == live_core.router.down
        assert sim_core.team_load == live_core.team_load
        assert sim_core.closed_teams == live_core.closed_teams
        limit = sim_core.team_limit
        if limit is not None:  # the bulkhead holds: no team ever holds more than its limit
            assert all(load <= limit for load in live_core.team_load.values())


#: CI runs 100 programs (about two seconds); SHELLS_AGREE_EXAMPLES asks for a longer search.
ShellsAgree.TestCase.settings = settings(
    settings.default,
    max_examples=int(os.environ.get("SHELLS_AGREE_EXAMPLES", "100")),
    stateful_step_count=30,
)
TestShellsAgree = ShellsAgree.TestCase
