"""Why the SLO was met or missed: ``summary.json``'s ``slo.causes`` and its one-line reading.

A verdict of "SLO met: no" leaves the user to dig through the figures. The
causes say, from the same tables the summary reads:

* **target** — which target decided (p99 wait, p99 latency, lost tasks, error
  rate), with the value measured against it;
* **worst windows** — the SLO windows with the highest p99 wait, each with
  the fleet size, the longest queue, and what the autoscaler could do then:
  at its upper or lower bound, in its scale-up cooldown (the step policy),
  and whether the step policy's trigger (queue depth or mean response time)
  was reached at all;
* **pools** — the zone × category pools whose tasks waited longest, with their
  utilisation (busy slot time over the pool's slot time in the window): a pool
  near 1 is short of agents of that category, whatever the fleet's total.

Everything is computed after the warm-up, like every other statistic, and
from the shared records, so a live run explains itself the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sim.scenario.schema import Scenario

__all__ = ["TOP_POOLS", "WORST_WINDOWS", "explain", "slo_causes"]

#: How many windows and pools the causes list.
WORST_WINDOWS = 3
TOP_POOLS = 3
#: A pool needs this many warm tasks for its p99 to be read at all.
MIN_POOL_TASKS = 20


def slo_causes(
    scenario: Scenario,
    done: pd.DataFrame,
    tasks: pd.DataFrame,
    metrics: pd.DataFrame,
    events: pd.DataFrame,
    agents: pd.DataFrame,
    verdict: Mapping[str, Any],
) -> dict[str, Any]:
    """The causes of one replication's verdict (*done*: warm tasks completed in the window).

    *verdict* carries the figures the summary already computed: ``p99_wait``,
    ``p99_latency``, ``lost``, ``error_rate``.
    """
    slo = scenario.slo
    warmup, end = scenario.warmup, scenario.duration
    control = int((agents["role"] != "zone_standby").sum()) - int(
        (agents["role"] == "specialist").sum()
    )
    windows = _windows(done, slo.window, warmup, end)
    worst = windows.sort_values("p99_wait_s", ascending=False, kind="stable").head(WORST_WINDOWS)
    return {
        "missed": _missed(scenario, verdict),
        "window_s": float(slo.window),
        "worst_windows": [
            _window_state(scenario, float(start), float(p99), int(n), metrics, events, control)
            for start, p99, n in zip(
                worst["start_s"].to_numpy(dtype=float),
                worst["p99_wait_s"].to_numpy(dtype=float),
                worst["tasks"].to_numpy(dtype=float),
                strict=True,
            )
        ],
        "pools": _pools(done, tasks, agents, warmup, end),
    }


def _missed(scenario: Scenario, verdict: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each SLO target with its measured value, in the order the verdict checks them."""
    slo = scenario.slo
    out = [
        {"target": "p99 wait", "value": verdict["p99_wait"], "limit": slo.p99_wait, "unit": "s"},
    ]
    if slo.p99_latency is not None:
        out.append(
            {
                "target": "p99 latency",
                "value": verdict["p99_latency"],
                "limit": slo.p99_latency,
                "unit": "s",
            }
        )
    out.append({"target": "tasks lost", "value": verdict["lost"], "limit": 0, "unit": ""})
    out.append(
        {
            "target": "error rate",
            "value": verdict["error_rate"],
            "limit": slo.max_error_rate,
            "unit": "",
        }
    )
    for item in out:
        value = float(item["value"])
        item["met"] = bool(math.isnan(value) or value <= float(item["limit"]))
    return out


def _windows(done: pd.DataFrame, window_s: float, warmup: float, end: float) -> pd.DataFrame:
    """p99 wait and task count per SLO window (tasks binned by completion, as the breaches)."""
    empty = pd.DataFrame({"start_s": [], "p99_wait_s": [], "tasks": []})
    if not len(done) or window_s <= 0:
        return empty
    bins = np.floor((done["complete_s"].to_numpy(dtype=float) - warmup) / window_s)
    frame = pd.DataFrame({"bin": bins, "wait": done["wait_s"].to_numpy(dtype=float)})
    frame = frame[(frame["bin"] >= 0) & (frame["bin"] < math.ceil((end - warmup) / window_s))]
    if frame.empty:
        return empty
    grouped = frame.groupby("bin")["wait"]
    out = pd.DataFrame({"p99_wait_s": grouped.quantile(0.99), "tasks": grouped.size()})
    out["start_s"] = warmup + out.index.to_numpy(dtype=float) * window_s
    return out.reset_index(drop=True)


