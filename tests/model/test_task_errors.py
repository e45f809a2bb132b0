"""Task errors, timeouts and TTL expiry in the model, and how the hierarchy escalates them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import SCENARIOS, short_baseline

from sim.model.engine import run_scenario
from sim.scenario.load import load_scenario


def test_failed_for_good_share_is_p_to_the_budget_plus_one() -> None:
    """Independent errors with probability p and r retries: a task fails for good w.p. p^(r+1).

    One category so every zone has dozens of agents: every retry finds another
    agent and nothing is skipped. The interval is the normal 99.7 % one for a
    binomial share over the finished tasks (3 standard errors of p^(r+1)).
    """
    p, r = 0.3, 2
    result = run_scenario(
        short_baseline(
            "topology.categories={CodeGen: 1}",
            "workload.dags.rate_per_min=0",
            f"errors.probability={p}",
            f"escalation.team_retries={r}",
            "escalation.zone_moves=[]",
            "escalation.chief_retries=0",
            "escalation.backoff=0",
            hours=2.0,
        )
    )
    tasks = result.tasks
    final = tasks[tasks["outcome"].isin(["completed", "failed"])]
    failed = int((final["outcome"] == "failed").sum())
    n = len(final)
    expected = p ** (r + 1)
    se = math.sqrt(expected * (1 - expected) / n)
    assert n > 5000
    assert abs(failed / n - expected) < 3 * se, (failed, n, expected)
    assert set(final.loc[final["outcome"] == "failed", "reason"]) == {"error"}
    # Every attempt of a task that failed for good is in the log: r retries, then the end.
    attempts = tasks[tasks["outcome"] == "retried"].groupby("task_id").size()
    gave_up = final.loc[final["outcome"] == "failed", "task_id"]
    assert (attempts.loc[gave_up] == r + 1).all()


def test_a_retry_goes_to_another_agent() -> None:
    result = run_scenario(
        short_baseline("errors.probability=0.2", "escalation.zone_moves=[]", hours=1.0)
    )
    tasks = result.tasks.sort_values(["task_id", "attempt"])
    retried = tasks[tasks["outcome"] == "retried"]
    later = tasks.merge(
        retried[["task_id", "attempt", "agent"]].assign(attempt=retried["attempt"] + 1),
        on=["task_id", "attempt"],
        suffixes=("", "_failed"),
    )
    later = later[later["agent"] != ""]
    assert len(later) > 200
    assert (later["agent"] != later["agent_failed"]).all()


def test_conservation_holds_with_errors_timeouts_ttl_expiry_and_crashes() -> None:
    """Everything at once; the engine checks the books and raises if a task went missing."""
    scenario = short_baseline(
        "errors.probability=0.1",
        "errors.timeout_by_category={Research: 60}",
        "network.message_ttl=0.3",
        "chaos=[{at: 20m, duration: 10m, latency_spike: {factor: 8}}, "
        "{at: 25m, kill: {fraction: 0.05}, restart_after: 5m}]",
        hours=1.0,
    )
    result = run_scenario(scenario)
    assert result.counts["lost"] == 0
    reasons = set(result.tasks["reason"])
    assert {"error", "timeout"} <= reasons
    assert result.counts["expired_messages"] > 0
    assert result.counts["attempt_errors"] > 0
    assert result.counts["failed"] > 0


def test_escalations_walk_the_hierarchy_in_order() -> None:
    result = run_scenario(
        short_baseline(
            "errors.probability=0.5",
            "escalation.zone_moves=[another_team, bigger_agent, another_zone]",
            hours=0.5,
        )
    )
    events = result.events[result.events["kind"] == "escalation"]
    details = [json.loads(d) for d in events["detail"]]
    levels = {(d["level"], d["move"]) for d in details}
    assert ("zone", "another_team") in levels
    assert ("zone", "another_zone") in levels
    assert ("chief", "") in levels
    # Per task, zone moves come before the chief.
    by_task: dict[str, list[str]] = {}
    for subject, d in zip(events["subject"], details, strict=True):
        by_task.setdefault(subject, []).append(d["level"])
    for steps in by_task.values():
        assert steps == sorted(steps, key=lambda level: level == "chief")


def test_every_spec_message_type_is_counted_with_its_bytes() -> None:
    scenario = short_baseline("errors.probability=0.2", hours=0.5)
    result = run_scenario(scenario)
    rows = result.metrics[result.metrics["level"] == "message"]
    totals = rows.groupby("id")[["messages", "message_bytes"]].sum()
    types = {name.split(":")[0] for name in totals.index[totals["messages"] > 0]}
    spec_types = {
        "task_assign",
        "task_complete",
        "task_failed",
        "heartbeat",
        "status_request",
        "status_response",
        "escalation",
    }
    assert spec_types <= types
    sizes = scenario.coordination.message_bytes
    for name, row in totals.iterrows():
        kind = str(name).split(":")[0]
        if kind in sizes:
            assert math.isclose(row["message_bytes"], row["messages"] * sizes[kind])
    # Every completion reports through team lead, zone and chief: three gRPC messages each.
    completed = result.counts["completed"]
    sent = totals.loc["task_complete:grpc", "messages"]
    assert completed * 3 <= sent <= (completed + result.counts["in_flight"]) * 3


def test_error_burst_fires_the_spec_alert_and_clears_it() -> None:
    scenario = load_scenario(SCENARIOS / "error_burst.yaml", [])
    burst = next(e for e in scenario.chaos if e.error_burst is not None)
    assert burst.duration is not None
    start, end = burst.at, burst.at + burst.duration
    interval = scenario.metrics.interval
    result = run_scenario(scenario)
    alerts = result.events[
        (result.events["kind"] == "alert") & (result.events["subject"] == "error_rate_spike")
    ]
    details = [json.loads(d)["state"] for d in alerts["detail"]]
    states = list(zip(alerts["time_s"], details, strict=True))
    firing = [t for t, s in states if s == "firing"]
    resolved = [t for t, s in states if s == "resolved"]
    assert len(firing) == 1 and len(resolved) == 1
    # Fires at the first evaluation after the burst starts...
    assert start < firing[0] <= start + interval
    # ... and clears once the attempts begun during the burst have run out (one service
    # time's worth of evaluations at most; the mean service time is 40 s).
    assert end < resolved[0] <= end + 3 * interval
    rates = result.metrics[result.metrics["level"] == "global"].set_index("time_s")["error_rate"]
    assert rates.loc[start + 2 * interval : end].min() > 0.05
    assert rates.loc[: start - interval].iloc[-10:].max() < 0.05


def test_error_counts_and_rates_reach_the_summary_and_agent_metrics() -> None:
    from sim.runner import summary_of

    result = run_scenario(short_baseline("errors.probability=0.1", hours=0.5))
    summary = summary_of(result)
    errors = summary["errors"]
    assert errors["attempt_errors"] == result.counts["attempt_errors"] > 0
    assert 0.05 < errors["attempt_error_rate"] < 0.15
    assert set(errors["attempt_error_rate_by_zone"]) == {"A", "B", "C", "D"}
    agents = result.metrics[result.metrics["level"] == "agent"]
    last = agents.groupby("id")["error_count"].max()
    assert last.sum() > 0
    frame = pd.DataFrame(result.tasks)
    assert int((frame["reason"] == "error").sum()) >= errors["attempt_errors"]


def test_escalations_expire_past_their_ttl_and_are_resent() -> None:
    """ESCALATION to a far chief under a latency spike arrives past a short TTL: resent."""
    result = run_scenario(
        short_baseline(
            "errors.probability=0.3",
            "network.message_ttl=0.12",
            "chaos=[{at: 20m, duration: 20m, latency_spike: {factor: 3}}]",
            hours=1.0,
        )
    )
    expired = result.events[result.events["kind"] == "message_expired"]
    assert (expired["subject"] == "escalation").sum() > 0
    assert result.counts["lost"] == 0
    assert "ttl_expired" in set(result.tasks["reason"])


def test_a_trace_can_give_each_task_its_own_deadline(tmp_path: Path) -> None:
    """deadline_s per row: tasks whose work exceeds their own deadline time out, others don't."""
    path = tmp_path / "trace.csv"
    pd.DataFrame(
        {
            "arrival_s": [60.0 * i for i in range(1, 21)],
            "category": ["CodeGen"] * 20,
            "work_s": [100.0] * 20,
            "deadline_s": [30.0 if i % 2 else None for i in range(20)],
        }
    ).to_csv(path, index=False)
    scenario = short_baseline(
        "workload.arrivals.process=trace",
        f"workload.arrivals.trace={path}",
        "workload.dags.rate_per_min=0",
        "warmup=0",
        "escalation.team_retries=1",
        "escalation.zone_moves=[]",
        "escalation.chief_retries=0",
        hours=1.0,
    )
    result = run_scenario(scenario)
    tasks = result.tasks
    timed_out = tasks[tasks["reason"] == "timeout"]
    # Ten tasks with a 30 s deadline: two attempts each, both cut at 30 s, then failed.
    assert set(timed_out["task_id"]) == set(tasks.loc[tasks["task_id"] % 2 == 0, "task_id"])
    cut = timed_out.loc[timed_out["outcome"] == "retried", "service_s"]
    assert len(cut) == 20 and np.allclose(cut, 30.0)
    assert (tasks[tasks["outcome"] == "completed"]["task_id"] % 2 == 1).all()
    assert int((tasks["outcome"] == "completed").sum()) == 10


def test_a_bad_trace_deadline_is_one_line(tmp_path: Path) -> None:
    from sim.world.workload import WorkloadError

    path = tmp_path / "trace.csv"
    pd.DataFrame({"arrival_s": [1.0, 2.0], "deadline_s": [5.0, -1.0]}).to_csv(path, index=False)
    scenario = short_baseline(
        "workload.arrivals.process=trace", f"workload.arrivals.trace={path}", hours=0.5
    )
    with pytest.raises(WorkloadError) as info:
        run_scenario(scenario)
    assert "deadline_s" in str(info.value) and "\n" not in str(info.value)
