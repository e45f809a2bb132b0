"""Calibration: what a live fleet adds to the model, fitted from one live run.

Scenario: a live run (``orchestra live run``) and its replay in the simulator
see the same arrivals, the same drawn work and the same failures; what still
differs is what real processes and a real broker add. Six overheads are
fitted from the live directory's own records, each against the replay's:

* **agent start-up** — from ``agent_requested`` (or, when live's provisioner
  paced its starts, the start's turn) to ``agent_joined`` of the same agent
  (a scale-up's process start and first heartbeat), expressed as
  ``scaling.spawn_delay`` (their mean) and, when they differ, the observed
  start-ups, in order, as ``scaling.spawn_delay_dist`` (sequence); live's pace itself
  as ``scaling.spawn_gap``, so a burst's agents join in turn, as live's did;
* **dispatch overhead** — arrival to assignment of the tasks that found an
  agent free (first attempt, no queueing), live against simulated: the
  broker round trip, the coordinator's intake and its host's scheduling
  beyond the modelled path, expressed as ``coordination.dispatch_overhead``,
  a spread drawn per task (:mod:`sim.analysis.calibrate_dispatch`): most of
  live's dispatches are quick and a few are slow, and that tail is the tail
  of a quiet fleet's waits (one constant had the replay's wait p99 a quarter
  of live's); stalls of live's host, when every task arriving was
  dispatched late together, are replayed as ``pauses`` at their times;
* **hand-off** — from a slot's end to its next start when work was waiting,
  live's mean minus the replay's: the stream writes and the coordinator's
  intake between one task and the next, expressed as
  ``coordination.handoff_overhead`` (:mod:`sim.analysis.calibrate_handoff`),
  so a queue drains at live's pace;
* **a model call** — an LLM attempt's service beyond the replay's, per call
  (:mod:`sim.analysis.calibrate_calls`): the gate's round trips, expressed
  as every model's ``ttft``;
* **coordinator takeover** — from the chiefs' chaos that ended a primary (a
  ``coordinator_crash``, a ``partition``, a ``one_way_partition``) to the
  next ``coordinator_primary`` (live's standby takes the lease) and its first
  dispatch (it rebuilds its books from the streams first), expressed as the
  chiefs' ``topology.control_plane.election_timeout``: the spec's Raft group
  elects a leader in a fraction of a second, live's lease-based standby in
  seconds, and the replay is leaderless as long as live was;
* **service overhead** — observed service time over drawn work (``service_s``
  over ``work_s / speed``, ratio of sums), expressed by scaling the service
  distributions' means (``workload.service.mean`` and each
  ``service_by_category``): every draw of those distributions scales with
  its mean, so the calibrated replay serves each task the multiple of the
  very work live drew. An empirical distribution cannot be scaled: reported.

Beside the overheads, **when each failed agent was declared** (its heartbeats'
phase, the order live's processes started in) is pinned as
``health.phases`` (:mod:`sim.analysis.calibrate_detection`), so the replay
declares, and replaces, the same agents in the same order.

The overlay ``extends:`` the recorded scenario and sets only these; the
report puts each figure live, simulated before and simulated after side by
side — throughput (capacity) first, then utilisation, waits, latencies,
agents and the scaling decisions.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim.analysis.calibrate_calls import call_overhead
from sim.analysis.calibrate_dispatch import (
    dispatch_delay,
    dispatch_settings,
    free_delays,
    live_stalls,
    median_level,
    overhead_spread,
)
from sim.analysis.calibrate_handoff import handoff_gaps
from sim.analysis.calibrate_service import service_factor
from sim.analysis.calibrate_takeover import election_timeout, takeover_gaps
from sim.analysis.task_pairs import pair_tasks
from sim.metrics.store import atomic_write_text
from sim.world.start_turns import waits

#: Figures of the report, capacity first, with their path into summary.json.
FIGURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("throughput / min", ("throughput_per_min",)),
    ("tasks completed", ("tasks", "completed")),
    ("utilisation", ("utilization",)),
    ("wait p50 (s)", ("wait_s", "p50")),
    ("wait p99 (s)", ("wait_s", "p99")),
    ("latency p50 (s)", ("latency_s", "p50")),
    ("latency p99 (s)", ("latency_s", "p99")),
    ("agents mean", ("agents", "mean")),
    ("agents max", ("agents", "max")),
)

#: Service distributions whose every draw is proportional to the mean (same random numbers).
SCALABLE_DISTS = ("exponential", "lognormal", "gamma", "deterministic")

#: Utilisation bands of the report: the live fleet's utilisation over each metrics interval.
BANDS: tuple[tuple[str, float, float], ...] = (
    ("below 0.5", 0.0, 0.5),
    ("0.5 to 0.8", 0.5, 0.8),
    ("0.8 and above", 0.8, math.inf),
)

#: A fitted service factor this close to 1 is noise, not an overhead: left out of the overlay.
SERVICE_FACTOR_FLOOR = 0.005


class CalibrationError(Exception):
    """A directory that cannot be calibrated; one line for the user."""


@dataclass(frozen=True)
class Fit:
    """The overheads fitted from one live run (scenario seconds; NaN: nothing to fit from)."""

    spawn_delay_s: float
    spawn_samples: int
    dispatch_live_s: float
    dispatch_sim_s: float
    dispatch_samples: int
    service_factor: float
    service_samples: int
    #: Every start-up behind the spawn delay (seconds): the shape the replay draws from.
    spawn_gaps_s: tuple[float, ...] = ()
    #: Mean seconds from a coordinator crash to the next primary, and how many crashes.
    takeover_s: float = math.nan
    takeover_samples: int = 0
    #: Scenario seconds between two of live's agent starts (its provisioner's pace).
    start_gap_s: float = 0.0
    #: Mean seconds from a slot's end to its next start when work waited (calibrate_handoff).
    handoff_live_s: float = math.nan
    handoff_sim_s: float = math.nan
    handoff_samples: int = 0
    #: Live's attempt service beyond the replay's per model call, and the calls counted.
    call_overhead_s: float = math.nan
    call_samples: int = 0
    #: Quantiles of the dispatch overhead drawn per task (calibrate_dispatch.overhead_spread).
    dispatch_spread_s: tuple[float, ...] = ()
    #: Live's stalls, (start, end) scenario seconds: replayed as pauses (live_stalls).
    dispatch_pauses: tuple[tuple[float, float], ...] = ()

    @property
    def dispatch_overhead_s(self) -> float:
        """Live's arrival-to-start beyond the simulator's (never negative)."""
        return _beyond(self.dispatch_live_s, self.dispatch_sim_s)

    @property
    def handoff_overhead_s(self) -> float:
        """Live's mean hand-off beyond the simulator's (never negative)."""
        return _beyond(self.handoff_live_s, self.handoff_sim_s)


def _beyond(live_s: float, simulated_s: float) -> float:
    """What live took beyond the simulator, never negative (NaN when either is unknown)."""
    if math.isnan(live_s) or math.isnan(simulated_s):
        return math.nan
    return max(0.0, live_s - simulated_s)


def read_run(directory: Path) -> dict[str, Any]:
    """A run directory's summary and tables; CalibrationError naming what is missing."""
    if not directory.is_dir():
        raise CalibrationError(f"{directory}: not a directory (expected a live run's directory)")
    needed = (
        "summary.json",
        "scenario.yaml",
        "tasks.parquet",
        "events.parquet",
        "agents.parquet",
        "metrics.parquet",
    )
    for name in needed:
        if not (directory / name).exists():
            raise CalibrationError(
                f"{directory / name}: file not found (expected a live run's directory)"
            )
    try:
        summary = json.loads((directory / "summary.json").read_text())
        tables: dict[str, pd.DataFrame | None] = {
            name: pd.read_parquet(directory / f"{name}.parquet")
            for name in ("tasks", "events", "agents", "metrics")
        }
        # Written by runs with an llm section, and (scaling) with autoscaling on since 2026-12.
        for optional in ("llm", "scaling"):
            table = directory / f"{optional}.parquet"
            tables[optional] = pd.read_parquet(table) if table.exists() else None
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CalibrationError(f"{directory}: unreadable run directory ({first})") from None
    if not isinstance(summary, dict) or "live" not in summary:
        raise CalibrationError(
            f"{directory / 'summary.json'}: live: expected a live run's summary "
            "(this directory holds a simulation)"
        )
    return {"summary": summary, **tables}


