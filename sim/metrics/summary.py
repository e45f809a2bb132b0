"""The run summary: the figures a user reads first, computed from the shared records.

Both shells produce the same tables, so the summary is computed here from
the tables alone — never from a shell's internal counters — and a live run
and a simulation are summarised by the very same code. Warm-up is cut from
every statistic: only tasks that arrived after it count, and utilisation,
throughput and cost are measured over the window after it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sim.metrics.cost import cost_split
from sim.metrics.llm_summary import llm_figures
from sim.metrics.slo_causes import slo_causes
from sim.metrics.tier_summary import tier_figures
from sim.scenario.schema import Scenario


def summarize(
    scenario: Scenario,
    tasks: pd.DataFrame,
    metrics: pd.DataFrame,
    events: pd.DataFrame,
    agents: pd.DataFrame,
    jobs: pd.DataFrame,
    counts: Mapping[str, int],
    events_sha256: str,
    seed: int | None = None,
    drained: pd.DataFrame | None = None,
    llm: pd.DataFrame | None = None,
    tiers: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The documented ``summary.json`` for one replication.

    The window is [warm-up, duration] for both shells: a task counts when its
    service ended by the duration, utilisation is busy slot time clipped to
    the window over the specialists' slot time present in it, and cost is the
    agents' presence in the run. *llm* (the per-attempt model-call table,
    when the scenario has an llm section) adds the ``llm`` block, *tiers* (the
    per-task admission table) the ``tiers`` and ``tenants`` blocks. *drained*
    (a live run's work that ended after the duration, sim.live.records) is
    reported apart and counts nowhere else.
    """
    warmup, end = scenario.warmup, scenario.duration
    completed = (tasks["outcome"] == "completed") & (tasks["end_s"] <= end)
    done = tasks[completed & tasks["warm"]]
    warm_tasks = tasks[tasks["warm"]]
    error_rate = int((warm_tasks["outcome"] == "failed").sum()) / max(len(warm_tasks), 1)
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "seed": scenario.seed if seed is None else seed,
        "sim_seconds": float(end),
        "warmup_s": float(warmup),
        "tasks": task_counts(counts),
        **service_figures(tasks[completed & (tasks["complete_s"] >= warmup)], done, warmup, end),
        "utilization": utilization(tasks, agents, warmup, end),
        "agents": agent_figures(metrics, agents),
        "jobs": job_figures(tasks, jobs, warmup),
        "failures": failure_figures(events),
        "elections": election_figures(events),
        "alerts": alert_counts(events),
        "cost": cost_figures(scenario, agents, events, counts),
        "error_rate": error_rate,
        "errors": error_figures(tasks, counts),
        "dispatch_s": dispatch_figures(done),
        "coordination": coordination_figures(metrics, warmup),
        "slo": slo_figures(scenario, done, tasks, metrics, events, agents, counts, error_rate),
        "drained": drained_figures(drained),
        "events_sha256": events_sha256,
    }
    if llm is not None:
        summary["llm"] = llm_figures(scenario, llm, tasks)
        summary["cost"]["llm_usd_total"] = summary["llm"]["usd"]  # beside compute cost
    if tiers is not None:
        summary.update(tier_figures(scenario, tiers, tasks))
    return summary


def task_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """The shell's conservation counters: submitted = completed + failed + shed + in_flight."""
    return {
        "submitted": int(counts["submitted"]),
        "completed": int(counts["completed"]),
        "failed": int(counts["failed"]),
        "shed": int(counts.get("shed", 0)),
        "in_flight": int(counts["in_flight"]),
        "lost": int(counts["lost"]),
        "retried": int(counts["retried"]),
    }


def service_figures(
    finished: pd.DataFrame, done: pd.DataFrame, warmup: float, end: float
) -> dict[str, Any]:
    """Latency, wait, the share that queued, and throughput (summary keys in their order).

    *done* is the warm tasks completed by the duration (the percentiles);
    *finished* the tasks completed inside the window (the throughput).
    """
    latency = done["latency_s"].to_numpy(dtype=float)
    wait = done["wait_s"].to_numpy(dtype=float)
    queued = done["queue_s"].to_numpy(dtype=float)
    return {
        "latency_s": {
            "mean": _mean(latency),
            "p50": _pct(latency, 50),
            "p95": _pct(latency, 95),
            "p99": _pct(latency, 99),
            "max": float(latency.max()) if len(latency) else math.nan,
        },
        "wait_s": {"mean": _mean(wait), "p50": _pct(wait, 50), "p99": _pct(wait, 99)},
        "p_wait": float(np.mean(queued > 0)) if len(queued) else math.nan,
        "throughput_per_min": len(finished) * 60.0 / max(end - warmup, 1e-9),
    }


