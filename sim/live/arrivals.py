"""The scenario's workload as live submissions: the simulator's own arrivals, same seed.

``orchestra live run`` publishes these documents on ``orch.submit`` at their
times: every task and DAG job the simulator's generators draw (``TaskSource``,
``DagSource``), in the simulator's order, with the model calls an LLM task
will make (drawn when it is submitted, ``_LlmPlans``) and, with ``tiers``,
the tier and tenant the simulator's chief draws for each independent task
(``TierMix`` on the ``tiers`` stream, in arrival order).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any, cast

from sim.policies.dag import Dag
from sim.scenario.schema import Scenario
from sim.world.dag_job import cp_bound_s, plan_job
from sim.world.dag_source import DagSource
from sim.world.llm_plan import AttemptPlan
from sim.world.llm_task_plans import TaskPlans
from sim.world.network import Network
from sim.world.streams import Streams
from sim.world.tier_mix import TierMix
from sim.world.topology import build_world
from sim.world.workload import FIRST_ID, ServiceDemand, TaskSource

__all__ = ["arrivals"]


def arrivals(scenario: Scenario) -> Iterator[tuple[float, dict[str, Any]]]:
    """Every submission in time order, from the simulator's own generators (same seed)."""
    streams = Streams(scenario.seed, 0)
    demand = ServiceDemand(scenario, streams)
    world = build_world(scenario, streams.get("world"))
    network = Network(scenario.network, world.regions, world.chief_region, streams.get("network"))
    plans = _LlmPlans(scenario, streams)
    net = scenario.network
    fastest = max((s.speed for s in world.specialists), default=1.0)  # as the simulator's
    tiers = scenario.tiers
    # The simulator's chief draws each independent task's tier and tenant, in arrival order.
    mix = (
        TierMix(tiers, list(scenario.topology.categories), streams.get("tiers")) if tiers else None
    )
    tasks = ((a.time, 0, a) for a in TaskSource(scenario, streams, demand))
    jobs = (
        (t, 1, (dag, shape, zone))
        for t, dag, shape, zone in DagSource(scenario, streams, demand, network)
    )
    # Ids count as the simulator's do, so a live run's task and job ids are its replay's
    # (live had counted from 0: every id one less than the same task's in the replay).
    next_id = job_id = FIRST_ID
    for t, kind, item in heapq.merge(tasks, jobs, key=lambda x: (x[0], x[1])):
        if kind == 0:
            yield t, _task_submission(item, t, next_id, mix, plans)
            next_id += 1
            continue
        dag, shape, zone = cast(tuple[Dag, str, str], item)
        nodes = _job_nodes(dag, next_id, plans)
        next_id += len(nodes)
        yield (
            t,
            {
                "kind": "job",
                "job_id": job_id,
                "shape": shape,
                "zone": zone,
                "arrival_s": t,
                "cp_bound_s": cp_bound_s(dag, plan_job(dag, net), net, fastest),
                "nodes": nodes,
                "edges": [[e.src, e.dst, e.data_mb] for e in dag.edges],
            },
        )
        job_id += 1


def _task_submission(
    a: Any, t: float, task_id: int, mix: TierMix | None, plans: _LlmPlans
) -> dict[str, Any]:
    """An independent task's submission: with its tier and tenant drawn, and its LLM calls."""
    task = {
        "kind": "task",
        "task_id": task_id,
        "category": a.category,
        "zone": a.zone,
        "arrival_s": t,
        "work_s": float(a.work),
    }
    if mix is not None:
        tier, task["tenant"] = mix.draw(a.category)
        task["tier"] = mix.names[tier]
    return plans.add(task)


def _job_nodes(dag: Dag, first_id: int, plans: _LlmPlans) -> list[dict[str, Any]]:
    """A DAG job's nodes as tasks, numbered from *first_id* in the DAG's node order."""
    drawn = plans.plans.for_job([node.category for node in dag.nodes])
    return [
        plans.attach(
            {
                "task_id": first_id + i,
                "node": node.node_id,
                "category": node.category,
                "work_s": node.work_s,
            },
            plan,
        )
        for i, (node, plan) in enumerate(zip(dag.nodes, drawn, strict=True))
    ]


class _LlmPlans:
    """Each LLM task's calls in its submission, drawn by the rule both shells keep
    (:class:`sim.world.llm_task_plans.TaskPlans`: one per task, as it is submitted)."""

    def __init__(self, scenario: Scenario, streams: Streams) -> None:
        llm = scenario.llm
        self.plans = TaskPlans(llm, streams)
        self.models = dict(llm.categories) if llm is not None else {}

    def add(self, task: dict[str, Any]) -> dict[str, Any]:
        """An independent task's submission, with its calls drawn as it arrives."""
        return self.attach(task, self.plans.for_task(task["category"]))

    def attach(self, task: dict[str, Any], plan: AttemptPlan | None) -> dict[str, Any]:
        """*task* with *plan*'s calls in it, as the agent will make them (None: it makes none)."""
        if plan is None:
            return task
        tools = (*plan.tools_s, 0.0)
        task["llm"] = {
            "model": self.models[task["category"]],
            "calls": [
                {
                    "input_tokens": c.input_tokens,
                    "output_tokens": c.output_tokens,
                    "cached_tokens": c.cached_tokens,
                    "tool_s": tool,
                }
                for c, tool in zip(plan.calls, tools, strict=True)
            ],
        }
        return task