def startup_gaps(events: pd.DataFrame, start_gap_s: float = 0.0) -> list[float]:
    """Seconds from each agent's turn to its join, in the order requested.

    Live's provisioner starts agents *start_gap_s* apart (``scaling.spawn_gap``,
    the summary's ``live.spawn_gap_s``): a burst's later agents wait their
    turns first. The replay takes the same turns (``sim.world.start_turns``,
    replayed here over the requests), so the start-up fitted is what follows
    the turn; left in, the waits would be paid twice. (Restarted hosts take
    turns too, but live logs no request for them: a burst of restarts
    overlapping a burst of requests is not seen here.)
    """
    requested = events[events["kind"] == "agent_requested"].sort_values("time_s", kind="stable")
    joined = events[events["kind"] == "agent_joined"].drop_duplicates("subject")
    joined_at = dict(
        zip(joined["subject"].astype(str), joined["time_s"].astype(float), strict=True)
    )
    asked = requested["time_s"].astype(float).tolist()
    turns = [at + wait for at, wait in zip(asked, waits(asked, start_gap_s), strict=True)]
    return [
        joined_at[str(s)] - turn
        for s, turn in zip(requested["subject"], turns, strict=True)
        if str(s) in joined_at and joined_at[str(s)] >= turn
    ]