def utilization(tasks: pd.DataFrame, agents: pd.DataFrame, warmup: float, end: float) -> float:
    """Busy slot time clipped to the window over the specialists' slot time present in it.

    Measured from the records, not a shell's counters, so both shells mean the
    same thing: a task still in service at the end is busy until the end.
    """
    specialists = agents[agents["role"] == "specialist"]
    present = specialists["left_s"].clip(lower=warmup, upper=end) - specialists["joined_s"].clip(
        lower=warmup, upper=end
    )
    slot_seconds = float((specialists["slots"] * present).sum())
    starts = tasks["start_s"].to_numpy(dtype=float)
    ends = tasks["end_s"].to_numpy(dtype=float)
    ends = np.where(np.isnan(ends), end, ends)
    valid = starts >= 0
    busy = np.clip(ends[valid], warmup, end) - np.clip(starts[valid], warmup, end)
    return float(busy.sum() / slot_seconds) if slot_seconds > 0 else 0.0


def agent_figures(metrics: pd.DataFrame, agents: pd.DataFrame) -> dict[str, Any]:
    """The fleet's size over the run: sampled specialists plus the fixed control agents.

    A run without samples reports its provisioned fleet (standbys excluded).
    """
    agent_counts = metrics.loc[metrics["level"] == "global", "total_agents"].to_numpy(dtype=float)
    agent_total = int((agents["role"] != "zone_standby").sum())
    control = agent_total - int((agents["role"] == "specialist").sum())
    series = agent_counts + control if len(agent_counts) else np.asarray([float(agent_total)])
    return {
        "min": int(series.min()),
        "max": int(series.max()),
        "mean": float(series.mean()),
        "final": int(series[-1]),
    }


def job_figures(tasks: pd.DataFrame, jobs: pd.DataFrame, warmup: float) -> dict[str, Any]:
    """DAG jobs: how many were submitted and completed, and the warm jobs' makespan."""
    completed_jobs = jobs[jobs["arrival_s"] >= warmup] if len(jobs) else jobs
    makespan = completed_jobs["makespan_s"].to_numpy(dtype=float) if len(jobs) else np.array([])
    return {
        "submitted": int(tasks.loc[tasks["job_id"] >= 0, "job_id"].nunique()),
        "completed": len(jobs),
        "makespan_s": {
            "mean": _mean(makespan),
            "p50": _pct(makespan, 50),
            "p99": _pct(makespan, 99),
        },
    }


def alert_counts(events: pd.DataFrame) -> dict[str, int]:
    """How often each alert rule fired (resolutions are not counted)."""
    fired = events[events["kind"] == "alert"]
    fired = fired[fired["detail"].str.contains('"state":"firing"', regex=False)]
    return {str(k): int(v) for k, v in fired["subject"].value_counts().to_dict().items()}


def cost_figures(
    scenario: Scenario, agents: pd.DataFrame, events: pd.DataFrame, counts: Mapping[str, int]
) -> dict[str, Any]:
    """The agents' presence priced: in total, per day and per thousand completed tasks."""
    usd_spot, usd_on_demand = cost_split(scenario.cost, scenario.purchase, agents)
    cost = usd_spot + usd_on_demand
    return {
        "usd_total": cost,
        "usd_per_day": cost * 86400.0 / scenario.duration,
        "usd_per_1k_tasks": cost * 1000.0 / max(int(counts["completed"]), 1),
        "usd_spot": usd_spot,
        "usd_on_demand": usd_on_demand,
        "reclaims": int((events["kind"] == "spot_notice").sum()),
    }


