"""DAG jobs released at fixed times (``workload.dags.jobs``): the makespan experiment's input.

One job at time 0 on an idle fleet is how a scheduler's makespan is
measured; these tests check that a scenario can say so, that the job runs
exactly when and where it says, that paths resolve from the scenario's
folder, that Poisson jobs are not disturbed, and that bad input is one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import SCENARIOS

from sim.cli import main
from sim.model.engine import run_scenario
from sim.scenario.load import load_scenario

DIAMOND = {
    "name": "diamond",
    "nodes": [
        {"id": "split", "category": "Generic", "work_s": 10},
        {"id": "long", "category": "Generic", "work_s": 20},
        {"id": "short", "category": "Generic", "work_s": 5},
        {"id": "join", "category": "Generic", "work_s": 1},
    ],
    "edges": [
        {"src": "split", "dst": "long", "data_mb": 100},
        {"src": "split", "dst": "short", "data_mb": 100},
        {"src": "long", "dst": "join"},
        {"src": "short", "dst": "join"},
    ],
}


def two_agent_scenario(
    folder: Path, jobs: list[dict[str, Any]], service_s: float = 60.0, **dags: Any
) -> Path:
    """Two identical agents of one category, no latency, no other work: a bare scheduler.

    *service_s* is the mean work of generated (Poisson) DAG nodes, deterministic.
    """
    document = {
        "extends": str(SCENARIOS / "mmc_validation.yaml"),
        "name": "releases",
        "duration": "1h",
        "warmup": 0,
        "topology": {"specialists": 2},
        "workload": {
            "arrivals": {"rate_per_min": 0},
            "service": {"dist": "deterministic", "mean": service_s},
            "dags": {"rate_per_min": 0, "jobs": jobs, **dags},
        },
    }
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def write_dag(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")


def test_one_job_at_time_zero_runs_at_once_and_is_timed_exactly(tmp_path: Path) -> None:
    """The split runs 0-10 s, both branches at 10 s on the two agents, the join at 30-31 s."""
    write_dag(tmp_path / "dags" / "diamond.json", DIAMOND)
    scenario_file = two_agent_scenario(tmp_path, [{"file": "dags/diamond.json", "at": 0}])
    result = run_scenario(load_scenario(scenario_file))
    jobs = result.jobs
    assert list(jobs["shape"]) == ["file:diamond"]
    assert list(jobs["arrival_s"]) == [0.0]
    assert list(jobs["makespan_s"]) == [31.0]
    tasks = result.tasks[result.tasks["job_id"] >= 0].sort_values("start_s")
    assert list(tasks["start_s"]) == [0.0, 10.0, 10.0, 30.0]
    assert result.counts["lost"] == 0


def test_releases_run_in_time_order_in_their_zones(tmp_path: Path) -> None:
    """Written out of order, released in time order; ``at`` takes a duration string."""
    write_dag(tmp_path / "diamond.json", DIAMOND)
    scenario_file = two_agent_scenario(
        tmp_path,
        [
            {"file": "diamond.json", "at": "20m"},
            {"file": "diamond.json", "at": 0, "zone": "A"},
            {"file": "diamond.json", "at": "5m"},
        ],
    )
    result = run_scenario(load_scenario(scenario_file))
    jobs = result.jobs.sort_values("arrival_s")
    assert list(jobs["arrival_s"]) == [0.0, 300.0, 1200.0]
    assert list(jobs["makespan_s"]) == [31.0, 31.0, 31.0]  # the fleet is idle each time
    assert set(result.tasks.loc[result.tasks["job_id"] >= 0, "zone"]) == {"A"}


def test_the_file_resolves_from_the_scenario_folder_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dag(tmp_path / "here" / "diamond.json", DIAMOND)
    scenario_file = two_agent_scenario(tmp_path / "here", [{"file": "diamond.json"}])
    monkeypatch.chdir(tmp_path)
    scenario = load_scenario(scenario_file)
    assert scenario.workload.dags.jobs[0].file == tmp_path / "here" / "diamond.json"
    assert scenario.workload.dags.jobs[0].at == 0.0


def test_a_fixed_release_leaves_the_poisson_jobs_as_they_were(tmp_path: Path) -> None:
    """Releases draw from no random stream: the Poisson jobs keep their times and shapes."""
    write_dag(tmp_path / "diamond.json", DIAMOND)
    poisson = {"rate_per_min": 2, "shapes": {"layered": 1, "fork_join": 1}, "size": 6}
    without = two_agent_scenario(tmp_path, [], service_s=2.0, **poisson)
    plain = run_scenario(load_scenario(without)).jobs
    with_release = two_agent_scenario(
        tmp_path, [{"file": "diamond.json", "at": "10m"}], service_s=2.0, **poisson
    )
    mixed = run_scenario(load_scenario(with_release)).jobs
    assert len(plain) > 20
    fixed = mixed[mixed["shape"] == "file:diamond"]
    assert list(fixed["arrival_s"]) == [600.0]
    others = mixed[mixed["shape"] != "file:diamond"].sort_values("arrival_s")
    plain = plain.sort_values("arrival_s")
    assert list(others["arrival_s"]) == list(plain["arrival_s"])
    assert list(others["shape"]) == list(plain["shape"])
    assert list(others["nodes"]) == list(plain["nodes"])


@pytest.mark.parametrize(
    ("job", "dag", "expected"),
    [
        (
            {"file": "diamond.json", "at": "2h"},
            DIAMOND,
            "workload.dags.jobs[0].at: expected less than duration (3600 s), got 7200 s",
        ),
        (
            {"file": "diamond.json", "zone": "Z"},
            DIAMOND,
            "workload.dags.jobs[0].zone: unknown zone 'Z'; expected one of A",
        ),
        ({"file": "diamond.json", "at": -5}, DIAMOND, "workload.dags.jobs[0].at: "),
        ({"file": "diamond.json", "when": 0}, DIAMOND, "workload.dags.jobs[0].when: "),
        ({"at": 0}, DIAMOND, "workload.dags.jobs[0].file: expected field required"),
        ({"file": "missing.json"}, DIAMOND, "workload.dags.jobs[0].file: "),
        (
            {"file": "diamond.json"},
            {**DIAMOND, "nodes": [{**DIAMOND["nodes"][0], "category": "Review"}]},
            "workload.dags.jobs[0].file: ",
        ),
    ],
    ids=[
        "after-end",
        "unknown-zone",
        "negative",
        "unknown-field",
        "no-file",
        "missing",
        "category",
    ],
)
def test_bad_releases_are_one_line_errors(
    tmp_path: Path,
    job: dict[str, Any],
    dag: dict[str, Any],
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_dag(tmp_path / "diamond.json", dag)
    scenario_file = two_agent_scenario(tmp_path, [job])
    status = main(["validate", str(scenario_file)])
    captured = capsys.readouterr()
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert str(scenario_file) in lines[0]
    assert expected in lines[0]
    assert "Traceback" not in captured.err


def test_a_missing_release_file_fails_the_run_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``orchestra run`` checks inputs before running: the file, the field, the reason."""
    scenario_file = two_agent_scenario(tmp_path, [{"file": "nowhere.json"}])
    status = main(["run", str(scenario_file), "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "workload.dags.jobs[0].file" in lines[0]
    assert str(tmp_path / "nowhere.json") in lines[0]
    assert "cannot read" in lines[0]
    assert not (tmp_path / "out").exists()


def test_the_live_shell_submits_the_same_release(tmp_path: Path) -> None:
    """Both shells read jobs from DagSource: the live submission list has the job at its time."""
    from sim.live.arrivals import arrivals

    write_dag(tmp_path / "diamond.json", DIAMOND)
    scenario_file = two_agent_scenario(tmp_path, [{"file": "diamond.json", "at": 90}])
    submitted = list(arrivals(load_scenario(scenario_file)))
    assert [(t, item["kind"], item["shape"], item["zone"]) for t, item in submitted] == [
        (90.0, "job", "file:diamond", "A")
    ]
    job = submitted[0][1]
    assert [n["work_s"] for n in job["nodes"]] == [10, 20, 5, 1]
    assert job["cp_bound_s"] == 31.0


def test_a_live_runs_task_ids_are_its_replays() -> None:
    """Both shells count task ids from ``FIRST_ID`` in arrival order, so the submission
    live sends for an arrival carries the id the simulator gives it (live had counted from
    0: every id one less than in its replay). DAG nodes are the known exception: live
    numbers a job's nodes when the job arrives, the simulator as each is released."""
    from sim.live.arrivals import arrivals
    from sim.runner import run

    scenario = load_scenario(
        SCENARIOS / "baseline_200.yaml",
        ["duration=3m", "warmup=0", "workload.dags.rate_per_min=0"],
    )
    live = {round(t, 9): item["task_id"] for t, item in arrivals(scenario) if t < 180.0}
    tasks = run(scenario).results[0].tasks
    first = tasks[tasks["attempt"] == 1]
    pairs = zip(first["arrival_s"], first["task_id"], strict=True)
    simulated = {round(float(t), 9): int(i) for t, i in pairs}
    assert len(live) > 100 and set(live) == set(simulated)
    assert live == simulated
    assert min(live.values()) == 1