def mean_and_count(values: list[float]) -> tuple[float, int]:
    """Their mean (NaN: none) and how many there are."""
    return (sum(values) / len(values), len(values)) if values else (math.nan, 0)


def spawn_delay(events: pd.DataFrame) -> tuple[float, int]:
    """Mean seconds from an agent's request to its join, and how many agents that is."""
    return mean_and_count(startup_gaps(events))


def fit(
    live: dict[str, Any],
    simulated: pd.DataFrame,
    simulated_events: pd.DataFrame | None = None,
    simulated_llm: pd.DataFrame | None = None,
) -> Fit:
    """The overheads of *live* (read_run) against the replay's tasks *simulated*, its events
    and its model calls (whose categories serve as calls: no service factor for them)."""
    by_calls = (
        frozenset(simulated_llm["category"].astype(str))
        if simulated_llm is not None
        else frozenset()
    )
    start_gap = start_gap_s(live["summary"])
    gaps = startup_gaps(live["events"], start_gap)
    spawn, spawn_n = mean_and_count(gaps)
    dispatch_live, dispatch_n = dispatch_delay(live["tasks"])
    dispatch_sim, _ = dispatch_delay(simulated)
    factor, factor_n = service_factor(live["tasks"], live["agents"], live["events"], by_calls)
    takeover, takeover_n = mean_and_count(takeover_gaps(live["events"], live["tasks"]))
    handoff_live, handoff_n = mean_and_count(handoff_gaps(live["tasks"], live["events"]).tolist())
    handoff_sim, _ = mean_and_count(handoff_gaps(simulated, simulated_events).tolist())
    per_call, calls = call_overhead(live["tasks"], live.get("llm"), simulated, simulated_llm)
    stalls = live_stalls(live["tasks"])
    spread = overhead_spread(
        free_delays(live["tasks"], stalls), free_delays(simulated), median_level(live["tasks"])
    )
    return Fit(
        spawn,
        spawn_n,
        dispatch_live,
        dispatch_sim,
        dispatch_n,
        factor,
        factor_n,
        tuple(gaps),
        takeover,
        takeover_n,
        start_gap,
        handoff_live,
        handoff_sim,
        handoff_n,
        per_call,
        calls,
        spread,
        stalls.pauses,
    )


def start_gap_s(summary: dict[str, Any]) -> float:
    """Live's pace of agent starts in scenario seconds (0 for a run that did not say)."""
    gap = summary.get("live", {}).get("spawn_gap_s", 0.0)
    return float(gap) if isinstance(gap, int | float) and gap > 0 else 0.0


