"""The failure matrix: N trials per failure mode, and the worst case of each.

Mature distributed databases answer "when X fails, how long are we
unavailable?" with a table per failure mode, built from many crashes whose
instants vary against the heartbeat and election timers, reporting the worst
case. This module runs those trials (on the sweep executors: local processes
or Dask) and folds them into the matrix: per mode, detection and
unavailability (p50 and max), the work it cost, the p99 wait after against
before, tasks lost, elections and term changes — beside the bounds the
spec's own numbers put on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.executors import Executor, make_executor, unordered
from sim.analysis.failover_modes import Mode, TrialPlan
from sim.analysis.failover_trial import CONTROL, run_trial
from sim.scenario.schema import Scenario

#: Matrix figures a pin judges (a mode's worst case must not get worse).
PINNED = ("detection_max_s", "unavailable_max_s", "leaderless_max_s")

#: Modes whose detector is the spec's health check (agents, team leads, zone
#: coordinators) and those whose detector is a follower's Raft election timer.
HEALTH_MODES = ("agent_crash", "team_lead_loss", "zone_coordinator_crash", "region_outage")
RAFT_MODES = ("chief_leader_crash", "chief_partition", "leader_oneway_outbound")


@dataclass(frozen=True)
class MatrixRun:
    """What a matrix run produced: one row per trial, and the matrix itself."""

    trials: pd.DataFrame
    matrix: dict[str, Any]


def run_matrix(
    scenario: Scenario,
    modes: list[Mode],
    trials: int,
    *,
    executor: Executor | Any | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MatrixRun:
    """Run *trials* trials of every mode on common random numbers; fold them into the matrix."""
    if trials < 1:
        raise ValueError(f"--trials: expected at least 1, got {trials}")
    plan = TrialPlan.of(scenario)
    zone = scenario.topology.zones[0].name
    document = scenario.model_dump(mode="json", by_alias=True)
    names = [CONTROL] + [mode.name for mode in modes]
    jobs = [(document, name, zone, plan, k) for name in names for k in range(trials)]
    runner, owned = make_executor(executor, workers=workers)
    rows: dict[int, dict[str, Any]] = {}
    try:
        for index, outcome in unordered(runner, run_trial, jobs):
            if isinstance(outcome, BaseException):
                mode_name, trial = jobs[index][1], jobs[index][4]
                outcome = {"mode": mode_name, "trial": trial, "error": str(outcome)}
            rows[index] = outcome
            if progress is not None:
                progress(len(rows), len(jobs))
    finally:
        if owned:
            runner.close()
    frame = pd.DataFrame([rows[i] for i in range(len(jobs))])
    if "error" not in frame:
        frame["error"] = None
    return MatrixRun(frame, summarize(frame, modes, scenario, plan, trials, zone))


def bounds(scenario: Scenario) -> dict[str, float]:
    """What the spec's numbers bound: a health verdict and a Raft election's detection.

    A health verdict comes *threshold* checks after the failure, each failing
    *timeout* after it is sent: at most threshold x interval + timeout (the
    spec's "3 missed checks x 10 s", plus the 2 s a check waits). A leader's
    failure is noticed when a follower's randomised election timeout runs out:
    at most the timeout's upper end after the failure (its timer started at the
    last heartbeat, before the failure). A leader that still heartbeats but
    hears nobody (inbound cut) must first step down by check-quorum — at the
    second quorum check at the latest (the first may count acks from before
    the cut), one election-timeout low end apart — before the followers'
    timers can run out: 2 x low + high. A WAL stall has no bound of its own:
    the heartbeats stop at the first write after the stall began, which waits
    on the workload.
    """
    health = scenario.health
    low, high = scenario.topology.control_plane.election_timeout
    return {
        "health_detection_s": health.threshold * health.interval + health.timeout,
        "raft_detection_s": high,
        "check_quorum_detection_s": 2 * low + high,
    }


def _quantile(values: pd.Series, q: float) -> float:
    finite = values.dropna().to_numpy(dtype=float)
    return float(np.quantile(finite, q)) if finite.size else math.nan


def summarize(
    frame: pd.DataFrame,
    modes: list[Mode],
    scenario: Scenario,
    plan: TrialPlan,
    trials: int,
    zone: str,
) -> dict[str, Any]:
    """The matrix document (``failover.json``): per mode, its figures and its worst trial."""
    limits = bounds(scenario)
    control = frame[(frame["mode"] == CONTROL) & frame["error"].isna()].set_index("trial")
    matrix: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "trials": trials,
        "zone": zone,
        "plan": {
            "warmup_s": plan.warmup_s,
            "window_s": plan.window_s,
            "inject_span_s": plan.span_s,
        },
        "bounds": limits,
        "control": _control_figures(control),
        "modes": {},
    }
    for mode in modes:
        rows = frame[frame["mode"] == mode.name]
        ok = rows[rows["error"].isna()] if "error" in rows else rows
        errors = rows.drop(ok.index)
        entry: dict[str, Any] = {
            "what": mode.what,
            "scope": "fleet" if mode.scope == "fleet" else f"zone {zone}",
            "trials": len(ok),
            "errors": [str(e) for e in errors.get("error", pd.Series(dtype=str)).tolist()],
        }
        if not ok.empty:
            entry.update(_figures(ok))
            entry.update(_paired(ok, control, zone_scope=mode.scope == "zone"))
            worst = ok.iloc[int(np.argmax(ok["unavailable_s"].to_numpy(dtype=float)))]
            entry["worst_trial"] = {
                "trial": int(worst["trial"]),
                "inject_at_s": float(worst["inject_at_s"]),
                "unavailable_s": float(worst["unavailable_s"]),
            }
        if mode.name in HEALTH_MODES:
            entry["detection_bound_s"] = limits["health_detection_s"]
        elif mode.name in RAFT_MODES:
            entry["detection_bound_s"] = limits["raft_detection_s"]
        elif mode.name == "leader_oneway_inbound":
            entry["detection_bound_s"] = limits["check_quorum_detection_s"]
        matrix["modes"][mode.name] = entry
    return matrix


def _control_figures(control: pd.DataFrame) -> dict[str, Any]:
    """The trials with nothing injected: the floor of each figure, fleet and zone."""
    if control.empty:
        return {"trials": 0}
    return {
        "trials": len(control),
        "unavailable_max_s": float(control["unavailable_s"].max()),
        "unavailable_zone_max_s": float(control["unavailable_s_zone"].max()),
        "p99_wait_after_p50_s": _quantile(control["p99_wait_after_s"], 0.5),
        "p99_wait_after_zone_p50_s": _quantile(control["p99_wait_after_s_zone"], 0.5),
    }


def _paired(ok: pd.DataFrame, control: pd.DataFrame, *, zone_scope: bool) -> dict[str, Any]:
    """Each trial against the control trial with the same arrivals (common random numbers).

    The p99 wait after the failure over the control's p99 over the same ten
    minutes isolates the failure's effect from the workload's own swings
    (which the after/before ratio includes: a busier ten minutes raises it
    with no failure at all).
    """
    if control.empty:
        return {}
    column = "p99_wait_after_s_zone" if zone_scope else "p99_wait_after_s"
    base = control[column].rename("base")
    paired = ok.set_index("trial")[["p99_wait_after_s"]].join(base, how="inner")
    ratio = paired["p99_wait_after_s"] / paired["base"].where(paired["base"] > 0)
    return {
        "p99_vs_control_p50": _quantile(ratio, 0.5),
        "p99_vs_control_max": float(ratio.max()),
    }


def _figures(ok: pd.DataFrame) -> dict[str, Any]:
    detected = ok["detection_s"].dropna()
    return {
        "detected_share": float(len(detected) / len(ok)),
        "detection_p50_s": _quantile(ok["detection_s"], 0.5),
        "detection_max_s": float(detected.max()) if len(detected) else math.nan,
        "unavailable_p50_s": _quantile(ok["unavailable_s"], 0.5),
        "unavailable_max_s": float(ok["unavailable_s"].max()),
        "unavailable_before_max_s": float(ok["unavailable_before_s"].max()),
        "leaderless_max_s": float(ok["leaderless_s"].max()),
        "retried_mean": float(ok["retried"].mean()),
        "redistributed_mean": float(ok["redistributed"].mean()),
        "failed_total": int(ok["failed"].sum()),
        "p99_wait_ratio_p50": _quantile(ok["p99_wait_ratio"], 0.5),
        "p99_wait_ratio_max": float(ok["p99_wait_ratio"].max()),
        "lost_total": int(ok["lost"].sum()),
        "elections_mean": float(ok["elections"].mean()),
        "elections_max": int(ok["elections"].max()),
        "term_change_max": int(ok["term_change"].max()),
    }
