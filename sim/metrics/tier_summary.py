"""The ``tiers`` and ``tenants`` blocks of ``summary.json``: who was served, who was shed, how fair.

Computed from the per-task admission table (``tiers.parquet``) joined with
the task attempts, over the summary's window: tasks that arrived after the
warm-up; a task counts as completed when its service ended by the duration.
Waits are those of the completed tasks, as in the top-level ``wait_s``.

Fairness over tenants is Jain's index of each tenant's served share over its
demand share: with ``x_i = (completed_i / completed) / (submitted_i /
submitted)`` over the n tenants that submitted anything, ``J = (sum x_i)^2 /
(n * sum x_i^2)``. J is 1.0 when every tenant gets exactly its share of what
was served, and 1/n when one tenant gets everything.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sim.scenario.schema import Scenario

#: Columns of ``tiers.parquet``: one row per independent task that arrived (both shells).
TIER_COLUMNS = ("task_id", "category", "tier", "tenant", "arrival_s", "admission", "reason")


def tier_frame(rows: list[tuple[Any, ...]], replication: int) -> pd.DataFrame:
    """``tiers.parquet`` from rows in TIER_COLUMNS order (the simulator's and live's alike)."""
    frame = pd.DataFrame(rows, columns=list(TIER_COLUMNS))
    frame.insert(0, "replication", np.full(len(frame), replication, dtype=np.int64))
    return frame.astype(
        {"task_id": "int64", "arrival_s": "float64", "tier": "str", "tenant": "str"}
    )


#: How Jain's index is defined here (written into the summary beside the figure).
JAIN_DEFINITION = (
    "Jain's index of x_i = served share / demand share per tenant (completed and submitted tasks "
    "after warm-up): (sum x)^2 / (n sum x^2); 1 = served in proportion to demand"
)


def tier_figures(
    scenario: Scenario, admissions: pd.DataFrame, tasks: pd.DataFrame
) -> dict[str, Any]:
    """``{"tiers": {"by_tier": [...]}, "tenants": {"jain", "by_tenant": [...]}}``."""
    warm = admissions[admissions["arrival_s"] >= scenario.warmup]
    completed = tasks[(tasks["outcome"] == "completed") & (tasks["end_s"] <= scenario.duration)]
    ended = tasks[tasks["outcome"] == "failed"]
    done = warm.merge(completed[["task_id", "wait_s"]], on="task_id", how="inner")
    failed_ids = set(ended["task_id"].tolist())
    warm = warm.assign(
        done=warm["task_id"].isin(set(done["task_id"].tolist())),
        failed=warm["task_id"].isin(failed_ids),
        shed=warm["admission"] == "shed",
    )
    order = [level.name for level in scenario.tiers.levels] if scenario.tiers else []
    by_tier = [_tier_row(name, warm[warm["tier"] == name], done) for name in order]
    by_tenant, jain = _tenants(warm)
    return {
        "tiers": {"by_tier": by_tier},
        "tenants": {"jain": jain, "definition": JAIN_DEFINITION, "by_tenant": by_tenant},
    }


def _tier_row(name: str, group: pd.DataFrame, done: pd.DataFrame) -> dict[str, Any]:
    waits = done.loc[done["tier"] == name, "wait_s"].to_numpy(dtype=float)
    submitted, shed = len(group), int(group["shed"].sum())
    return {
        "tier": name,
        "submitted": submitted,
        "admitted": submitted - shed,
        "shed": shed,
        "shed_share": shed / submitted if submitted else math.nan,
        "shed_by_reason": {
            str(k): int(v) for k, v in group.loc[group["shed"], "reason"].value_counts().items()
        },
        "completed": int(group["done"].sum()),
        "failed": int(group["failed"].sum()),
        "wait_s": {"p50": _pct(waits, 50), "p99": _pct(waits, 99)},
    }


def _tenants(warm: pd.DataFrame) -> tuple[list[dict[str, Any]], float]:
    submitted_all = len(warm)
    completed_all = int(warm["done"].sum())
    rows, ratios = [], []
    for tenant, group in warm.groupby("tenant", sort=True):
        demand = len(group) / submitted_all
        served = int(group["done"].sum()) / completed_all if completed_all else math.nan
        ratio = served / demand if demand > 0 else math.nan
        ratios.append(ratio)
        rows.append(
            {
                "tenant": str(tenant),
                "submitted": len(group),
                "shed": int(group["shed"].sum()),
                "completed": int(group["done"].sum()),
                "demand_share": demand,
                "served_share": served,
                "served_over_demand": ratio,
            }
        )
    return rows, jain_index(ratios)


def jain_index(values: list[float]) -> float:
    """Jain's fairness index of *values*: (sum x)^2 / (n sum x^2), in [1/n, 1]; NaN if undefined."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(x) == 0 or float((x**2).sum()) == 0.0:
        return math.nan
    return float(x.sum() ** 2 / (len(x) * (x**2).sum()))


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else math.nan
