"""Planned DAG dispatch in the simulator (``policies.dag.dispatch: planned``, sim.model.staging).

The claims: a planned job on an idle fleet ends exactly one control path
after its HEFT plan (the first assignment's route and push, the last
report), whatever the depth of the graph; every node runs exactly once and
the books balance; a crashed agent's planned nodes go back to the dynamic
path (at once if their inputs exist, else when they do); a node that fails
for good takes its planned successors with it; and the setting is off by
default, so pinned runs do not move.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sim.analysis.workflow_table import TEMPLATE, control_path, scenario_for
from sim.analysis.workflows import CATEGORY, write_dag_json
from sim.model.engine import Simulation, run_scenario
from sim.policies.dag import Dag, DagEdge, DagNode
from sim.policies.dag_schedule import AgentSlot, heft_schedule
from sim.scenario.load import load_scenario
from sim.scenario.schema import Scenario
from sim.world.network import Network
from sim.world.streams import Streams


def chain_of_diamonds(levels: int) -> Dag:
    """*levels* diamonds in a row (one entry, one exit), with data on the edges."""
    nodes = [DagNode(0, CATEGORY, 2.0)]
    edges = []
    top = 0
    for k in range(levels):
        a, b, c = 3 * k + 1, 3 * k + 2, 3 * k + 3
        nodes += [DagNode(a, CATEGORY, 5.0), DagNode(b, CATEGORY, 3.0), DagNode(c, CATEGORY, 1.0)]
        edges += [
            DagEdge(top, a, 80.0),
            DagEdge(top, b, 5.0),
            DagEdge(a, c, 1.0),
            DagEdge(b, c, 60.0),
        ]
        top = c
    return Dag(f"diamonds-{levels}", tuple(nodes), tuple(edges))


def fan(width: int, work_s: float) -> Dag:
    """One entry, *width* parallel nodes of *work_s*, one exit."""
    middle = [DagNode(i, CATEGORY, work_s) for i in range(1, width + 1)]
    nodes = (DagNode(0, CATEGORY, 10.0), *middle, DagNode(width + 1, CATEGORY, 10.0))
    edges = [DagEdge(0, n.node_id, 1.0) for n in middle]
    edges += [DagEdge(n.node_id, width + 1, 1.0) for n in middle]
    return Dag(f"fan-{width}", nodes, tuple(edges))


def planned(
    dag: Dag, agents: int, folder: Path, *extra: str, dispatch: str = "planned", at: float = 0.0
) -> Scenario:
    """The validation scenario with *dag* at *at* on *agents* agents, dispatched as *dispatch*."""
    path = write_dag_json(dag, folder / f"{dag.name}.json").resolve()
    return load_scenario(
        TEMPLATE,
        [
            f"topology.specialists={agents}",
            f"policies.dag.dispatch={dispatch}",
            f"workload.dags.jobs=[{{file: '{path}', at: {at}}}]",
            "duration=3600",
            *extra,
        ],
    )


def heft_of(dag: Dag, scenario: Scenario, agents: int) -> float:
    net = Network(
        scenario.network, {"A": "us-east-1"}, "us-east-1", Streams(scenario.seed).get("network")
    )
    fleet = [AgentSlot(f"agent-{i}", 1.0, "A") for i in range(agents)]
    return heft_schedule(dag, fleet, net.expected_transfer).makespan


def completed(tasks: pd.DataFrame) -> pd.DataFrame:
    return tasks[tasks["outcome"] == "completed"]


@pytest.mark.parametrize("levels", [1, 4])
def test_a_planned_job_ends_one_control_path_after_its_heft_plan(
    levels: int, tmp_path: Path
) -> None:
    """Depth does not matter: the control path is paid once, not once per level as dynamically."""
    dag = chain_of_diamonds(levels)
    scenario = planned(dag, 2, tmp_path)
    ctl = control_path(2, tmp_path)
    once = ctl.route_s + ctl.assign_s + ctl.report_s
    makespan = float(run_scenario(scenario).jobs["makespan_s"].iloc[0])
    assert makespan == pytest.approx(heft_of(dag, scenario, 2) + once, abs=1e-9)
    dynamic = planned(dag, 2, tmp_path, dispatch="dynamic")
    per_level = float(run_scenario(dynamic).jobs["makespan_s"].iloc[0])
    assert per_level > makespan + (levels - 1) * once  # each dynamic level pays it again


def test_every_node_runs_once_on_the_agent_its_plan_chose(tmp_path: Path) -> None:
    dag = chain_of_diamonds(3)
    sim = Simulation(planned(dag, 3, tmp_path))
    result = sim.run()
    done = completed(result.tasks)
    assert sorted(done["node"]) == [n.node_id for n in dag.nodes]
    assert (result.tasks["outcome"] == "completed").all()
    assert result.counts["lost"] == 0
    assert result.counts["in_flight"] == 0
    assert sim.staging is not None
    assert sim.staging.jobs == 1
    assert not sim.staging.staged
    assert not sim.staging.parked


@pytest.mark.parametrize("victim", ["A-Generic-001", "A-Generic-002"])
def test_a_crashed_agents_planned_nodes_run_elsewhere_once(victim: str, tmp_path: Path) -> None:
    """Killed mid-job: its nodes go back to the dynamic path, and each node still runs once.

    The plan spreads the fan over both agents and puts the join on the
    second: killing it parks the join at the chief until the fan has reported.
    """
    dag = fan(4, 100.0)
    scenario = planned(dag, 2, tmp_path, f"chaos=[{{at: 50, kill: {{agents: ['{victim}']}}}}]")
    result = run_scenario(scenario)
    assert len(result.jobs) == 1
    done = completed(result.tasks)
    assert sorted(done["node"]) == [n.node_id for n in dag.nodes]
    assert victim not in set(done[done["end_s"] > 50]["agent"])
    retried = result.tasks[result.tasks["outcome"] == "retried"]
    assert len(retried) >= 2  # the node it served and the ones it held
    assert result.counts["lost"] == 0


def test_lost_assignments_are_sent_again_and_each_node_still_runs_once(tmp_path: Path) -> None:
    """Half the chief's messages are lost while the plan goes out: resent after the TTL."""
    dag = chain_of_diamonds(2)
    scenario = planned(
        dag,
        2,
        tmp_path,
        "network.message_ttl=5",
        "chaos=[{at: 0, duration: 2, message_loss: {rate: 0.5}}]",
        at=1.0,
    )
    result = run_scenario(scenario)
    assert result.counts["resent_messages"] > 0
    assert len(result.jobs) == 1
    assert sorted(completed(result.tasks)["node"]) == [n.node_id for n in dag.nodes]
    assert (result.tasks["outcome"] == "completed").all()


