"""Thresholds for a planned fleet: how far the autoscaler may cut cost without losing the SLO.

``orchestra plan --thresholds PATH,...`` asks for them. The static plan
gives a fleet that meets the SLO with 95 % confidence; with the autoscaler
switched on over that fleet (and its reserve), the scaling thresholds decide
how much of it runs at any time. The tuner (Optuna, seeded) searches the
thresholds, cheapest first, and the cheapest setting that meets the SLO with
95 % confidence — the same test the planner applies to a fleet — is the
answer, beside the static fleet's cost. For a steady load there is often
none (the static fleet is already the cheapest); autoscaling earns its keep
when the load varies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.planner import Bound, PhasePlan, PlanOptions, autoscaled_scenario
from sim.analysis.replicas import Replicas
from sim.analysis.targets import SloTarget
from sim.analysis.tune import Param, parse_params, run_study
from sim.metrics.replications import combine_replications
from sim.metrics.store import atomic_write_text
from sim.scenario.load import load_scenario, scenario_yaml
from sim.scenario.schema import Scenario


@dataclass(frozen=True)
class ThresholdPlan:
    """The cheapest thresholds found for one phase (``settings`` empty: none kept the SLO)."""

    phase: str
    settings: dict[str, Any]
    p99_wait_s: float
    cost_usd_per_day: float
    static_cost_usd_per_day: float
    p99_upper_s: float  # the one-sided 95 % bound that confirmed the setting
    trials: int
    candidates: int  # settings whose mean p99 was within the target (the cheapest confirmed)
    scenario_file: Path

    @property
    def found(self) -> bool:
        return bool(self.settings)


def plan_thresholds(
    scenario: Scenario,
    target: SloTarget,
    options: PlanOptions,
    plan: PhasePlan,
    specs: Sequence[str],
    *,
    trials: int,
    seed: int,
    replicas: Replicas,
    out_dir: Path,
    replications: int = 2,
    confirm_replications: int = 4,
    candidates: int = 3,
) -> ThresholdPlan:
    """Tune *specs* (``PATH[=lo..hi]``) on the planned fleet, autoscaled; keep the cheapest.

    The search ranks settings by cost on a few replications; the cheapest
    whose mean p99 is within the target are then confirmed as the planner
    confirms a fleet — the upper one-sided 95 % bound of the p99 over
    *confirm_replications* replications at or below the target — and the
    first that passes is the answer.
    """
    assert plan.planned is not None, "thresholds are planned for a phase that has a fleet"
    path = out_dir / f"{plan.label}-autoscaled.yaml".replace("/", "_")
    params, frame = _search(
        scenario, target, options, plan, specs, path, trials, seed, replicas, replications
    )
    static_cost = float(plan.planned.summary["cost"]["usd_per_day"])
    hopeful = frame[frame["p99_wait_s"] <= target.p99_wait_s]
    hopeful = hopeful.sort_values(["cost_usd_per_day", "p99_wait_s", "trial"]).head(candidates)
    for _, row in hopeful.iterrows():
        settings = {p.path: _plain(row[p.path]) for p in params}
        confirmed = _confirm(path, settings, target, replicas, confirm_replications)
        if confirmed is not None:
            combined, upper = confirmed
            return ThresholdPlan(
                plan.label,
                settings,
                float(combined["wait_s"]["p99"]),
                float(combined["cost"]["usd_per_day"]),
                static_cost,
                upper,
                len(frame),
                len(hopeful),
                path,
            )
    return ThresholdPlan(
        plan.label, {}, math.nan, math.nan, static_cost, math.nan, len(frame), 0, path
    )


def _search(
    scenario: Scenario,
    target: SloTarget,
    options: PlanOptions,
    plan: PhasePlan,
    specs: Sequence[str],
    path: Path,
    trials: int,
    seed: int,
    replicas: Replicas,
    replications: int,
) -> tuple[list[Param], pd.DataFrame]:
    """Write the autoscaled fleet to *path* and run the tuner on it: its params and trials."""
    autoscaled = autoscaled_scenario(scenario, target, options, plan)
    atomic_write_text(path, scenario_yaml(autoscaled))
    params = parse_params(specs, autoscaled)
    result = run_study(
        path,
        [],
        params,
        trials=trials,
        seed=seed,
        replicas=replicas,
        replications=replications,
        max_breach_minutes=math.inf,  # judged below, on the planner's terms
    )
    return params, result.trials


def _confirm(
    path: Path,
    settings: dict[str, Any],
    target: SloTarget,
    replicas: Replicas,
    replications: int,
) -> tuple[dict[str, Any], float] | None:
    """The combined summary and p99 upper bound if *settings* meet the SLO, else ``None``.

    Confirmed as the planner confirms a fleet: the one-sided 95 % bounds of
    the p99 wait and of the error rate over *replications* within the target.
    """
    overrides = [f"{key}={value}" for key, value in settings.items()]
    candidate = load_scenario(path, overrides)
    summaries = replicas.summaries(candidate, range(replications))
    bound = Bound.of([s["wait_s"]["p99"] for s in summaries])
    errors = Bound.of([s["error_rate"] for s in summaries])
    if bound.upper <= target.p99_wait_s and errors.upper <= target.error_rate:
        return combine_replications(summaries), bound.upper
    return None


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, for JSON and for --set."""
    return value.item() if hasattr(value, "item") else value
