"""Planned DAG dispatch: the chief's static plan of a job, and the order each slot follows.

Why it exists. A dispatcher that decides while a job runs pays its messages
on every level of the graph: a node's completion report goes up to the
chief, which releases the successors, which go down to a zone coordinator
and an agent (about 12 ms per level on the validation fleet). A static plan
handed out when the job arrives pays them once: every node goes to the agent
the plan chose for it at once, its inputs are staged there — each producer
pushes its output straight to the agents that consume it as soon as it ends
— and a node starts as soon as its assignment and all its inputs are on its
agent. Completion reports still go up, but off the critical path. This is
how workflow systems that plan before they run work: Pegasus maps a whole
workflow onto resources and adds stage-in of each job's inputs to the site
that will run it (Deelman et al., Future Generation Computer Systems 46,
2015); task runtimes run a static mapping with data-driven firing.

The plan is insertion-based HEFT (:func:`heft_schedule`) over the agents'
concurrency slots, each slot a processor, restricted to the agents serving a
node's category. Each slot runs its nodes strictly in the order of their
planned starts: with exact service times that reproduces the plan, and a
later node run early because its inputs came first could only delay the one
planned before it (HEFT placed it after that one because it did not fit in
the gap). The order cannot deadlock: a node's planned start is after every
predecessor's planned finish, so no slot ever waits for a node planned
later than its own head.

The price: the plan is fixed when the job arrives, so it is only as good as
the service-time estimates; a dynamic dispatcher adapts to what happens.
Several jobs at once share the slots in arrival order (each plan assumes an
idle fleet), so planned dispatch suits a job that has its agents to itself —
the standard makespan experiment — not a busy shared fleet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sim.policies.dag import Dag
from sim.policies.dag_schedule import AgentSlot, heft_schedule
from sim.policies.types import AgentInfo

__all__ = ["StagedPlan", "plan_staged", "slot_key"]

#: Joins an agent id and a slot index into the planner's processor id.
_SLOT_SEP = "#"


def slot_key(agent_id: str, slot: int) -> str:
    """The planner's name for one concurrency slot of an agent."""
    return f"{agent_id}{_SLOT_SEP}{slot}"


@dataclass(frozen=True)
class StagedPlan:
    """Where each node of a job runs, in what order each slot runs them, and when to send them.

    ``placement`` maps a node to (agent id, slot index). ``sequences`` lists
    each used slot's nodes by planned start (the order the slot must follow).
    ``send_order`` is the order in which the chief sends the assignments:
    descending upward rank, so the head of the critical path leaves first.
    ``makespan_s`` is the plan's own makespan, messages not counted.
    """

    placement: Mapping[int, tuple[str, int]]
    sequences: Mapping[tuple[str, int], tuple[int, ...]]
    send_order: tuple[int, ...]
    makespan_s: float


def plan_staged(
    dag: Dag,
    agents: Sequence[AgentInfo],
    transfer_s: Callable[[float, str, str], float],
) -> StagedPlan | None:
    """HEFT over every slot of *agents*; None when some node's category has no agent.

    *transfer_s(data_mb, from_zone, to_zone)* is the expected time to move an
    edge's data between agents (no randomness: the plan is a pure function of
    its inputs). Two slots of one agent are planned as two processors, so the
    plan pays a transfer between them that the agent does not: the run can
    only be earlier than planned there.
    """
    served = {a.category for a in agents}
    if not dag.nodes or any(n.category not in served for n in dag.nodes):
        return None
    slots: list[AgentSlot] = []
    where: dict[str, tuple[str, int]] = {}
    for agent in agents:
        for k in range(agent.slots):
            key = slot_key(agent.agent_id, k)
            where[key] = (agent.agent_id, k)
            slots.append(AgentSlot(key, agent.speed, agent.zone, agent.category))
    schedule = heft_schedule(dag, slots, transfer_s)
    placement = {nid: where[schedule.placement[nid]] for nid in schedule.placement}
    by_slot: dict[tuple[str, int], list[int]] = {}
    for nid, slot in placement.items():
        by_slot.setdefault(slot, []).append(nid)
    # Ties of start (zero-work nodes) by HEFT's own order, which puts a predecessor first.
    position = {nid: i for i, nid in enumerate(schedule.sequence)}
    sequences = {
        slot: tuple(sorted(nodes, key=lambda n: (schedule.start[n], position[n])))
        for slot, nodes in sorted(by_slot.items())
    }
    return StagedPlan(placement, sequences, schedule.sequence, schedule.makespan)
