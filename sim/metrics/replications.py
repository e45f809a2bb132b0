"""Replications combined: the mean of every figure and its Student-t confidence interval.

A single run of a stochastic model is one draw; a user compares policies on
the mean over replications, with an interval that says how sure that mean
is. The summary of each replication comes from :mod:`sim.metrics.summary`;
this module only combines them, and lends its t-quantiles to the planner
and the sweep reports so every interval in the project is computed alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Student-t quantiles by degrees of freedom: 0.975 and 0.995 for two-sided 95 % and 99 %
#: intervals, 0.95 for one-sided 95 % bounds (the planner's "meets the SLO with 95 % confidence").
_T_TABLE: dict[float, dict[int, float]] = {
    0.95: {
        1: 6.314,
        2: 2.920,
        3: 2.353,
        4: 2.132,
        5: 2.015,
        6: 1.943,
        7: 1.895,
        8: 1.860,
        9: 1.833,
        10: 1.812,
        12: 1.782,
        15: 1.753,
        20: 1.725,
        25: 1.708,
        30: 1.697,
        60: 1.671,
        120: 1.658,
    },
    0.975: {
        1: 12.706,
        2: 4.303,
        3: 3.182,
        4: 2.776,
        5: 2.571,
        6: 2.447,
        7: 2.365,
        8: 2.306,
        9: 2.262,
        10: 2.228,
        12: 2.179,
        15: 2.131,
        20: 2.086,
        25: 2.060,
        30: 2.042,
        60: 2.000,
        120: 1.980,
    },
    0.995: {
        1: 63.657,
        2: 9.925,
        3: 5.841,
        4: 4.604,
        5: 4.032,
        6: 3.707,
        7: 3.499,
        8: 3.355,
        9: 3.250,
        10: 3.169,
        12: 3.055,
        15: 2.947,
        20: 2.845,
        25: 2.787,
        30: 2.750,
        60: 2.660,
        120: 2.617,
    },
}
_Z = {0.95: 1.645, 0.975: 1.960, 0.995: 2.576}


def t_quantile(df: int, q: float = 0.975) -> float:
    """Student-t quantile *q* (0.95, 0.975 or 0.995) for *df* degrees of freedom.

    Between tabulated points the next smaller df is used, which overstates the
    quantile slightly: intervals err on the wide side, never the narrow one.
    """
    if df <= 0:
        return math.nan
    table = _T_TABLE[q]
    best = table[1]
    for key in sorted(table):
        if key <= df:
            best = table[key]
    return best if df <= max(table) else _Z[q]


def combine_replications(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean of every numeric figure across replications, with a 95 % t-interval in ``ci95``."""
    if len(summaries) == 1:
        return dict(summaries[0])
    combined: dict[str, Any] = _mean_tree(summaries)
    combined["replications"] = len(summaries)
    combined["ci95"] = _ci_tree(summaries)
    combined["events_sha256"] = [s["events_sha256"] for s in summaries]
    combined["per_replication"] = summaries
    return combined


def _mean_tree(items: Sequence[Any]) -> Any:
    first = items[0]
    if isinstance(first, dict):
        return {k: _mean_tree([i[k] for i in items]) for k in first if all(k in i for i in items)}
    if all(i == first for i in items):
        return first  # identical everywhere (seed, name, targets): keep its type
    if isinstance(first, bool):
        return all(items) if all(isinstance(i, bool) for i in items) else first
    if isinstance(first, int | float):
        values = np.asarray(items, dtype=float)
        return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    return first


def _ci_tree(items: Sequence[Any]) -> Any:
    first = items[0]
    if isinstance(first, dict):
        out = {}
        for key in first:
            sub = _ci_tree([i[key] for i in items])
            if sub is not None:
                out[key] = sub
        return out or None
    if isinstance(first, bool) or not isinstance(first, int | float):
        return None
    values = np.asarray(items, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return None
    mean = float(values.mean())
    half = t_quantile(len(values) - 1) * float(values.std(ddof=1)) / math.sqrt(len(values))
    return [mean - half, mean + half]