def _window_state(
    scenario: Scenario,
    start_s: float,
    p99_wait_s: float,
    tasks: int,
    metrics: pd.DataFrame,
    events: pd.DataFrame,
    control: int,
) -> dict[str, Any]:
    """One window: its p99 wait, the fleet and queue in it, and the autoscaler's position."""
    stop = start_s + scenario.slo.window
    rows = metrics[
        (metrics["level"] == "global") & (metrics["time_s"] > start_s) & (metrics["time_s"] <= stop)
    ]
    agents = rows["total_agents"].to_numpy(dtype=float) + control
    queue = rows["queue_depth"].to_numpy(dtype=float)
    response = (
        rows["avg_latency_s"].to_numpy(dtype=float) if "avg_latency_s" in rows else np.array([])
    )
    scaling = scenario.scaling
    most = float(agents.max()) if len(agents) else math.nan
    least = float(agents.min()) if len(agents) else math.nan
    state: dict[str, Any] = {
        "start_s": float(start_s),
        "end_s": float(stop),
        "p99_wait_s": float(p99_wait_s),
        "tasks": tasks,
        "agents_mean": float(agents.mean()) if len(agents) else math.nan,
        "queue_max": float(queue.max()) if len(queue) else math.nan,
        "autoscaler": {
            "policy": scaling.policy if scaling.auto_scale.enabled else "off",
            "at_max": bool(most >= scaling.max_agents),
            "at_min": bool(least <= scaling.min_agents),
            **_cooldown(scenario, events, stop),
            **_trigger(scenario, queue, np.asarray(response, dtype=float)),
        },
    }
    return state


def _cooldown(scenario: Scenario, events: pd.DataFrame, at_s: float) -> dict[str, Any]:
    """The last scale-up before *at_s*, and whether the step policy's cooldown still held."""
    scale = events[(events["kind"] == "scale") & (events["time_s"] <= at_s)]
    ups = [
        float(t)
        for t, d in zip(scale["time_s"], scale["detail"], strict=True)
        if int(json.loads(str(d)).get("delta", 0)) > 0
    ]
    last = max(ups, default=math.nan)
    cooldown = scenario.scaling.auto_scale.scale_up.cooldown_seconds
    in_cooldown: bool | None = None
    if scenario.scaling.policy == "step":
        in_cooldown = bool(not math.isnan(last) and at_s - last < cooldown)
    return {"last_scale_up_s": last, "in_cooldown": in_cooldown}


def _trigger(scenario: Scenario, queue: np.ndarray, response: np.ndarray) -> dict[str, Any]:
    """Whether the step policy's scale-up trigger was reached in the window (None: other policy)."""
    if scenario.scaling.policy != "step":
        return {"trigger_reached": None}
    threshold = scenario.scaling.auto_scale.scale_up.threshold
    queue_hit = bool(len(queue) and np.nanmax(queue) >= threshold.queue_depth)
    finite = response[np.isfinite(response)] if len(response) else response
    response_hit = bool(len(finite) and finite.max() * 1000.0 >= threshold.avg_response_time_ms)
    return {
        "trigger_reached": queue_hit or response_hit,
        "queue_threshold": threshold.queue_depth,
        "response_threshold_s": threshold.avg_response_time_ms / 1000.0,
        "response_max_s": float(finite.max()) if len(finite) else math.nan,
    }


def _pools(
    done: pd.DataFrame, tasks: pd.DataFrame, agents: pd.DataFrame, warmup: float, end: float
) -> list[dict[str, Any]]:
    """The zone × category pools with the highest p99 wait, and how busy each was."""
    if not len(done):
        return []
    waits = done.groupby(["zone", "category"], observed=True)["wait_s"]
    table = pd.DataFrame({"p99_wait_s": waits.quantile(0.99), "tasks": waits.size()})
    table = table[table["tasks"] >= MIN_POOL_TASKS]
    table = table.sort_values("p99_wait_s", ascending=False, kind="stable").head(TOP_POOLS)
    out = []
    for key, row in table.iterrows():
        zone, category = key if isinstance(key, tuple) else (key, "")
        out.append(
            {
                "zone": str(zone),
                "category": str(category),
                "p99_wait_s": float(row["p99_wait_s"]),
                "tasks": int(row["tasks"]),
                "utilization": _pool_utilisation(
                    tasks, agents, str(zone), str(category), warmup, end
                ),
            }
        )
    return out


