"""The capacity planner against queueing theory, brute force, and the user's command line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import SCENARIOS

from sim.analysis.capacity import Allocator, per_zone, pool_loads
from sim.analysis.plan_inputs import growth_scenarios
from sim.analysis.planner import Bound, Planner, PlanOptions, fleet_scenario, prepared
from sim.analysis.queueing import min_servers_for
from sim.analysis.replicas import Replicas
from sim.analysis.targets import SloTarget, parse_slo
from sim.metrics.replications import t_quantile
from sim.runner import run
from sim.scenario.load import load_scenario, scenario_from_dict

#: M/M/c: Poisson arrivals at 1/s, exponential service of mean 8 s (8 Erlangs), one pool.
MMC = {
    "name": "mmc_plan",
    "seed": 11,
    "duration": "2h10m",
    "warmup": "10m",
    "topology": {
        "control_plane": {"chiefs": 1, "region": "us-east-1"},
        "zones": [{"name": "A", "region": "us-east-1", "team_leads": 1}],
        "specialists": 20,
        "categories": {"Generic": 1},
        "specialist": {"slots": 1, "queue_limit": 0, "speed_cv": 0},
    },
    "workload": {
        "arrivals": {"process": "poisson", "rate_per_min": 60},
        "service": {"dist": "exponential", "mean": 8},
        "dags": {"rate_per_min": 0},
    },
    "network": {"enabled": False},
    "policies": {"spill_across_zones": False},
    "scaling": {"min_agents": 1, "max_agents": 40, "default_agents": 23},
    "alerts": {},
}
TARGET = SloTarget(p99_wait_s=5.0, p99_latency_s=None, error_rate=0.05)
OPTIONS = PlanOptions(duration_s=2 * 3600 + 600, max_replications=8)


def orchestra() -> list[str]:
    script = Path(sys.executable).parent / "orchestra"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sim"]


@pytest.fixture(scope="session")  # (once, however the worker interleaves modules)
def mmc_plan():  # type: ignore[no-untyped-def]
    scenario = scenario_from_dict(MMC)
    with Replicas(2) as replicas:
        planner = Planner(scenario, TARGET, OPTIONS, replicas)
        return planner, planner.plan("mmc")


def test_analytic_guess_is_erlang_c_for_an_mmc_pool(mmc_plan) -> None:  # type: ignore[no-untyped-def]
    """With exponential service the Allen-Cunneen stretch is 1: the guess is Erlang C's answer."""
    planner, plan = mmc_plan
    expected = min_servers_for(1.0, 1 / 8, max_wait_quantile=(0.99, TARGET.p99_wait_s))
    assert plan.analytic_total == expected
    assert planner.allocator.stable_minimum == 9  # 8 Erlangs: 9 servers is the first stable c
    assert plan.tasks_per_min == pytest.approx(60.0)


def test_simulated_answer_is_close_to_erlang_c(mmc_plan) -> None:  # type: ignore[no-untyped-def]
    """The model is an M/M/c queue here; asking for 95 % confidence may add an agent or two."""
    _, plan = mmc_plan
    assert plan.feasible
    assert plan.simulated_total is not None and plan.analytic_total is not None
    assert plan.analytic_total - 1 <= plan.simulated_total <= plan.analytic_total + 2


def _upper_p99(summaries: list[dict]) -> float:  # type: ignore[type-arg]
    values = [s["wait_s"]["p99"] for s in summaries]
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean + t_quantile(n - 1, 0.95) * sd / math.sqrt(n)


def test_brute_force_planned_fleet_meets_and_one_fewer_does_not(mmc_plan) -> None:  # type: ignore[no-untyped-def]
    """Re-simulated through the ordinary runner: c meets the SLO at 95 %, c - 1 does not."""
    planner, plan = mmc_plan
    c = plan.simulated_total
    reps = 8
    planned = run(fleet_scenario(planner.base, planner.fleet(c)), reps)
    fewer = run(fleet_scenario(planner.base, planner.fleet(c - 1)), reps)
    assert planned.summary["agents"]["mean"] == c + 3
    assert _upper_p99(planned.summary["per_replication"]) <= TARGET.p99_wait_s
    assert _upper_p99(fewer.summary["per_replication"]) > TARGET.p99_wait_s
    assert plan.one_fewer is not None and not plan.one_fewer.meets
    assert plan.planned is not None and plan.planned.meets