def slo_figures(
    scenario: Scenario,
    done: pd.DataFrame,
    tasks: pd.DataFrame,
    metrics: pd.DataFrame,
    events: pd.DataFrame,
    agents: pd.DataFrame,
    counts: Mapping[str, int],
    error_rate: float,
) -> dict[str, Any]:
    """Whether the run met its SLO, the windows that breached it, and the likely causes.

    Met means the p99 wait (and p99 latency, when targeted) within target, no
    task lost and the error rate within its bound; *done* is the warm tasks
    completed by the duration.
    """
    slo, warmup, end = scenario.slo, scenario.warmup, scenario.duration
    p99_wait = _pct(done["wait_s"].to_numpy(dtype=float), 99)
    p99_latency = _pct(done["latency_s"].to_numpy(dtype=float), 99)
    breaches = slo_breaches(done, "wait_s", slo.p99_wait, slo.window, warmup, end)
    if slo.p99_latency is not None:
        breaches += slo_breaches(done, "latency_s", slo.p99_latency, slo.window, warmup, end)
    met = (
        (math.isnan(p99_wait) or p99_wait <= slo.p99_wait)
        and (slo.p99_latency is None or math.isnan(p99_latency) or p99_latency <= slo.p99_latency)
        and int(counts["lost"]) == 0
        and error_rate <= slo.max_error_rate
    )
    observed = {
        "p99_wait": p99_wait,
        "p99_latency": p99_latency,
        "lost": int(counts["lost"]),
        "error_rate": error_rate,
    }
    return {
        "met": bool(met),
        "breaches": breaches,
        "breach_minutes": breaches * slo.window / 60.0,
        "p99_wait_target_s": slo.p99_wait,
        "p99_latency_target_s": slo.p99_latency,
        "causes": slo_causes(scenario, done, tasks, metrics, events, agents, observed),
    }


def drained_figures(drained: pd.DataFrame | None) -> dict[str, Any]:
    """Work that ended after the duration (a live run drains; a simulation stops): apart.

    ``complete_s`` lists each drained task's end, in order, so a reader sees
    how long the drain took and how the backlog emptied.
    """
    if drained is None or not len(drained):
        return {"tasks": 0, "completed": 0, "failed": 0, "last_s": math.nan, "complete_s": []}
    outcome = drained["outcome"].astype(str)
    ends = sorted(float(t) for t in drained["complete_s"])
    return {
        "tasks": len(drained),
        "completed": int((outcome == "completed").sum()),
        "failed": int((outcome == "failed").sum()),
        "last_s": ends[-1],
        "complete_s": ends,
    }


#: Reasons an attempt fails without its agent failing (task errors, not crashes).
ATTEMPT_FAULTS = ("error", "timeout")


def error_figures(tasks: pd.DataFrame, counts: Mapping[str, int]) -> dict[str, Any]:
    """Failed attempts (errors and timeouts) and why tasks failed for good.

    Rates are over the warm attempts that ended: completions plus failed
    attempts; the spec's error_rate per zone is the same ratio by zone.
    """
    warm = tasks[tasks["warm"]]
    faulted = warm["outcome"].eq("retried") & warm["reason"].isin(ATTEMPT_FAULTS)
    ended = warm["outcome"].eq("completed") | faulted
    by_zone: dict[str, float] = {}
    for zone, group in warm[ended].groupby("zone"):
        faults = group["outcome"].eq("retried").sum()
        by_zone[str(zone)] = float(faults / len(group)) if len(group) else math.nan
    failed = tasks[tasks["outcome"] == "failed"]
    return {
        "attempt_errors": int(counts.get("attempt_errors", 0)),
        "attempt_error_rate": float(faulted.sum() / ended.sum()) if ended.any() else math.nan,
        "attempt_error_rate_by_zone": by_zone,
        "timeouts": int((tasks["outcome"].eq("retried") & tasks["reason"].eq("timeout")).sum()),
        # (reason is categorical: value_counts lists unused categories with a count of 0)
        "failed_by_reason": {
            str(k): int(v) for k, v in failed["reason"].value_counts().items() if v > 0
        },
    }


def dispatch_figures(done: pd.DataFrame) -> dict[str, float]:
    """Arrival to assignment for tasks an agent was free for: the hierarchy's own delay.

    Tasks that waited in a queue for an agent are left out; what remains is
    routing, network and the coordinators' queues.
    """
    free = done[(done["queue_s"] <= 0) & (done["attempt"] == 1)]
    delay = (free["dispatch_s"] - free["arrival_s"]).to_numpy(dtype=float)
    return {"mean": _mean(delay), "p50": _pct(delay, 50), "p99": _pct(delay, 99)}


