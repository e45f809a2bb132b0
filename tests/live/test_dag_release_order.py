"""A completion releases a DAG's successors in the simulator's order, live too.

Both shells dispatch what ``DagProgress.complete`` returns in list order,
highest upward rank first; the ranks come from the job's plan. The
simulator planned with the scenario's expected in-zone transfers, live
without them, so where a heavy edge decides the ranks the two released
simultaneous nodes in other orders: a full-fleet ``dag_heavy`` run paired
task by task found whole pairs of nodes swapped (one waited 240 s behind a
long task in live, the other in the replay). One planner, ``plan_job``, now
plans for both; ``jobs.parquet``'s critical-path bound is one formula too.

The DAG here: node 0 feeds nodes 1 and 2, both feed node 3; node 1 has
half a second more work, node 2 sends 500 MB to node 3. Without transfers
node 1 ranks first; with the network's 5 Gbit/s direct TCP node 2 does
(0.8 s more).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from conftest import small
from test_coordinator_logic import EPOCH, Fleet, run

from sim.policies.dag import Dag, DagEdge, DagNode, DagProgress, plan_dag
from sim.world.dag_job import cp_bound_s, plan_job
from sim.world.dag_source import DagSource
from sim.world.network import Network
from sim.world.streams import Streams
from sim.world.topology import build_world
from sim.world.workload import ServiceDemand

NETWORK_ON = "network.enabled=true"
WORK = {0: 10.0, 1: 10.5, 2: 10.0, 3: 10.0}
EDGES = [(0, 1, 1.0), (0, 2, 1.0), (1, 3, 1.0), (2, 3, 500.0)]


def diamond() -> Dag:
    nodes = tuple(DagNode(n, "CodeGen", w) for n, w in WORK.items())
    return Dag("diamond", nodes, tuple(DagEdge(a, b, mb) for a, b, mb in EDGES))


def released_after_entry(progress: DagProgress) -> list[int]:
    [entry] = progress.ready()
    return progress.complete(entry)


def simulators_order(*overrides: str) -> list[int]:
    """What the simulator's own job start plans (``DagSource.start_job``) releases."""
    scenario = small(*overrides)
    streams = Streams(scenario.seed, 0)
    world = build_world(scenario, streams.get("world"))
    network = Network(scenario.network, world.regions, world.chief_region, streams.get("network"))
    source = DagSource(scenario, streams, ServiceDemand(scenario, streams), network)
    job = source.start_job(0, diamond(), "diamond", "A", 0.0)
    return released_after_entry(job.progress)


def test_the_transfers_decide_the_order_here() -> None:
    """The case can tell the two planners apart: without transfers node 1 goes first."""
    assert released_after_entry(DagProgress(plan_dag(diamond()), diamond())) == [1, 2]
    assert simulators_order(NETWORK_ON) == [2, 1]
    assert simulators_order() == [1, 2]  # no network: no transfer, the work decides


def test_live_releases_the_successors_in_the_simulators_order() -> None:
    async def body(fleet: Fleet) -> None:
        c = fleet.coordinator(NETWORK_ON)
        await fleet.beat("a1")  # one agent, one slot: the first released runs, the next queues
        await c.take_over()
        document: dict[str, Any] = {
            "kind": "job",
            "job_id": 7,
            "zone": "A",
            "arrival_s": fleet.wall.t - EPOCH,
            "shape": "diamond",
            "nodes": [
                {"node": n, "task_id": 10 + n, "category": "CodeGen", "work_s": w}
                for n, w in WORK.items()
            ],
            "edges": [list(edge) for edge in EDGES],
        }
        await fleet.broker.publish("orch.submit", document, "sub.7.job")
        await c.pump()
        assert await fleet.take("a1") == [(10, 1)]
        await fleet.result("start", 10, "a1")
        fleet.wall.t += 10.0
        await fleet.result("end", 10, "a1")
        await c.pump()
        taken = [task - 10 for task, _ in await fleet.take("a1")]
        assert taken[:1] == simulators_order(NETWORK_ON)[:1] == [2]

    run(body)


def test_both_shells_bound_a_job_by_its_critical_path_on_the_fastest_agent() -> None:
    """No transfers in the bound (work only), divided by the fastest agent's speed."""
    scenario = small(NETWORK_ON)
    plan = plan_job(diamond(), scenario.network)
    bound = cp_bound_s(diamond(), plan, scenario.network, max_speed=2.0)
    assert np.isclose(bound, (10.0 + 10.5 + 10.0) / 2.0)  # 0 -> 1 -> 3, no transfer
    assert plan.cp_length_s > 30.5  # the plan's own path carries the 500 MB edge