def test_planner_is_deterministic(mmc_plan) -> None:  # type: ignore[no-untyped-def]
    _, plan = mmc_plan
    scenario = scenario_from_dict(MMC)
    with Replicas(1) as replicas:
        again = Planner(scenario, TARGET, OPTIONS, replicas).judge(plan.simulated_total)
    first = plan.planned
    assert first is not None
    assert again.replications == first.replications
    assert again.p99_wait == first.p99_wait


def test_bounds_are_one_sided_t_bounds() -> None:
    bound = Bound.of([4.0, 6.0])
    half = t_quantile(1, 0.95) * math.sqrt(2.0) / math.sqrt(2)
    assert bound.mean == 5.0
    assert bound.upper == pytest.approx(5.0 + half)
    assert bound.lower == pytest.approx(5.0 - half)
    assert Bound.of([3.0, 3.0, 3.0]).upper == 3.0
    assert Bound.of([1.0, math.nan]).upper == math.inf


def test_allocations_are_nested_and_split_over_zones() -> None:
    scenario = load_scenario(SCENARIOS / "baseline_200.yaml")
    loads = pool_loads(scenario)
    # Spill is on: one pool per category, carrying the spec's ~156 tasks/min of 40 s work.
    assert {p.zone for p in loads} == {None}
    assert sum(p.arrival_rate for p in loads) * 60 == pytest.approx(156, rel=0.03)
    assert sum(p.offered_agents for p in loads) == pytest.approx(104, rel=0.03)
    allocator = Allocator(loads, 10.0)
    smaller, larger = allocator.at(150), allocator.at(151)
    grown = [k for k in larger.agents if larger.agents[k] != smaller.agents[k]]
    assert len(grown) == 1 and larger.agents[grown[0]] == smaller.agents[grown[0]] + 1
    assert larger.tail < smaller.tail
    zones = per_zone(scenario, larger)
    assert sum(sum(c.values()) for c in zones.values()) == 151
    assert (
        max(sum(c.values()) for c in zones.values()) - min(sum(c.values()) for c in zones.values())
        <= 4
    )  # equal zone weights: within a few agents of each other


def test_fleet_scenario_builds_exactly_the_fleet() -> None:
    from sim.world.streams import Streams
    from sim.world.topology import build_world

    scenario = prepared(load_scenario(SCENARIOS / "baseline_200.yaml"), TARGET, PlanOptions())
    allocator = Allocator(pool_loads(scenario), 10.0)
    fleet = per_zone(scenario, allocator.at(140))
    built = fleet_scenario(scenario, fleet)
    world = build_world(built, Streams(0).get("world"))
    assert len(world.specialists) == 140
    assert world.count("B", "CodeGen") == fleet["B"]["CodeGen"]
    assert built.scaling.default_agents == 140 + 27
    assert not built.scaling.auto_scale.enabled
    assert built.slo.p99_wait == TARGET.p99_wait_s


def test_slo_parsing() -> None:
    base = SloTarget(10.0, None, 0.05)
    assert parse_slo("p99=2s,error_rate=1%", base) == SloTarget(2.0, None, 0.01)
    assert parse_slo("p99_latency=3m", base) == SloTarget(10.0, 180.0, 0.05)
    for bad in ("p95=3s", "p99", "p99=fast", "error_rate=150%", "p99=0s"):
        with pytest.raises(ValueError, match="expected"):
            parse_slo(bad, base)


def test_growth_phases_and_rates() -> None:
    phases = growth_scenarios(SCENARIOS / "baseline_200.yaml", [], "phases")
    assert [name for name, _ in phases] == [f"phase_3_{i}" for i in range(1, 6)]
    assert [s.scaling.default_agents for _, s in phases] == [50, 100, 150, 200, 250]
    rates = growth_scenarios(SCENARIOS / "baseline_200.yaml", [], "rate=70,280")
    assert [s.workload.arrivals.rate_per_min for _, s in rates] == [70, 280]
    assert [s.workload.dags.rate_per_min for _, s in rates] == [0.5, 2.0]
    with pytest.raises(ValueError, match="rate=a,b,c"):
        growth_scenarios(SCENARIOS / "baseline_200.yaml", [], "double")


def _write_mmc(tmp_path: Path) -> Path:
    path = tmp_path / "mmc_plan.yaml"
    path.write_text(json.dumps(MMC))
    return path


