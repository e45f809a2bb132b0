"""The ``llm`` block of ``summary.json``: requests, tokens, throttling and token cost.

Computed from the per-attempt table alone (``llm.parquet``), like the rest
of the summary, over the same window: attempts that ended after the warm-up
and by the scenario's end. Token cost sits beside compute cost: ``usd`` here,
``cost.llm_usd_total`` in the cost block.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sim.scenario.schema import Scenario

#: Columns of the per-attempt table (``llm.parquet``).
ATTEMPT_COLUMNS = (
    "task_id",
    "attempt",
    "category",
    "model",
    "provider",
    "start_s",
    "end_s",
    "outcome",
    "calls",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "throttled",
    "retry_wait_s",
    "usd",
)


def llm_figures(scenario: Scenario, attempts: pd.DataFrame, tasks: pd.DataFrame) -> dict[str, Any]:
    """Totals, the backoff distribution of throttled attempts, and rows per model and category.

    ``retry_wait_s`` is over attempts throttled at least once: the seconds
    their calls spent backing off in all. ``usd_per_task`` divides a group's
    token spend (failed attempts included: their tokens were paid for) by the
    tasks of the group that completed.
    """
    end, warmup = scenario.duration, scenario.warmup
    window = attempts[(attempts["end_s"] >= warmup) & (attempts["end_s"] <= end)]
    throttled = window[window["throttled"] > 0]["retry_wait_s"].to_numpy(dtype=float)
    done = window[window["outcome"] == "completed"]
    return {
        "requests": int(window["calls"].sum()),
        "input_tokens": int(window["input_tokens"].sum()),
        "cached_input_tokens": int(window["cached_tokens"].sum()),
        "output_tokens": int(window["output_tokens"].sum()),
        "throttled": int(window["throttled"].sum()),
        "rate_limited_attempts": int((window["outcome"] == "rate_limited").sum()),
        "retry_wait_s": {"p50": _pct(throttled, 50), "p99": _pct(throttled, 99)},
        "usd": float(window["usd"].sum()),
        "usd_per_day": float(window["usd"].sum()) * 86400.0 / max(end - warmup, 1e-9),
        "by_model": _rows(window, done, "model"),
        "by_category": _rows(window, done, "category"),
    }


def _rows(window: pd.DataFrame, done: pd.DataFrame, key: str) -> list[dict[str, Any]]:
    rows = []
    for name, group in window.groupby(key, sort=True):
        completed = int((done[key] == name).sum())
        usd = float(group["usd"].sum())
        rows.append(
            {
                key: str(name),
                "requests": int(group["calls"].sum()),
                "input_tokens": int(group["input_tokens"].sum()),
                "output_tokens": int(group["output_tokens"].sum()),
                "throttled": int(group["throttled"].sum()),
                "usd": usd,
                "tasks_completed": completed,
                "usd_per_task": usd / completed if completed else math.nan,
            }
        )
    return rows


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan
