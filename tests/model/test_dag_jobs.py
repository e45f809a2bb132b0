"""DAG jobs through the whole engine: files, inline graphs, critical paths, data transfers."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from support import SCENARIOS

from sim.cli import main
from sim.metrics.result import RunResult
from sim.model.engine import Simulation, run_scenario
from sim.policies.dag import Dag, critical_path
from sim.policies.keyed_draws import task_key, transfer_jitter
from sim.scenario.load import load_scenario
from sim.scenario.schema import Scenario
from sim.world.dag_job import DagJob
from sim.world.dag_shapes import load_dag_file

BASELINE = SCENARIOS / "baseline_200.yaml"

# A release pipeline written by hand, string ids (renumbered 0..n-1 in file order).
RELEASE_YAML = {
    "name": "release",
    "nodes": [
        {"id": "spec", "category": "Design", "work_s": 20},
        {"id": "code", "category": "CodeGen", "work_s": 60},
        {"id": "docs", "category": "Documentation", "work_s": 25},
        {"id": "unit", "category": "Test", "work_s": 30},
        {"id": "audit", "category": "Security", "work_s": 15},
        {"id": "review", "category": "Review", "work_s": 10},
        {"id": "ship", "category": "DevOps", "work_s": 5},
    ],
    "edges": [
        {"src": "spec", "dst": "code", "data_mb": 1},
        {"src": "spec", "dst": "docs"},
        {"src": "code", "dst": "unit", "data_mb": 50},
        {"src": "code", "dst": "audit", "data_mb": 50},
        {"src": "unit", "dst": "review"},
        {"src": "audit", "dst": "review"},
        {"src": "docs", "dst": "ship"},
        {"src": "review", "dst": "ship", "data_mb": 5},
    ],
}

# A fan-out/fan-in with integer ids that are kept as written (not contiguous).
FANOUT_JSON = {
    "name": "fanout",
    "nodes": [
        {"id": 10, "category": "Research", "work_s": 12},
        {"id": 20, "category": "Integration", "work_s": 40},
        {"id": 30, "category": "Integration", "work_s": 35},
        {"id": 40, "category": "Integration", "work_s": 8},
        {"id": 50, "category": "Support", "work_s": 6},
    ],
    "edges": [
        {"src": 10, "dst": 20, "data_mb": 3},
        {"src": 10, "dst": 30, "data_mb": 3},
        {"src": 10, "dst": 40, "data_mb": 3},
        {"src": 20, "dst": 50},
        {"src": 30, "dst": 50},
        {"src": 40, "dst": 50},
    ],
}


def write_dag_files(folder: Path) -> tuple[Path, Path]:
    release = folder / "release.yaml"
    release.write_text(yaml.safe_dump(RELEASE_YAML, sort_keys=False), encoding="utf-8")
    fanout = folder / "fanout.json"
    fanout.write_text(json.dumps(FANOUT_JSON), encoding="utf-8")
    return release, fanout


def write_scenario(folder: Path, body: dict[str, Any]) -> Path:
    """A scenario file extending the baseline; relative paths in *body* resolve from *folder*."""
    path = folder / "scenario.yaml"
    document = {"extends": str(BASELINE), **body}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def completed_dag_tasks(result: RunResult) -> pd.DataFrame:
    tasks = result.tasks
    return tasks[(tasks["job_id"] >= 0) & (tasks["outcome"] == "completed")]


def assert_jobs_ran_by_their_graphs(result: RunResult, dags: dict[str, Dag]) -> None:
    """Every completed job ran every node exactly once, each after all its predecessors."""
    assert result.counts["lost"] == 0
    assert result.counts["failed"] == 0
    jobs = result.jobs
    assert len(jobs) > 0
    done = completed_dag_tasks(result)
    by_job = {int(job_id): frame.set_index("node") for job_id, frame in done.groupby("job_id")}
    for job in jobs.itertuples():
        dag = dags[str(job.shape)]
        assert job.nodes == len(dag.nodes)
        rows = by_job[int(job.job_id)]
        assert rows.index.is_unique
        assert sorted(rows.index) == sorted(n.node_id for n in dag.nodes)
        for node in dag.nodes:
            assert rows.at[node.node_id, "category"] == node.category
            assert rows.at[node.node_id, "work_s"] == node.work_s
        for edge in dag.edges:
            before, after = rows.loc[edge.src], rows.loc[edge.dst]
            # Released (arrival_s) only after the predecessor ended and its report was in.
            assert after["arrival_s"] >= before["end_s"]
            assert after["arrival_s"] >= before["complete_s"]
            assert after["start_s"] >= before["end_s"]
        assert job.complete_s == pytest.approx(rows["complete_s"].max())
        assert job.arrival_s == pytest.approx(rows["arrival_s"].min())


# --------------------------------------------------------------------------- files and inline


def test_dag_files_run_through_the_engine(tmp_path: Path) -> None:
    write_dag_files(tmp_path)
    scenario_file = write_scenario(
        tmp_path,
        {
            "workload": {
                "arrivals": {"rate_per_min": 60},
                "dags": {
                    "rate_per_min": 3,
                    "files": ["release.yaml", "fanout.json"],
                    "file_share": 1.0,
                },
            }
        },
    )
    scenario = load_scenario(scenario_file, ["duration=40m", "warmup=5m"])
    categories = list(scenario.topology.categories)
    dags = {
        "file:release": load_dag_file(tmp_path / "release.yaml", categories),
        "file:fanout": load_dag_file(tmp_path / "fanout.json", categories),
    }
    # The JSON's integer ids are kept; the YAML's string ids become positions.
    assert sorted(n.node_id for n in dags["file:fanout"].nodes) == [10, 20, 30, 40, 50]
    assert sorted(n.node_id for n in dags["file:release"].nodes) == list(range(7))

    result = run_scenario(scenario)
    shapes = Counter(result.jobs["shape"])
    assert set(shapes) == set(dags)  # file_share = 1: no generated shape at all
    assert shapes["file:release"] > 20 and shapes["file:fanout"] > 20
    assert_jobs_ran_by_their_graphs(result, dags)
    # Jobs still open at the end hold their released nodes; nothing else is missing.
    counts = result.counts
    assert counts["submitted"] == counts["completed"] + counts["in_flight"]


def test_inline_dags_run_through_the_engine(tmp_path: Path) -> None:
    inline = {
        "name": "triage",
        "nodes": [
            {"id": "read", "category": "Support", "work_s": "30s"},
            {"id": "repro", "category": "Test", "work_s": 45},
            {"id": "fix", "category": "CodeGen", "work_s": "1m"},
            {"id": "check", "category": "Review", "work_s": 20},
        ],
        "edges": [
            {"src": "read", "dst": "repro", "data_mb": 2},
            {"src": "repro", "dst": "fix"},
            {"src": "read", "dst": "fix"},
            {"src": "fix", "dst": "check", "data_mb": 4},
        ],
    }
    scenario_file = write_scenario(
        tmp_path,
        {
            "workload": {
                "arrivals": {"rate_per_min": 60},
                "dags": {"rate_per_min": 2, "inline": [inline], "file_share": 1.0},
            }
        },
    )
    scenario = load_scenario(scenario_file, ["duration=40m", "warmup=5m"])
    dag = scenario.workload.dags.inline[0].to_dag()
    assert [n.work_s for n in dag.nodes] == [30.0, 45.0, 60.0, 20.0]
    result = run_scenario(scenario)
    assert set(result.jobs["shape"]) == {"file:triage"}
    assert len(result.jobs) > 30
    assert_jobs_ran_by_their_graphs(result, {"file:triage": dag})


# --------------------------------------------------------------------------- critical path


def wide_open_fleet(dag_file: Path, **dags: object) -> Scenario:
    """One category, 400 identical specialists, no latency, deterministic work."""
    return load_scenario(
        BASELINE,
        [
            "duration=30m",
            "warmup=0",
            "network.enabled=false",
            "coordination.capacity=false",
            "topology.categories={CodeGen: 1}",
            "topology.specialists=400",
            "topology.specialist.speed_cv=0",
            "workload.service={dist: deterministic, mean: 30}",
            "workload.arrivals.rate_per_min=20",
            "workload.dags.shapes={}",
            f"workload.dags.files=[{dag_file}]",
            "workload.dags.file_share=1",
            f"workload.dags.rate_per_min={dags.get('rate_per_min', 1)}",
        ],
    )


def test_makespan_equals_the_critical_path_with_unlimited_agents(tmp_path: Path) -> None:
    """Enough idle agents and no latency: a job takes exactly its critical path."""
    document = {
        "name": "diamond",
        "nodes": [
            {"id": "a", "category": "CodeGen", "work_s": 10},
            {"id": "b", "category": "CodeGen", "work_s": 25.5},
            {"id": "c", "category": "CodeGen", "work_s": 7},
            {"id": "d", "category": "CodeGen", "work_s": 40.25},
            {"id": "e", "category": "CodeGen", "work_s": 5},
            {"id": "f", "category": "CodeGen", "work_s": 12},
            {"id": "g", "category": "CodeGen", "work_s": 70},
        ],
        "edges": [
            {"src": "a", "dst": "b", "data_mb": 100},
            {"src": "a", "dst": "c", "data_mb": 100},
            {"src": "b", "dst": "d"},
            {"src": "c", "dst": "d"},
            {"src": "c", "dst": "e"},
            {"src": "d", "dst": "f", "data_mb": 500},
            {"src": "e", "dst": "f"},
        ],  # g stands alone: a second entry and exit, shorter than the main path
    }
    dag_file = tmp_path / "diamond.yaml"
    dag_file.write_text(yaml.safe_dump(document), encoding="utf-8")
    scenario = wide_open_fleet(dag_file)
    dag = load_dag_file(dag_file, list(scenario.topology.categories))
    path, length = critical_path(dag)
    assert length == pytest.approx(10 + 25.5 + 40.25 + 12)
    assert [dag.nodes[i].work_s for i in path] == [10, 25.5, 40.25, 12]

    result = run_scenario(scenario)
    assert set(result.agents.loc[result.agents["role"] == "specialist", "speed"]) == {1.0}
    jobs = result.jobs
    assert len(jobs) >= 1
    for makespan in jobs["makespan_s"]:
        assert makespan == pytest.approx(length, abs=1e-6)
    assert jobs["cp_bound_s"].to_numpy() == pytest.approx(length, abs=1e-6)
    # The independent tasks shared the fleet, yet never queued.
    independent = result.tasks[result.tasks["job_id"] < 0]
    assert len(independent) > 400 and (independent["queue_s"] == 0).all()


# --------------------------------------------------------------------------- data transfers


def run_remembering_graphs(scenario: Scenario) -> tuple[Simulation, RunResult, dict[int, Dag]]:
    """Run *scenario*, keeping each DAG job's graph by job id (the tables hold no edges)."""
    sim = Simulation(scenario)
    graphs: dict[int, Dag] = {}
    start_job = sim.dags.start_job

    def remember(job_id: int, dag: Dag, shape: str, zone: str, now: float) -> DagJob:
        graphs[job_id] = dag
        return start_job(job_id, dag, shape, zone, now)

    sim.dags.start_job = remember  # type: ignore[method-assign]
    return sim, sim.run(), graphs


def test_transfers_cost_time_only_between_different_agents() -> None:
    scenario = load_scenario(SCENARIOS / "dag_heavy.yaml", ["duration=30m", "warmup=5m"])
    assert scenario.network.enabled and scenario.workload.dags.data_mb_mean > 0
    _, result, graphs = run_remembering_graphs(scenario)
    assert result.counts["lost"] == 0

    done = completed_dag_tasks(result)
    agent_of = {
        (job, node): agent
        for job, node, agent in zip(
            done["job_id"], done["node"], done["agent"].astype(str), strict=True
        )
    }
    same_agent: list[float] = []
    other_agent: list[float] = []
    for job, node, agent, transfer in zip(
        done["job_id"], done["node"], done["agent"].astype(str), done["transfer_s"], strict=True
    ):
        predecessors = [e.src for e in graphs[job].edges if e.dst == node]
        if not predecessors:
            assert transfer == 0  # entry nodes have no inputs to fetch
            continue
        if all(agent_of[job, p] == agent for p in predecessors):
            same_agent.append(transfer)
        else:
            other_agent.append(transfer)
    assert len(same_agent) >= 5 and len(other_agent) >= 100
    assert all(t == 0 for t in same_agent)
    assert all(t > 0 for t in other_agent)


def test_a_transfers_jitter_is_the_keyed_draw_live_takes_too() -> None:
    """Each node waits for its slowest input from another agent: the network's mean for
    the path x ``transfer_jitter`` keyed by the node, its attempt and the predecessor (the
    factor live's coordinator draws for the same input, ``DagTransfers``)."""
    scenario = load_scenario(
        SCENARIOS / "dag_heavy.yaml", ["duration=20m", "warmup=0s", "network.jitter_cv=0.3"]
    )
    sim, result, graphs = run_remembering_graphs(scenario)
    done = completed_dag_tasks(result)
    ran = {
        (int(row.job_id), int(row.node)): (str(row.agent), str(row.zone))
        for row in done.itertuples()
    }
    sigma = math.sqrt(math.log1p(0.3**2))
    checked = 0
    for row in done.itertuples():
        job, node, agent, zone = int(row.job_id), int(row.node), str(row.agent), str(row.zone)
        key = task_key(sim.slots.draw_seed, 0.0, job, node)  # (a node's key skips its arrival)
        moves = [
            sim.network.expected_transfer(edge.data_mb, ran[job, edge.src][1], zone)
            * transfer_jitter(key, int(row.attempt), edge.src, sigma)
            for edge in graphs[job].edges
            if edge.dst == node and ran[job, edge.src][0] != agent
        ]
        assert row.transfer_s == pytest.approx(max(moves, default=0.0), rel=1e-12)
        checked += bool(moves)
    assert checked >= 100


# --------------------------------------------------------------------------- bad files


BAD_DAGS = {
    "cycle": (
        "loop.yaml",
        {
            "nodes": [
                {"id": "x", "category": "Test", "work_s": 1},
                {"id": "y", "category": "Test", "work_s": 1},
                {"id": "z", "category": "Test", "work_s": 1},
            ],
            "edges": [{"src": "x", "dst": "y"}, {"src": "y", "dst": "z"}, {"src": "z", "dst": "x"}],
        },
        "edges: cycle x → y → z → x",
    ),
    "unknown-category": (
        "stranger.json",
        {
            "nodes": [
                {"id": 0, "category": "Test", "work_s": 1},
                {"id": 1, "category": "Marketing", "work_s": 1},
            ],
            "edges": [{"src": 0, "dst": 1}],
        },
        "nodes[1].category: expected one of CodeGen, Review",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DAGS))
def test_validate_names_the_bad_dag_file_and_the_problem(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name, document, problem = BAD_DAGS[case]
    dag_file = tmp_path / name
    text = json.dumps(document) if name.endswith(".json") else yaml.safe_dump(document)
    dag_file.write_text(text, encoding="utf-8")
    scenario_file = write_scenario(
        tmp_path, {"workload": {"dags": {"files": [name], "file_share": 0.5}}}
    )
    status = main(["validate", str(scenario_file)])
    captured = capsys.readouterr()
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert f"{dag_file}: {problem}" in lines[0]
    assert captured.out == ""


def test_data_locality_keeps_inputs_where_they_are() -> None:
    """A WfCommons Montage on 16 agents: with locality on, less data moves between agents.

    The makespan template turns locality on; off, a node goes wherever the
    balancer sends it and pays for moving its inputs more often (measured:
    153 transfers, 12.4 s of them, against 146 and 10.1 s with locality).
    """
    template = SCENARIOS / "workflow_makespan.yaml"
    moved: dict[bool, float] = {}
    for on in (True, False):
        scenario = load_scenario(
            template, ["topology.specialists=16", f"policies.dag.data_locality={str(on).lower()}"]
        )
        tasks = run_scenario(scenario).tasks
        moved[on] = float(tasks["transfer_s"].sum())
        assert (tasks["outcome"] == "completed").all()
    assert moved[True] < moved[False]