def overlay(scenario_path: Path, out_dir: Path, scenario: Any, fitted: Fit) -> dict[str, Any]:
    """The calibrated overlay: ``extends:`` the recorded scenario, the fitted settings only.

    Returns the YAML document and, under ``notes``, what was fitted and not applied (why).
    """
    document: dict[str, Any] = {
        "extends": os.path.relpath(scenario_path.resolve(), out_dir.resolve()),
        "name": f"{scenario.name}-calibrated",
    }
    notes: list[str] = []
    if fitted.spawn_samples:
        document["scaling"] = spawn_settings(fitted)
    else:
        notes.append("spawn_delay: no scale-up in the live run; the scenario's value kept")
    if fitted.start_gap_s != scenario.scaling.spawn_gap:
        document.setdefault("scaling", {})["spawn_gap"] = round(fitted.start_gap_s, 6)
    drawn = dispatch_settings(
        scenario.coordination.dispatch_overhead,
        fitted.dispatch_overhead_s,
        fitted.dispatch_spread_s,
        fitted.dispatch_pauses,
        notes,
    )
    if drawn:
        document.setdefault("coordination", {})["dispatch_overhead"] = drawn
    handoff = fitted.handoff_overhead_s
    if math.isnan(handoff):
        notes.append("hand-off overhead: no slot took queued work; nothing fitted")
    elif handoff > 0:
        base = scenario.coordination.handoff_overhead
        document.setdefault("coordination", {})["handoff_overhead"] = round(base + handoff, 6)
    if scenario.llm is not None:
        _call_overhead(document, notes, scenario.llm, fitted)
    if fitted.takeover_samples:
        plane = document.setdefault("topology", {}).setdefault("control_plane", {})
        plane["election_timeout"] = election_timeout(fitted.takeover_s, scenario)
    factor = fitted.service_factor
    workload = scenario.workload
    services = {"service": workload.service, **dict(workload.service_by_category)}
    if math.isnan(factor):
        notes.append("service factor: no task served its drawn work (model calls only); none")
    elif abs(factor - 1.0) < SERVICE_FACTOR_FLOOR:
        notes.append(f"service factor {factor:.4f}: within {SERVICE_FACTOR_FLOOR:.1%} of 1, kept")
    elif any(spec.dist not in SCALABLE_DISTS for spec in services.values()):
        notes.append(f"service factor {factor:.4f}: not applied (an empirical distribution)")
    else:
        scaled: dict[str, Any] = {"service": {"mean": round(workload.service.mean * factor, 6)}}
        if workload.service_by_category:
            scaled["service_by_category"] = {
                category: {"mean": round(spec.mean * factor, 6)}
                for category, spec in workload.service_by_category.items()
            }
        document["workload"] = scaled
    return {"document": document, "notes": notes}


def _call_overhead(document: dict[str, Any], notes: list[str], llm: Any, fitted: Fit) -> None:
    """Every model's time to first token, raised by live's cost per call (paid once a call)."""
    if not fitted.call_samples:
        notes.append("call overhead: no attempt ran its calls unthrottled in both; nothing fitted")
    elif fitted.call_overhead_s > 0:
        document["llm"] = {
            "models": {
                name: {"ttft": round(model.ttft + fitted.call_overhead_s, 6)}
                for name, model in llm.models.items()
            }
        }


def spawn_settings(fitted: Fit) -> dict[str, Any]:
    """The fitted start-up: its mean, and the observed ones in order when they differ.

    Start-ups differ (a busy host, a slow first connection); one mean would
    have every start of the replay take exactly as long. In order
    (``dist: sequence``), not drawn at random: the replay requests its agents
    in live's order, and which start-ups come first decides when a burst's
    capacity arrives. (Drawn at random, the full fleet's ``burst`` replay had
    its first agent join 10 s before live's first, whose six joined within
    1.3 s of each other; in order, every join is within 1.5 s of live's.)
    The turns a burst's starts wait are ``scaling.spawn_gap``'s, set beside
    these.
    """
    settings: dict[str, Any] = {"spawn_delay": round(fitted.spawn_delay_s, 6)}
    gaps = [round(gap, 3) for gap in fitted.spawn_gaps_s]
    if len(set(gaps)) > 1:
        settings["spawn_delay_dist"] = {"dist": "sequence", "samples": gaps}
    return settings


def write_overlay(path: Path, document: dict[str, Any], notes: list[str]) -> None:
    header = "# Fitted by orchestra calibrate from a live run (see calibration.json).\n"
    header += "".join(f"# {note}\n" for note in notes)
    atomic_write_text(path, header + yaml.safe_dump(document, sort_keys=False))


def figure(summary: dict[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = summary
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def scaling_decisions(events: pd.DataFrame) -> list[dict[str, float]]:
    """(time, delta) of every scale event, in order."""
    scale = events[events["kind"] == "scale"]
    return [
        {"time_s": float(t), "delta": int(json.loads(str(d))["delta"])}
        for t, d in zip(scale["time_s"].astype(float), scale["detail"], strict=True)
    ]


def by_band(live_metrics: pd.DataFrame, runs: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Wait p50/p99 of the tasks completed in each utilisation band, per run.

    A band is a set of metrics intervals, classed by the live fleet's
    utilisation sampled at the interval's end; a task falls in the interval
    of its arrival, in every run alike (the runs share their arrivals).
    """
    rows = live_metrics[live_metrics["level"] == "global"].sort_values("time_s")
    ends = rows["time_s"].to_numpy(dtype=float)
    level = rows["utilization"].to_numpy(dtype=float)
    out = []
    for name, low, high in BANDS:
        entry: dict[str, Any] = {
            "band": name,
            "intervals": int(((level >= low) & (level < high)).sum()),
        }
        for run, tasks in runs.items():
            done = tasks[tasks["outcome"] == "completed"]
            index = ends.searchsorted(done["arrival_s"].to_numpy(dtype=float), side="left")
            inside = index < len(ends)
            util = level[index[inside]]
            waits = done["wait_s"].to_numpy(dtype=float)[inside][(util >= low) & (util < high)]
            entry[run] = {
                "tasks": len(waits),
                "wait_p50": float(pd.Series(waits).quantile(0.5)) if len(waits) else math.nan,
                "wait_p99": float(pd.Series(waits).quantile(0.99)) if len(waits) else math.nan,
            }
        out.append(entry)
    return out


def report(
    live: dict[str, Any],
    before: tuple[dict[str, Any], pd.DataFrame, pd.DataFrame],
    after: tuple[dict[str, Any], pd.DataFrame, pd.DataFrame],
    fitted: Fit,
    notes: list[str],
) -> dict[str, Any]:
    """calibration.json: the fit, each figure live / simulated before / after, by band.

    *before* and *after* are each (summary, events, tasks) of a simulated run.
    """
    rows = []
    for label, keys in FIGURES:
        values = [figure(s, keys) for s in (live["summary"], before[0], after[0])]
        rows.append(
            {
                "figure": label,
                "live": values[0],
                "before": values[1],
                "after": values[2],
                "ratio_before": _ratio(values[1], values[0]),
                "ratio_after": _ratio(values[2], values[0]),
            }
        )
    return {
        "fit": {
            **{
                k: v
                for k, v in asdict(fitted).items()
                if k not in ("spawn_gaps_s", "dispatch_spread_s", "dispatch_pauses")
            },
            "dispatch_stalls": len(fitted.dispatch_pauses),
            "dispatch_overhead_s": fitted.dispatch_overhead_s,
            "handoff_overhead_s": fitted.handoff_overhead_s,
        },
        "notes": notes,
        "figures": rows,
        "scaling": {
            "live": scaling_decisions(live["events"]),
            "before": scaling_decisions(before[1]),
            "after": scaling_decisions(after[1]),
        },
        "by_utilisation": by_band(
            live["metrics"], {"live": live["tasks"], "before": before[2], "after": after[2]}
        ),
        "tasks": {
            "before": asdict(pair_tasks(live["tasks"], before[2])),
            "after": asdict(pair_tasks(live["tasks"], after[2])),
        },
        "drained": {
            k: v for k, v in live["summary"].get("drained", {}).items() if k != "complete_s"
        },
    }


def _ratio(value: Any, reference: Any) -> float | None:
    """*value* over *reference* (simulated over live), None where it means nothing."""
    if not isinstance(value, int | float) or not isinstance(reference, int | float):
        return None
    if not reference or math.isnan(float(value)) or math.isnan(float(reference)):
        return None
    return float(value) / float(reference)
