"""The planner under tiers and the purchase section: the fleet that serves every tier, the
smaller one that sheds the lowest (and each tier's shed share), and a cost billed exactly as
a run's summary bills it."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from sim.analysis.plan_output import _purchase_and_tier_lines, plan_rows
from sim.analysis.planner import Bound, Planner, PlanOptions, fleet_scenario
from sim.analysis.replicas import Replicas
from sim.analysis.targets import SloTarget
from sim.scenario.load import scenario_from_dict

#: An M/M/c pool of 4 Erlangs; a fifth of the tasks are critical, half are batch, and the
#: batch tier is shed as soon as a task waits (queue_limit 4 x admit_below 0.25): serving
#: every tier takes the fleet that rarely queues, shedding batch a smaller one. Half the
#: specialists run on spot.
POOL: dict[str, Any] = {
    "name": "tiered_spot_plan",
    "seed": 5,
    "duration": "50m",
    "warmup": "5m",
    "topology": {
        "control_plane": {"chiefs": 1, "region": "us-east-1"},
        "zones": [{"name": "A", "region": "us-east-1", "team_leads": 1}],
        "specialists": 8,
        "categories": {"Generic": 1},
        "specialist": {"slots": 1, "queue_limit": 0, "speed_cv": 0},
    },
    "workload": {
        "arrivals": {"process": "poisson", "rate_per_min": 30},
        "service": {"dist": "exponential", "mean": 8},
        "dags": {"rate_per_min": 0},
    },
    "network": {"enabled": False},
    "policies": {"spill_across_zones": False},
    "scaling": {"min_agents": 1, "max_agents": 30, "default_agents": 11},
    "alerts": {},
    "tiers": {
        "levels": [
            {"name": "critical", "share": 0.2, "admit_below": 1.0},
            {"name": "standard", "share": 0.3, "admit_below": 0.8},
            {"name": "batch", "share": 0.5, "admit_below": 0.25},
        ],
        "queue_limit": 4,
    },
    "purchase": {"billing": {"unit": "hour"}, "spot": {"share": 0.5, "discount": 0.7}},
}
TARGET = SloTarget(p99_wait_s=15.0, p99_latency_s=None, error_rate=0.05)
OPTIONS = PlanOptions(duration_s=3000.0, warmup_s=300.0, max_replications=4)


def _variant(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(POOL)
    document.update(changes)
    return document


@pytest.fixture(scope="module")
def tiered_plan():  # type: ignore[no-untyped-def]
    with Replicas(2) as replicas:
        planner = Planner(scenario_from_dict(POOL), TARGET, OPTIONS, replicas)
        plan = planner.plan("tiered")
        assert plan.simulated_total is not None
        fleet = planner.fleet(plan.simulated_total)
        others = {}
        for name, purchase in {
            "on_demand": {"billing": {"unit": "hour"}},
            "continuous": {"spot": {"share": 0.5, "discount": 0.7}},
        }.items():
            scenario = scenario_from_dict(_variant(purchase=purchase))
            other = Planner(scenario, TARGET, OPTIONS, replicas)
            others[name] = replicas.summaries(fleet_scenario(other.base, fleet), range(2))
        return planner, plan, others


def test_the_plan_is_judged_on_every_tier_and_says_so(tiered_plan) -> None:  # type: ignore[no-untyped-def]
    """Serving every tier: the p99 over all tasks, and sheds of any tier counted as errors."""
    _, plan, _ = tiered_plan
    assert plan.scope.label == "every tier" and plan.scope.shed_free is None
    row = plan_rows([plan])[0]
    assert row["slo_scope"] == "every tier"
    said = " ".join(_purchase_and_tier_lines(plan, row))
    assert "tasks shed (any tier) count as errors" in said and "spot $" in said
    trial = plan.planned
    assert trial is not None and trial.meets
    summaries = trial.summary["per_replication"]
    # The promise is per tier: the worst tier's p99 is the one judged (here batch, served last).
    worst = [max(r["wait_s"]["p99"] for r in s["tiers"]["by_tier"]) for s in summaries]
    assert row["p99_wait_s"] == pytest.approx(sum(worst) / len(worst))
    assert worst >= [s["wait_s"]["p99"] for s in summaries]
    shed = Bound.of([plan.scope.shed_share(s) for s in summaries])
    assert shed.upper <= TARGET.error_rate
    assert json.loads(row["shed_share"]) == pytest.approx(plan.shed_share)


def test_a_smaller_fleet_sheds_batch_and_keeps_the_slo_for_the_tiers_above(tiered_plan) -> None:  # type: ignore[no-untyped-def]
    _, plan, _ = tiered_plan
    shed = plan.shed_plan
    assert shed is not None and shed.shed_plan is None
    assert (shed.scope.tiers, shed.scope.shed_free) == (("critical", "standard"), "batch")
    assert shed.simulated_total is not None and plan.simulated_total is not None
    assert shed.simulated_total < plan.simulated_total
    assert shed.max_specialists == plan.simulated_total  # searched at or below the first plan
    trial = shed.planned
    assert trial is not None and trial.meets
    summaries = trial.summary["per_replication"]
    # The judged wait is the worse of the two upper tiers' p99s, within the target.
    worst = [
        max(r["wait_s"]["p99"] for r in s["tiers"]["by_tier"] if r["tier"] != "batch")
        for s in summaries
    ]
    assert trial.p99_wait is not None and trial.p99_wait.mean == pytest.approx(
        sum(worst) / len(worst)
    )
    assert trial.p99_wait.upper <= TARGET.p99_wait_s
    # Batch pays for the smaller fleet; the tiers above stay within the error rate.
    shares = shed.shed_share
    assert list(shares) == ["critical", "standard", "batch"]
    assert shares["batch"] > shares["standard"] and shares["batch"] > 0.05
    assert Bound.of([shed.scope.shed_share(s) for s in summaries]).upper <= TARGET.error_rate
    row = plan_rows([plan])[0]
    assert row["shed_plan_specialists"] == shed.simulated_total
    assert json.loads(row["shed_plan_shed_share"]) == pytest.approx(shares)
    said = " ".join(_purchase_and_tier_lines(plan, row))
    assert f"shedding batch: {shed.simulated_total} specialists" in said
    assert "for critical, standard; shed per tier: critical" in said


def test_the_plan_reports_the_tasks_shed_at_the_planned_size(tiered_plan) -> None:  # type: ignore[no-untyped-def]
    _, plan, _ = tiered_plan
    for one in (plan, plan.shed_plan):
        trial = one.planned
        assert trial is not None
        shed = [s["tasks"]["shed"] for s in trial.summary["per_replication"]]
        row = plan_rows([one])[0]
        assert row["tasks_shed"] == pytest.approx(sum(shed) / len(shed))
    assert plan_rows([plan.shed_plan])[0]["tasks_shed"] > 0  # batch is shed once two tasks wait


def test_the_plan_cost_bills_spot_at_its_discount_and_by_the_hour(tiered_plan) -> None:  # type: ignore[no-untyped-def]
    """Same fleet, same arrivals: spot saves share x discount of the specialists' bill, and
    hourly billing of a 50-minute static run bills each agent a full hour (60/50)."""
    _, plan, others = tiered_plan
    row = plan_rows([plan])[0]
    assert row["cost_usd_per_day"] == pytest.approx(
        row["cost_usd_spot_per_day"] + row["cost_usd_on_demand_per_day"]
    )
    trial = plan.planned
    assert trial is not None
    spot = trial.summary["cost"]["usd_spot"]
    on_demand_fleet = sum(s["cost"]["usd_total"] for s in others["on_demand"]) / 2
    # without spot, the spot agents would have cost spot / (1 - discount)
    assert on_demand_fleet == pytest.approx(
        trial.summary["cost"]["usd_on_demand"] + spot / (1 - 0.7), rel=1e-9
    )
    assert spot > 0 and row["cost_usd_spot_per_day"] > 0
    continuous = sum(s["cost"]["usd_total"] for s in others["continuous"]) / 2
    assert trial.summary["cost"]["usd_total"] / continuous == pytest.approx(60 / 50, rel=1e-9)
    assert math.isfinite(row["cost_usd_per_1k_tasks"])