def coordination_figures(metrics: pd.DataFrame, warmup: float) -> dict[str, Any]:
    """Coordinator load and control traffic over the warm part of the run."""
    warm = metrics[metrics["time_s"] > warmup]
    coords = warm[warm["level"] == "coordinator"]
    messages = warm[warm["level"] == "message"]
    span = float(warm["time_s"].max() - warmup) if len(warm) else 0.0

    def busiest(role: str) -> float:
        rows = coords[coords["status"] == role]
        return float(rows.groupby("id")["utilization"].mean().max()) if len(rows) else math.nan

    chief = coords[coords["status"] == "chief"]
    return {
        "chief_utilization": busiest("chief"),
        "zone_utilization_max": busiest("zone"),
        "team_lead_utilization_max": busiest("team_lead"),
        "chief_queue_delay_s": float(chief["queue_delay_s"].mean()) if len(chief) else math.nan,
        "messages_per_s": float(messages["messages"].sum() / span) if span > 0 else math.nan,
        "bytes_per_s": float(messages["message_bytes"].sum() / span) if span > 0 else math.nan,
    }


def election_figures(events: pd.DataFrame) -> dict[str, Any]:
    """Leader elections after start, and how long dispatch had no leader (from the event log)."""
    kinds = events["kind"]
    gaps = [
        float(json.loads(str(d))["downtime_s"])
        for d in events.loc[kinds.isin(["leader_elected", "leaderless_at_end"]), "detail"]
    ]
    return {
        "count": int((kinds == "election").sum()),
        "downtime_s": float(sum(gaps)),
        "max_gap_s": max(gaps, default=0.0),
    }


def failure_figures(events: pd.DataFrame) -> dict[str, Any]:
    """Per failed agent: time to detect, tasks redistributed, time until capacity was back.

    Recovery ends when the agent's replacement joined or the agent itself
    restarted, whichever came first.
    """
    kinds = events["kind"]
    failed = events[kinds == "agent_failed"]
    detected = events[kinds == "agent_detected"]
    details = [json.loads(d) for d in detected["detail"]]
    detect = np.asarray([d["detect_s"] for d in details], dtype=float)
    moved = sum(int(d["redistributed"]) for d in details)
    back: dict[str, float] = {}
    joins = events[kinds == "agent_joined"]
    joined: dict[str, float] = {
        str(s): float(t)
        for s, t in zip(joins["subject"].tolist(), joins["time_s"].tolist(), strict=True)
    }
    for row in events[kinds == "agent_replaced"].itertuples(index=False):
        replacement = json.loads(str(row.detail)).get("replacement")
        if replacement in joined:
            back.setdefault(str(row.subject), joined[replacement])
    restarts = events[kinds == "agent_restarted"]
    for subject, time_s in zip(
        restarts["subject"].tolist(), restarts["time_s"].tolist(), strict=True
    ):
        back[str(subject)] = min(back.get(str(subject), math.inf), float(time_s))
    recover = [
        back[str(s)] - float(t)
        for s, t in zip(failed["subject"], failed["time_s"], strict=True)
        if str(s) in back and back[str(s)] >= float(t)
    ]
    return {
        "agents": len(failed),
        "detected": len(detected),
        "redistributed": moved,
        "detect_s": {
            "mean": _mean(detect),
            "max": float(detect.max()) if len(detect) else math.nan,
        },
        "recover_s": {"mean": _mean(np.asarray(recover)), "max": max(recover, default=math.nan)},
        "zone_outages": int((kinds == "zone_outage").sum()),
    }


def slo_breaches(
    done: pd.DataFrame, column: str, target_s: float, window_s: float, warmup: float, end: float
) -> int:
    """Windows after warm-up whose p99 of *column* (tasks binned by completion) beat the target."""
    if not len(done) or window_s <= 0:
        return 0
    bins = np.floor((done["complete_s"].to_numpy() - warmup) / window_s)
    frame = pd.DataFrame({"bin": bins, "latency": done[column].to_numpy()})
    frame = frame[(frame["bin"] >= 0) & (frame["bin"] < math.ceil((end - warmup) / window_s))]
    if frame.empty:
        return 0
    p99 = frame.groupby("bin")["latency"].quantile(0.99)
    return int((p99 > target_s).sum())


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan
