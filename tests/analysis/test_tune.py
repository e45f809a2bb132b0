"""Threshold tuning: schema-derived ranges, a seeded and resumable study, the Pareto front."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import SCENARIOS

from sim.analysis.replicas import Replicas
from sim.analysis.tune import Param, TuneError, pareto_front, parse_param, run_study
from sim.scenario.load import load_scenario
from sim.scenario.schema import Scaling

#: A small M/M/c fleet that starts short of agents, so the autoscaler's thresholds matter.
TINY = {
    "name": "tiny_tune",
    "seed": 5,
    "duration": "50m",
    "warmup": "5m",
    "topology": {
        "control_plane": {"chiefs": 1, "region": "us-east-1"},
        "zones": [{"name": "A", "region": "us-east-1", "team_leads": 1}],
        "specialists": 8,
        "categories": {"Generic": 1},
        "specialist": {"slots": 1, "queue_limit": 0},
    },
    "workload": {
        "arrivals": {"process": "poisson", "rate_per_min": 60},
        "service": {"dist": "exponential", "mean": 8},
        "dags": {"rate_per_min": 0},
    },
    "network": {"enabled": False},
    "scaling": {
        "min_agents": 4,
        "max_agents": 40,
        "default_agents": 11,
        "evaluation_interval": 30,
        "spawn_delay": 30,
        "scale_up": {"increment": 2, "cooldown_seconds": 60},
        "scale_down": {"decrement": 1, "cooldown_seconds": 120},
    },
    "slo": {"p99_wait": 20, "window": 300},
    "alerts": {},
}
PARAMS = [
    Param("scaling.scale_up.threshold.queue_depth", "int", 1, 30),
    Param("scaling.scale_down.threshold.idle_agents_percent", "float", 5.0, 60.0),
]


def orchestra() -> list[str]:
    script = Path(sys.executable).parent / "orchestra"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sim"]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_tune.yaml"
    path.write_text(json.dumps(TINY))
    return path


def test_default_ranges_come_from_the_schema() -> None:
    scenario = load_scenario(SCENARIOS / "baseline_200.yaml")
    idle = parse_param("scaling.scale_down.threshold.idle_agents_percent", scenario)
    assert (idle.kind, idle.low, idle.high) == ("float", 0.0, 100.0)  # declared 0..100
    depth = parse_param("scaling.scale_up.threshold.queue_depth", scenario)
    assert (depth.kind, depth.low, depth.high) == ("int", 50, 200)  # half to twice 100
    frac = parse_param("topology.specialist.parallel_fraction", scenario)
    assert (frac.low, frac.high) == (0.0, 1.0)
    given = parse_param("scaling.auto_scale.scale_up.increment=2..12", scenario)
    assert (given.kind, given.low, given.high) == ("int", 2, 12)
    policy = parse_param("scaling.policy", scenario)
    assert policy.kind == "categorical" and policy.choices == ("step", "hpa", "keda")
    assert parse_param("scaling.policy=step|keda", scenario).choices == ("step", "keda")
    spawn = parse_param("scaling.spawn_delay", scenario)
    assert (spawn.kind, spawn.low, spawn.high) == ("float", 30.0, 120.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("scaling.scale_up.threshold.depth", "unknown field 'depth'"),
        ("scaling.scale_down.threshold.idle_agents_percent=10..150", "outside the field"),
        ("scaling.scale_up.increment=9..3", "lo <= hi"),
        ("topology.zones", "numeric"),
        ("name", "numeric"),
    ],
)
def test_bad_parameters_name_themselves(spec: str, message: str) -> None:
    scenario = load_scenario(SCENARIOS / "baseline_200.yaml")
    with pytest.raises(TuneError, match=message):
        parse_param(spec, scenario)


def test_pareto_front_keeps_only_feasible_non_dominated_trials() -> None:
    frame = pd.DataFrame(
        {
            "trial": [0, 1, 2, 3, 4],
            "p99_wait_s": [5.0, 3.0, 4.0, 1.0, 3.0],
            "cost_usd_per_day": [10.0, 12.0, 13.0, 9.0, 11.0],
            "feasible": [True, True, True, False, True],
        }
    )
    front = pareto_front(frame)
    # trial 3 is best on both but infeasible; 1 and 2 are dominated by 4.
    assert front["trial"].tolist() == [0, 4]


def test_same_seed_same_front(tiny: Path) -> None:
    with Replicas(1) as replicas:
        first = run_study(tiny, [], PARAMS, trials=4, seed=7, replicas=replicas, population=2)
        second = run_study(tiny, [], PARAMS, trials=4, seed=7, replicas=replicas, population=2)
        other = run_study(tiny, [], PARAMS, trials=4, seed=8, replicas=replicas, population=2)
    pd.testing.assert_frame_equal(first.trials, second.trials)
    pd.testing.assert_frame_equal(first.front, second.front)
    assert not first.trials[PARAMS[0].path].equals(other.trials[PARAMS[0].path])
    assert len(first.trials) == 4 and not first.front.empty
    # The thresholds reach the model: the trials do not all cost the same.
    assert first.trials["cost_usd_per_day"].nunique() > 1


def test_cli_resumes_a_study_and_writes_the_front(tiny: Path, tmp_path: Path) -> None:
    study, out = tmp_path / "study.db", tmp_path / "tune"
    command = [
        *orchestra(),
        "tune",
        str(tiny),
        "--params",
        "scaling.scale_up.threshold.queue_depth=1..30",
        "--params",
        "scaling.scale_down.threshold.idle_agents_percent=5..60",
        "--seed",
        "3",
        "--population",
        "2",
        "--study",
        str(study),
        "--out",
        str(out),
        "--max-breach-minutes",
        "45",
    ]
    for trials in ("2", "1"):
        proc = subprocess.run(
            [*command, "--trials", trials], capture_output=True, text=True, timeout=300, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""  # no warnings leak to the user
    trials = pd.read_parquet(out / "trials.parquet")
    assert trials["trial"].tolist() == [0, 1, 2]  # the rerun added a trial to the stored two
    front = pd.read_csv(out / "pareto.csv")
    assert set(front["trial"]) <= set(trials.loc[trials["feasible"], "trial"])
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Pareto front" in proc.stdout


def test_cli_bad_params_is_one_line(tiny: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [*orchestra(), "tune", str(tiny), "--params", "scaling.nope", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    # The fields named are the schema's own, in its order (a new setting joins the list).
    assert proc.stderr.strip().splitlines() == [
        "error: --params: scaling.nope: unknown field 'nope'; expected one of "
        + ", ".join(Scaling.model_fields)
    ]
