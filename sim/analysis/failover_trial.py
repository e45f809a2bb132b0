"""One trial of the failure matrix: run a scenario with one failure, measure what it cost.

The figures, each read from the run's records (the same records every run
writes), not from inside the model, so a replayed trial measures the same:

* **detection** — from the injection to the first verdict of a detector:
  an agent, team lead or zone coordinator declared dead, a zone's work
  redistributed, or a chief's election timer firing (its first campaign).
  None when nothing is meant to notice (a follower's crash, a slow path).
* **unavailability** — the longest interval, within ten minutes of the
  injection, in which a task of the affected scope was waiting to be
  dispatched and none of the scope was dispatched: the time demand went
  unserved because nothing could dispatch it (see longest_unavailable).
* **leaderless** — the chiefs' own account of the time no leader could
  commit (the control plane's downtime), which does not depend on whether a
  task happened to arrive meanwhile; a WAL-stalled leader still counts as a
  leader, so there the task-based figure is the one that tells.
* retried / redistributed / failed-for-good tasks, the p99 wait of the ten
  minutes after against the ten before, tasks lost (the model's
  conservation check: must be 0), elections and the term change.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.failover_modes import MODES, TrialPlan
from sim.model.engine import Simulation
from sim.scenario.load import scenario_from_dict

#: The trial with nothing injected: the same arrivals and window, to pair each
#: mode's trial with (its figures are the floor a healthy fleet shows).
CONTROL = "control"

#: Event kinds that are a detector's verdict (see the module docstring).
VERDICTS = ("agent_detected", "team_lead_detected", "coordinator_detected", "zone_redistributed")


def trial_document(
    document: dict[str, Any], mode: str, zone: str, plan: TrialPlan, trial: int
) -> dict[str, Any]:
    """The scenario of one trial: the base, shortened, with this mode's failure and no other."""
    chaos = [] if mode == CONTROL else [{"at": plan.inject_at(trial), **MODES[mode].chaos(zone)}]
    return {
        **document,
        "warmup": plan.warmup_s,
        "duration": plan.duration_s,
        "chaos": chaos,
        "chaos_random": {**document.get("chaos_random", {}), "enabled": False},
    }


def run_trial(
    document: dict[str, Any], mode: str, zone: str, plan: TrialPlan, trial: int
) -> dict[str, Any]:
    """Run trial *trial* of *mode* (replication *trial*: common random numbers across modes).

    What executors ship to workers: plain data in, a plain row out; a failed
    run comes back as ``{"error": ...}`` so one bad trial never stops a matrix.
    """
    try:
        scenario = scenario_from_dict(trial_document(document, mode, zone, plan, trial))
        at = plan.inject_at(trial)
        sim = Simulation(scenario, trial)
        plane = sim.control_plane
        before: list[tuple[int, float]] = []
        # Read the chiefs' term and leaderless time just before the failure (read-only).
        sim.env.timeout(max(0.0, at - 1e-3)).callbacks.append(
            lambda _: before.append((max(n.term for n in plane.nodes.values()), plane.downtime_s))
        )
        result = sim.run()
        campaigns = [t for t, _, _ in plane.campaigns if t >= at]
        term_after = max(n.term for n in plane.nodes.values())
        term_before, downtime_before = before[0] if before else (term_after, plane.downtime_s)
        scopes = (
            [None, zone] if mode == CONTROL else [zone if MODES[mode].scope == "zone" else None]
        )
        row: dict[str, Any] = {}
        for scope in scopes:
            figures = measure(
                result.tasks,
                result.events,
                campaigns,
                at=at,
                window=plan.window_s,
                zone=scope,
                end=scenario.duration,
            )
            # The control is measured over both scopes; the zone's figures get a suffix.
            suffix = "_zone" if mode == CONTROL and scope is not None else ""
            row.update({f"{key}{suffix}": value for key, value in figures.items()})
        row.update(
            mode=mode,
            trial=trial,
            inject_at_s=at,
            lost=int(result.counts["lost"]),
            term_change=term_after - term_before,
            # The chiefs' own account: time with no leader able to commit, whatever
            # arrived meanwhile (a WAL-stalled leader still counts as one).
            leaderless_s=plane.downtime_s - downtime_before,
            events_sha256=result.events_sha256,
        )
        return row
    except Exception as exc:  # reported per trial; the matrix goes on
        return {"mode": mode, "trial": trial, "error": f"{type(exc).__name__}: {exc}"}


