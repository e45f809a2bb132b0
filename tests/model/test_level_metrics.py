"""metrics.parquet rows of the opt-in models: specialists on spot and on demand, sheds per tier.

The fleet is ``mmc_validation.yaml`` cut to 20 agents (capacity 20 tasks/min)
offered 30 tasks/min, with the default tiers over a 40-task queue and half
the specialists on spot (one pool: 10 of 20), reclaimed at random.
"""

from __future__ import annotations

import pandas as pd
import pytest
from support import SCENARIOS

from sim.model.engine import run_scenario
from sim.runner import summary_of
from sim.scenario.load import load_scenario

BASE = ["topology.specialists=20", "workload.arrivals.rate_per_min=30", "duration=40m"]
OPT_IN = ["tiers={queue_limit: 40}", "purchase.spot={share: 0.5, reclaim_rate: 1.0}"]


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[pd.DataFrame, dict]]:  # type: ignore[type-arg]
    out = {}
    for name, overrides in {"plain": BASE, "opt_in": BASE + OPT_IN}.items():
        result = run_scenario(load_scenario(SCENARIOS / "mmc_validation.yaml", overrides))
        out[name] = (result.metrics, summary_of(result))
    return out


def test_shed_per_tier_per_interval_adds_up_to_the_runs_shed(runs) -> None:  # type: ignore[no-untyped-def]
    metrics, summary = runs["opt_in"]
    tiers = metrics.loc[metrics["level"] == "tier"]
    samples = metrics.loc[metrics["level"] == "global", "time_s"]
    assert list(dict.fromkeys(tiers["id"])) == ["critical", "standard", "batch"]
    assert len(tiers) == 3 * len(samples)  # every tier at every sample, shedding or not
    shed = tiers.groupby("id")["tasks_shed"].sum()
    assert shed.sum() == summary["tasks"]["shed"] > 0
    assert shed["batch"] > shed["standard"] >= shed["critical"]  # the lowest tier goes first


def test_spot_and_on_demand_specialists_per_interval(runs) -> None:  # type: ignore[no-untyped-def]
    metrics, summary = runs["opt_in"]
    purchase = metrics.loc[metrics["level"] == "purchase"]
    wide = purchase.pivot_table(index="time_s", columns="id", values="total_agents")
    assert set(wide.columns) == {"spot", "on_demand"}
    first = wide.iloc[0]
    assert (first["spot"], first["on_demand"]) == (10, 10)  # half of one 20-agent pool
    assert summary["cost"]["reclaims"] > 0
    # a reclaimed agent leaves and its replacement refills the spot share: never above it
    assert wide["spot"].max() <= 10 and wide["spot"].min() < 10
    assert (wide["on_demand"] >= 10).all()


def test_without_the_opt_in_models_there_are_no_such_rows(runs) -> None:  # type: ignore[no-untyped-def]
    metrics, _ = runs["plain"]
    assert not metrics["level"].isin(["tier", "purchase"]).any()
    assert "tasks_shed" not in metrics.columns