def _pool_utilisation(
    tasks: pd.DataFrame, agents: pd.DataFrame, zone: str, category: str, warmup: float, end: float
) -> float:
    """Busy slot time of the pool's specialists over their slot time in [warm-up, end]."""
    pool = agents[
        (agents["role"] == "specialist")
        & (agents["zone"].astype(str) == zone)
        & (agents["category"].astype(str) == category)
    ]
    present = pool["left_s"].clip(lower=warmup, upper=end) - pool["joined_s"].clip(
        lower=warmup, upper=end
    )
    slot_seconds = float((pool["slots"] * present).sum())
    if slot_seconds <= 0:
        return math.nan
    served = tasks[tasks["agent"].isin(set(pool["agent"].astype(str))) & (tasks["start_s"] >= 0)]
    ends = served["end_s"].to_numpy(dtype=float)
    ends = np.where(np.isnan(ends), end, ends)
    busy = np.clip(ends, warmup, end) - np.clip(
        served["start_s"].to_numpy(dtype=float), warmup, end
    )
    return float(busy.sum() / slot_seconds)


def _hms(seconds: float) -> str:
    total = round(seconds)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def explain(summary: Mapping[str, Any]) -> list[str]:
    """The verdict in one or two lines of plain text (terminal, reports); [] without an SLO."""
    slo = summary.get("slo")
    if not isinstance(slo, Mapping) or "met" not in slo:
        return []
    causes = slo.get("causes")
    if not isinstance(causes, Mapping):
        return [f"SLO met: {'yes' if slo['met'] else 'no'}"]
    missed = [m for m in causes.get("missed", []) if not m.get("met", True)]
    parts = [
        f"{m['target']} {_num(m['value'])}{' ' + m['unit'] if m['unit'] else ''}"
        f" > {_num(m['limit'])}{' ' + m['unit'] if m['unit'] else ''}"
        for m in missed
    ]
    breaches = slo.get("breaches")
    window = causes.get("window_s")
    head = "SLO met" if slo["met"] else "SLO missed: " + "; ".join(parts or ["see the figures"])
    if isinstance(breaches, int | float) and breaches and isinstance(window, int | float):
        head += f" · {_num(breaches)} windows of {_num(window)} s over target"
    worst = causes.get("worst_windows") or []
    if slo["met"] and not breaches:
        return [head]
    lines = [head]
    why = []
    pools = causes.get("pools") or []
    if pools:
        listed = ", ".join(
            f"{p['category']} in {p['zone']} {_num(p['p99_wait_s'])} s"
            f" ({_percent(p['utilization'])} busy)"
            for p in pools
        )
        why.append(f"longest waits: {listed}")
    if worst:
        why.append(_autoscaler_text(worst[0]))
    if why:
        lines.append("why: " + "; ".join(why))
    return lines


def _autoscaler_text(window: Mapping[str, Any]) -> str:
    scaler = window.get("autoscaler", {})
    text = (
        f"worst window {_hms(float(window['start_s']))} p99 wait {_num(window['p99_wait_s'])} s"
        f" with {_num(window['agents_mean'])} agents, autoscaler ({scaler.get('policy')})"
    )
    if scaler.get("policy") == "off":
        return text + " off"
    states = []
    if scaler.get("at_max"):
        states.append("at its maximum")
    elif scaler.get("at_min"):
        states.append("at its minimum")
    else:
        states.append("not at a bound")
    if scaler.get("in_cooldown"):
        states.append("in its scale-up cooldown")
    if scaler.get("trigger_reached") is False:
        states.append(
            f"trigger not reached (queue ≤ {_num(window['queue_max'])}"
            f" < {scaler['queue_threshold']},"
            f" mean response ≤ {_num(scaler['response_max_s'])} s"
            f" < {_num(scaler['response_threshold_s'])} s)"
        )
    return text + " " + ", ".join(states)


def _num(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    number = float(value)
    if math.isnan(number):
        return "—"
    if number == int(number) and abs(number) < 1e12:
        return f"{int(number):,}"
    return f"{number:.3g}" if abs(number) < 100 else f"{number:,.0f}"


def _percent(value: object) -> str:
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return f"{100.0 * float(value):.0f} %"
    return "—"