def test_cli_reports_no_fleet_within_max_agents(tmp_path: Path) -> None:
    """An SLO no fleet under the ceiling can meet: said plainly, exit status 3, files written."""
    out = tmp_path / "plan"
    proc = subprocess.run(
        [
            *orchestra(),
            "plan",
            str(_write_mmc(tmp_path)),
            "--slo",
            "p99=1ms",
            "--max-agents",
            "13",
            "--duration",
            "40m",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "no fleet within max_agents (13 agents, 10 specialists) meets the SLO" in proc.stdout
    rows = pd.read_parquet(out / "plan.parquet")
    assert not rows["feasible"].iloc[0]
    assert rows["analytic_specialists"].isna().iloc[0]
    document = json.loads((out / "plan.json").read_text())
    assert document[0]["trials"][0]["verdict"] == "misses"


def test_cli_plans_and_writes_files(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    proc = subprocess.run(
        [
            *orchestra(),
            "plan",
            str(_write_mmc(tmp_path)),
            "--slo",
            "p99=5s",
            "--growth",
            "rate=30",
            "--duration",
            "1h",
            "--max-replications",
            "4",
            "--detail",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_parquet(out / "plan.parquet")
    assert rows["phase"].tolist() == ["mmc_plan@30/min"]
    analytic = min_servers_for(0.5, 1 / 8, max_wait_quantile=(0.99, 5.0))
    assert rows["analytic_specialists"].iloc[0] == analytic
    assert rows["simulated_specialists"].iloc[0] >= 1
    assert rows["cost_usd_per_day"].iloc[0] > 0
    pools = pd.read_parquet(out / "plan_pools.parquet")
    assert pools["simulated"].sum() == rows["simulated_specialists"].iloc[0]
    assert "capacity plan" in proc.stdout
    assert "mmc_plan@30/min" in proc.stdout and "│ total" in proc.stdout  # the --detail table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slo", "p95=3s"], "--slo"),
        (["--growth", "rate=-1"], "--growth"),
        (["--duration", "5m", "--warmup", "10m"], "--warmup"),
        (["--max-replications", "1"], "--max-replications"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [*orchestra(), "plan", str(_write_mmc(tmp_path)), *args, "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "o").exists()


def test_cli_plans_thresholds_on_the_planned_fleet(tmp_path: Path) -> None:
    """--thresholds: the cheapest autoscaling setting that meets the SLO on the planned fleet.

    The load peaks for 40 minutes and then drops to a fifth: the static plan is
    sized for the peak, so an autoscaler that sheds agents afterwards (but not
    below a floor) meets the same SLO for less.
    """
    document = {
        **MMC,
        "name": "mmc_peak",
        "workload": {
            **MMC["workload"],
            "arrivals": {
                "process": "piecewise",
                "piecewise": [{"at": 0, "rate_per_min": 60}, {"at": "40m", "rate_per_min": 12}],
            },
        },
    }
    scenario_file = tmp_path / "mmc_peak.yaml"
    scenario_file.write_text(json.dumps(document))
    out = tmp_path / "plan"
    specs = "scaling.scale_down.threshold.idle_agents_percent=60..95,scaling.min_agents=6..16"
    proc = subprocess.run(
        [
            *orchestra(),
            "plan",
            str(scenario_file),
            "--slo",
            "p99=5s",
            "--duration",
            "2h",
            "--max-replications",
            "4",
            "--thresholds",
            specs,
            "--threshold-trials",
            "8",
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (found,) = json.loads((out / "thresholds.json").read_text())
    assert "thresholds on the planned fleet" in proc.stdout
    assert found["trials"] == 8
    settings = found["settings"]
    assert set(settings) == {
        "scaling.scale_down.threshold.idle_agents_percent",
        "scaling.min_agents",
    }
    assert 60 <= settings["scaling.scale_down.threshold.idle_agents_percent"] <= 95
    assert 6 <= settings["scaling.min_agents"] <= 16
    # Confirmed on the planner's terms, and cheaper than running the peak fleet all day.
    assert found["p99_upper_s"] <= 5.0
    assert found["cost_usd_per_day"] < found["static_cost_usd_per_day"]
    # The autoscaled fleet is a scenario file; the chosen setting on it reproduces the figures.
    chosen = load_scenario(
        Path(found["scenario"]), [f"{path}={value}" for path, value in settings.items()]
    )
    assert chosen.scaling.auto_scale.enabled
    again = run(chosen, 4).summary
    assert again["cost"]["usd_per_day"] == pytest.approx(found["cost_usd_per_day"])
    assert again["wait_s"]["p99"] == pytest.approx(found["p99_wait_s"])