@pytest.mark.parametrize("dispatch", ["planned", "dynamic"])
def test_a_node_failed_for_good_takes_its_successors_with_it_once(
    dispatch: str, tmp_path: Path
) -> None:
    """Both nodes of the fan fail for good: the join below them fails once, not once per parent.

    (The dynamic path used to count it twice: in flight -1 at the end.)
    """
    dag = fan(2, 100.0)
    scenario = planned(
        dag,
        2,
        tmp_path,
        "retry.budget=0",
        "chaos=[{at: 50, kill: {agents: ['A-Generic-001', 'A-Generic-002']}}]",
        dispatch=dispatch,
    )
    result = run_scenario(scenario)
    assert result.jobs.empty
    failed = result.tasks[result.tasks["outcome"] == "failed"]
    assert sorted(failed["node"]) == [1, 2, 3]
    assert result.counts["failed"] == 3
    assert set(failed["reason"]) == {"retries_exhausted", "upstream_failed"}
    assert result.counts["lost"] == 0
    assert result.counts["in_flight"] == 0


def test_other_work_is_served_beside_a_planned_job(tmp_path: Path) -> None:
    """Independent tasks queue (planned nodes fill the agents' books) and are pulled by slots
    idle for want of their plan's inputs, or done with it; everything finishes."""
    dag = chain_of_diamonds(2)
    scenario = planned(
        dag,
        2,
        tmp_path,
        "topology.specialist.slots=2",
        "workload.arrivals.rate_per_min=6",
        "duration=600",
    )
    result = run_scenario(scenario)
    assert len(result.jobs) == 1
    tasks = result.tasks
    independent = tasks[tasks["job_id"] < 0]
    assert len(independent) >= 30  # about 60 arrive in 10 minutes
    # Service is about 40 s on 4 slots at 6 a minute: what arrived 2 minutes before the end
    # is done; only the last few are still in service or queued.
    early = independent[independent["arrival_s"] < 480.0]
    assert (early["outcome"] == "completed").all()
    assert result.counts["lost"] == 0
    done = completed(tasks[tasks["job_id"] == 1])
    assert sorted(done["node"]) == [n.node_id for n in dag.nodes]


def test_planned_dispatch_is_off_by_default(tmp_path: Path) -> None:
    dag = chain_of_diamonds(1)
    path = write_dag_json(dag, tmp_path / "d.json").resolve()
    scenario = scenario_for(path, 2, 3600.0)
    assert scenario.policies.dag.dispatch == "dynamic"
    assert Scenario().policies.dag.dispatch == "dynamic"
    assert Simulation(scenario).staging is None


def test_agents_that_crash_and_restart_under_planned_dispatch_lose_nothing() -> None:
    """Churn with planned jobs: a crash stops a slot that waited on its plan; a node taken
    back afterwards must not look for that slot's wake-up (it crashed the run before)."""
    root = Path(__file__).resolve().parents[2]
    scenario = load_scenario(
        root / "scenarios" / "agent_churn.yaml",
        ["policies.dag.dispatch=planned", "duration=30m", "warmup=3m"],
    )
    result = run_scenario(scenario)
    counts = result.counts
    assert counts["lost"] == 0
    assert counts["retried"] > 0  # agents did crash holding work
    jobs = result.tasks[result.tasks["job_id"] >= 0]
    assert len(jobs) > 0