def measure(
    tasks: pd.DataFrame,
    events: pd.DataFrame,
    campaigns: list[float],
    *,
    at: float,
    window: float,
    zone: str | None,
    end: float,
) -> dict[str, Any]:
    """The figures of one trial (see the module docstring); *zone* None means the fleet."""
    scoped = tasks if zone is None else tasks[tasks["home_zone"] == zone]
    after = events[events["time_s"] >= at]
    verdicts = after[after["kind"].isin(VERDICTS)]["time_s"].tolist()
    first = min([*verdicts, *campaigns], default=math.nan)
    attempts = tasks[(tasks["end_s"] >= at) | tasks["end_s"].isna()]
    wait_before = _p99_wait(scoped, at - window, at, end)
    wait_after = _p99_wait(scoped, at, at + window, end)
    return {
        "detection_s": first - at,
        "unavailable_s": longest_unavailable(scoped, at, at + window),
        # The same figure over the ten minutes before: the floor a healthy fleet
        # shows (a task always waits its own route's latency, ~0.05-0.2 s).
        "unavailable_before_s": longest_unavailable(scoped, at - window, at),
        "retried": int((attempts["outcome"] == "retried").sum()),
        "redistributed": _redistributed(after),
        "failed": int((attempts["outcome"] == "failed").sum()),
        "p99_wait_before_s": wait_before,
        "p99_wait_after_s": wait_after,
        "p99_wait_ratio": wait_after / wait_before if wait_before > 0 else math.nan,
        "elections": int((after["kind"] == "election").sum()),
    }


def _redistributed(events: pd.DataFrame) -> int:
    """Tasks moved elsewhere by a verdict (agent detected or reconciled, zone evacuated)."""
    total = 0
    for kind, key in (
        ("agent_detected", "redistributed"),
        ("agent_reconciled", "redistributed"),
        ("zone_redistributed", "tasks"),
    ):
        for detail in events.loc[events["kind"] == kind, "detail"]:
            total += int(json.loads(detail).get(key, 0))
    return total


def _p99_wait(tasks: pd.DataFrame, start: float, stop: float, end: float) -> float:
    """p99 of arrival-to-service of first attempts arriving in [start, stop).

    A task never served by the run's end counts with the wait it had so far
    (a lower bound), so a starved scope cannot look better by not serving.
    """
    first = tasks[(tasks["attempt"] == 1) & (tasks["arrival_s"] >= start)]
    first = first[first["arrival_s"] < stop]
    if first.empty:
        return math.nan
    waited = first["start_s"].fillna(end) - first["arrival_s"]
    return float(np.percentile(waited.to_numpy(), 99))


def longest_unavailable(tasks: pd.DataFrame, start: float, stop: float) -> float:
    """Longest stretch of [start, stop) with a task waiting for dispatch and no dispatch.

    An attempt waits for dispatch from its task's arrival (a later attempt:
    from the moment the attempt before was given up, e.g. its agent declared
    dead) until it was routed: dispatched, less any time it then queued for a
    free agent — waiting for capacity is not unavailability. Never routed: it
    waits until *stop*. The union of those waits, cut at every dispatch of the
    scope, gives the stretches in which demand went unserved because nothing
    could route it; the longest is the figure.
    """
    ordered = tasks.sort_values(["task_id", "attempt"], kind="stable")
    given_up = ordered.groupby("task_id")["end_s"].shift(1).to_numpy(dtype=float)
    arrival = ordered["arrival_s"].to_numpy(dtype=float)
    begin = np.where(np.isnan(given_up), arrival, given_up)
    dispatched = ordered["dispatch_s"].to_numpy(dtype=float)
    routed = dispatched - ordered["queue_s"].fillna(0.0).to_numpy(dtype=float)
    lo = np.clip(begin, start, stop)
    hi = np.clip(np.where(np.isnan(routed), np.inf, routed), start, stop)
    keep = hi > lo
    lo, hi = lo[keep], hi[keep]
    if lo.size == 0:
        return 0.0
    cuts = np.sort(dispatched[(dispatched > start) & (dispatched < stop)])
    order = np.argsort(lo, kind="stable")
    longest = 0.0
    seg_lo, seg_hi = lo[order[0]], hi[order[0]]
    for i in order[1:]:
        if lo[i] <= seg_hi:
            seg_hi = max(seg_hi, hi[i])
            continue
        longest = max(longest, _longest_piece(seg_lo, seg_hi, cuts))
        seg_lo, seg_hi = lo[i], hi[i]
    return max(longest, _longest_piece(seg_lo, seg_hi, cuts))


def _longest_piece(lo: float, hi: float, cuts: np.ndarray) -> float:
    inside = cuts[np.searchsorted(cuts, lo, "right") : np.searchsorted(cuts, hi, "left")]
    edges = np.concatenate(([lo], inside, [hi]))
    return float(np.max(np.diff(edges)))
