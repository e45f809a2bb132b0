"""Planned DAG dispatch in simulated time: send a job's plan at once, stage inputs, fire on arrival.

Scenario (``policies.dag.dispatch: planned``): a DAG job reaches the chief,
which plans it (:func:`sim.policies.dag_staging.plan_staged`: HEFT over the
slots of the agents that may take it) and sends every node at once, head of
the critical path first, down the usual path — leader commit, chief, zone
coordinator, team lead — to the agent the plan chose. The agent keeps each
slot's nodes in planned order. When a node ends, its agent pushes the output
straight to every agent that will consume it (direct TCP, or NATS across
zones); a node whose assignment and inputs have all arrived starts as soon as
its slot is done with the nodes planned before it. Completion reports still
go up to the chief, which counts the job done when the last arrives.

What can go wrong goes back to the dynamic path. A planned node whose agent
is lost (declared dead, reclaimed, or gone before the assignment arrived) is
dispatched as any released node when its predecessors have all reported, or
parked at the chief until they have; its inputs are then fetched from where
they were produced. A node failed for good cancels the planned nodes
downstream of it.

This module decides nothing: the plan and its order are the policy's; this
moves records and keeps time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

import simpy

from sim.model.calls import Call
from sim.model.ledger import Ledger
from sim.model.task import Task
from sim.model.traffic import Coordinator, Traffic
from sim.policies.dag_staging import plan_staged
from sim.policies.dispatch import DispatchCore
from sim.policies.keyed_draws import task_key
from sim.world.dag_job import DagJob
from sim.world.network import Network


class Agent(Protocol):
    """What staging reads and keeps on a specialist (sim.model.agent.Specialist)."""

    id: str
    zone: str
    slots: int
    crashed: bool
    lead: Coordinator | None
    idle: list[simpy.Event]
    incoming: dict[int, Task]
    stranded: list[Task]
    planned: list[deque[Task]] | None
    plan_wake: list[simpy.Event | None]


class Shell(Protocol):
    """The zone coordinators' side staging uses (sim.model.zone_dispatch.ZoneDispatch).

    A protocol rather than an import: the zone coordinators call staging, so
    staging naming them would tie the two in a circle.
    """

    @property
    def agents(self) -> Mapping[str, Agent]: ...
    @property
    def core(self) -> DispatchCore[Task]: ...
    @property
    def net(self) -> Network: ...
    def receive(self, task: Task, zone: str, now: float) -> None: ...
    def hold_planned(self, agent_id: str, task: Task) -> None: ...
    def take_back(self, task: Task) -> None: ...


class StagedDags:
    """The planned jobs' nodes: which are staged where, and which wait at the chief.

    *new_task(job, node)* builds a released node's task as the dynamic path
    would (id, rank, critical flag); *submit(task, now)* hands a task to the
    chief (``Chief.submit``); *spill*: a plan may use every zone's agents,
    not only the job's home zone's.
    """

    def __init__(
        self,
        env: simpy.Environment,
        zone_dispatch: Shell,
        ledger: Ledger,
        traffic: Traffic | None,
        new_task: Callable[[DagJob, int], Task],
        submit: Callable[[Task, float], None],
        *,
        spill: bool,
        draw_seed: int = 0,
    ) -> None:
        self.env = env
        self.zone_dispatch = zone_dispatch
        self.ledger = ledger
        self.traffic = traffic
        self.submit = submit
        self.new_task = new_task
        self.spill = spill
        #: The run's key for the draws keyed by task (``policy_set.fault_seed``): transfers.
        self.draw_seed = draw_seed
        #: (job id, node) -> its task, from staging until its service starts.
        self.staged: dict[tuple[int, int], Task] = {}
        #: (job id, node) -> a planned task whose agent was lost before its inputs existed.
        self.parked: dict[tuple[int, int], Task] = {}
        #: (job id, node) of planned nodes with predecessors the chief has not yet released:
        #: when it does, the node is on its agent (or has run) and needs nothing more.
        self.owned: set[tuple[int, int]] = set()
        #: Jobs planned so far.
        self.jobs = 0

    # ------------------------------------------------------------------ the chief

    def stage(self, job: DagJob) -> bool:
        """Plan *job* and send every node to its agent; False: no plan, dispatch dynamically."""
        zone_dispatch = self.zone_dispatch
        core = zone_dispatch.core
        agents = [
            info
            for info in core.agents.values()
            if (self.spill or info.zone == job.home_zone)
            and info.agent_id not in core.draining
            and info.agent_id in zone_dispatch.agents
        ]
        plan = plan_staged(job.dag, agents, zone_dispatch.net.expected_transfer)
        if plan is None:
            return False
        self.jobs += 1
        info_of = {info.agent_id: info for info in agents}
        tasks: dict[int, Task] = {}
        for node in plan.send_order:
            agent_id, slot = plan.placement[node]
            task = self.new_task(job, node)
            task.home_zone = task.zone = info_of[agent_id].zone
            task.planned = (agent_id, slot)
            task.waiting = len(job.progress.predecessors(node)) + 1  # inputs + the assignment
            tasks[node] = task
            self.staged[job.job_id, node] = task
            if task.waiting > 1:
                self.owned.add((job.job_id, node))
        for (agent_id, slot), nodes in plan.sequences.items():
            self._slot_plan(zone_dispatch.agents[agent_id], slot).extend(tasks[n] for n in nodes)
        ledger = self.ledger
        for node in plan.send_order:
            ledger.blocked -= 1
            self.submit(tasks[node], self.env.now)
        return True

    def released(self, job: DagJob, nodes: list[int]) -> list[int]:
        """Of the nodes the chief just released, those the dynamic path must dispatch.

        Staged nodes are on their agents already; a parked one goes now.
        """
        out = []
        for node in nodes:
            key = job.job_id, node
            if key in self.owned:
                self.owned.discard(key)
                continue
            parked = self.parked.pop(key, None)
            if parked is None:
                out.append(node)
                continue
            self.ledger.blocked -= 1
            self.submit(parked, self.env.now)  # to the chief again, as any released node
        return out

    def lost(self, task: Task) -> bool:
        """A planned task's agent is gone before it started: True if it is parked at the chief.

        False: its predecessors have all reported, so the caller dispatches it now.
        """
        job = task.job
        assert job is not None
        assert task.planned is not None
        self._unplan(task)
        if job.progress.released(task.node):
            return False
        ledger = self.ledger
        del ledger.live[task.id]
        ledger.blocked += 1
        self.owned.discard((job.job_id, task.node))
        self.parked[job.job_id, task.node] = task
        return True

    def cancel(self, job: DagJob, nodes: set[int]) -> None:
        """Nodes downstream of one failed for good: take the planned ones back to the chief.

        Each staged task leaves its agent and the ledger and counts as blocked
        again, as the dynamic path's unreleased nodes are; the caller then
        fails every downstream node alike. (A staged task still on its way
        from the chief to its zone at that instant is not caught: it takes
        the whole retry budget of one of its predecessors, far longer than
        the milliseconds that path takes.)
        """
        zone_dispatch = self.zone_dispatch
        for node in sorted(nodes):
            key = job.job_id, node
            self.parked.pop(key, None)  # blocked already
            self.owned.discard(key)
            task = self.staged.get(key)
            if task is None:
                continue
            self._unplan(task)
            zone_dispatch.take_back(task)
            del self.ledger.live[task.id]
            self.ledger.blocked += 1

    def dropped(self, task: Task) -> None:
        """A planned task failed for good before it started: off its slot's plan."""
        self._unplan(task)

    # ------------------------------------------------------------------ the agents

    def deliver(self, task: Task, zone: str, delay: float) -> None:
        """The zone coordinator has the planned task: down to its agent, or back to the chief.

        *delay* is the zone coordinator's processing so far.
        """
        zone_dispatch = self.zone_dispatch
        assert task.planned is not None
        agent_id = task.planned[0]
        agent = zone_dispatch.agents.get(agent_id)
        if agent is None or agent_id not in zone_dispatch.core.agents or agent.crashed:
            if not self.lost(task):
                zone_dispatch.receive(task, zone, self.env.now)
            return
        net = zone_dispatch.net
        latency = delay + net.zone_to_agent(agent.zone)
        if agent.zone != zone:
            latency += net.cross_zone(zone, agent.zone)
        if agent.lead is not None:
            latency += agent.lead.through(self.env.now)
        zone_dispatch.hold_planned(agent_id, task)
        agent.incoming[task.id] = task
        Call(self.env, latency, (agent, task), self._assigned)

    def _assigned(self, event: Call) -> None:
        agent: Agent
        task: Task
        agent, task = event.payload
        if agent.incoming.pop(task.id, None) is None:
            return  # rescued while on its way
        if agent.crashed:
            agent.stranded.append(task)  # found at detection, like any assignment
            return
        self._arrived(agent, task)

    def produced(self, job: DagJob, node: int, agent: Agent) -> None:
        """*node* ended on *agent*: push its output to each planned consumer's agent."""
        zone_dispatch = self.zone_dispatch
        for successor, data_mb in job.progress.successors(node):
            task = self.staged.get((job.job_id, successor))
            if task is None or task.planned is None:
                continue  # not planned (any more): it fetches its inputs when it runs
            target = zone_dispatch.agents.get(task.planned[0])
            if target is None:
                continue
            if target is agent:
                self._arrived(target, task)
                continue
            key = task_key(self.draw_seed, task.arrival, job.job_id, successor)
            move = zone_dispatch.net.transfer(
                data_mb, agent.zone, target.zone, key, task.attempt, node
            )
            if self.traffic is not None:
                self.traffic.data_moved(data_mb, agent.zone == target.zone)
            task.transfer = max(task.transfer, move)
            Call(self.env, move, (target, task), self._input_arrived)

    def _input_arrived(self, event: Call) -> None:
        agent: Agent
        task: Task
        agent, task = event.payload
        if task.planned is None or agent.crashed:
            return  # the task went back to the dynamic path; it fetches its own inputs
        self._arrived(agent, task)

    def _arrived(self, agent: Agent, task: Task) -> None:
        """One of the assignment and the inputs is at the agent: wake its slot if it may start."""
        task.waiting -= 1
        if task.waiting or task.planned is None:
            return
        slot = task.planned[1]
        plan = agent.planned
        if plan is not None and plan[slot] and plan[slot][0] is task:
            self._wake(agent, slot)

    def started(self, task: Task) -> None:
        """The slot takes its planned task: from now on it is an ordinary task."""
        job = task.job
        assert job is not None
        del self.staged[job.job_id, task.node]
        task.planned = None

    def _slot_plan(self, agent: Agent, slot: int) -> deque[Task]:
        if agent.planned is None:
            agent.planned = [deque() for _ in range(agent.slots)]
            agent.plan_wake = [None] * agent.slots
        return agent.planned[slot]

    def _unplan(self, task: Task) -> None:
        """Take a planned task off its slot's plan (waking the slot if it was the head)."""
        job = task.job
        assert job is not None
        assert task.planned is not None
        agent_id, slot = task.planned
        self.staged.pop((job.job_id, task.node), None)
        task.planned = None
        task.waiting = 0
        task.home_zone = job.home_zone  # routed as the dynamic path routes the job's nodes
        agent = self.zone_dispatch.agents.get(agent_id)
        if agent is None or agent.planned is None:
            return
        plan = agent.planned[slot]
        head = bool(plan) and plan[0] is task
        try:
            plan.remove(task)
        except ValueError:
            return
        if head:
            self._wake(agent, slot)

    @staticmethod
    def _wake(agent: Agent, slot: int) -> None:
        """The head of *slot*'s plan changed: let the slot look again.

        A slot waiting on its plan has its own event; one that had no plan
        yet sleeps among the agent's idle slots, which cannot be told apart,
        so all of those look (the others find nothing and sleep again).
        """
        if agent.plan_wake[slot] is not None:
            _wake_planned(agent, slot)
            return
        idle, agent.idle = agent.idle, []
        for event in idle:
            event.succeed()

    def work_queued(self) -> None:
        """A task waits in a pool's queue: idle slots of agents with planned work may pull it.

        The balancer never pushes to them (their planned nodes fill their
        books), so they are told; those that find nothing sleep again. A
        slot waiting for its next planned node's inputs sleeps among them.
        Only the dynamic path's tasks queue (nodes whose agent was lost, or
        other work than planned jobs).
        """
        for agent in self.zone_dispatch.agents.values():
            planned = agent.planned
            if planned is not None and agent.idle and any(planned):
                idle, agent.idle = agent.idle, []
                for event in idle:
                    event.succeed()


def _wake_planned(agent: Agent, slot: int) -> None:
    """Wake *slot* if it sleeps waiting on its plan (it also sleeps among the idle slots)."""
    wake = agent.plan_wake[slot]
    if wake is None or wake.triggered:
        return  # not waiting, or already woken (work was pushed to it)
    agent.idle.remove(wake)
    wake.succeed()
