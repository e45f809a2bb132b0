"""A DAG job in flight: which nodes are done, where each ran, when the job ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from sim.policies.dag import Dag, DagNode, DagPlan, DagProgress, plan_dag, work_bound_s
from sim.scenario.schema import Network as NetworkSpec
from sim.world.llm_plan import AttemptPlan
from sim.world.network import mean_transfer_s


def plan_job(dag: Dag, network: NetworkSpec) -> DagPlan:
    """A job's plan as both shells make it: upward ranks with the scenario's expected in-zone
    transfers. The ranks order the nodes a completion releases; live had planned without
    the transfers, and released ties of work in another order than its replay."""
    return plan_dag(dag, transfer_s=partial(mean_transfer_s, network))


def cp_bound_s(dag: Dag, plan: DagPlan, network: NetworkSpec, max_speed: float) -> float:
    """Lower bound on the job's makespan: its critical path's work, no transfers, on the
    fastest agent (``jobs.parquet``'s ``cp_bound_s`` in both shells)."""
    work = plan.cp_length_s if not network.enabled else work_bound_s(dag, plan)
    return work / max_speed


@dataclass(slots=True)
class DagJob:
    """Runtime state of one workflow; the ordering decisions live in sim.policies.dag."""

    job_id: int
    dag: Dag
    plan: DagPlan
    progress: DagProgress
    arrival: float
    home_zone: str
    shape: str
    #: Lower bound on the makespan: the critical path on the fastest agent, no transfers.
    cp_bound_s: float
    nodes: dict[int, DagNode] = field(default_factory=dict)
    #: node -> (agent id, zone) where it ran, for data transfers to its successors.
    placement: dict[int, tuple[str, str]] = field(default_factory=dict)
    work: dict[int, float] = field(default_factory=dict)
    #: Nodes failed because a node upstream failed for good: each is failed once, even
    #: when a second node upstream of it fails too.
    doomed: set[int] = field(default_factory=set)
    #: node -> its model calls, drawn as the job arrived (sim.world.llm_task_plans).
    llm_plans: dict[int, AttemptPlan | None] = field(default_factory=dict)

    def dag_node(self, node: int) -> DagNode:
        return self.nodes[node]
