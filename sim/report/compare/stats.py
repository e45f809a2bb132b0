"""The comparison table's numbers: each run's figures, differences, and their significance.

A difference between two runs is reported as absolute and relative to the
first run (the reference). When both runs have several replications, the
difference of their means is tested with Welch's t-test (two-sided, unequal
variances; ``scipy.stats.ttest_ind(equal_var=False)``) on the per-replication
values in ``summary.json``'s ``per_replication``. Runs of the same scenario
share random streams replication by replication (common random numbers), so
Welch's test, which assumes independent samples, is conservative here: a
difference it calls significant is one. With a single replication on either
side nothing is tested and the table says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "ALPHA",
    "COMPARED",
    "Difference",
    "Figure",
    "difference",
    "figure_value",
    "shown",
    "values_of",
]

#: Significance level of the Welch test.
ALPHA = 0.05


@dataclass(frozen=True)
class Figure:
    """A compared figure: label, path into summary.json, and whether lower is better."""

    label: str
    path: tuple[str, ...]
    lower_is_better: bool | None
    #: An opt-in model's figure (LLM calls, tiers, spot): a row only when some run has it
    #: non-zero, so a comparison of ordinary runs does not grow rows of dashes and zeros.
    optional: bool = False


#: Figures in the comparison table, in order (None: neither direction is better).
COMPARED: tuple[Figure, ...] = (
    Figure("p99 wait (s)", ("wait_s", "p99"), True),
    Figure("mean wait (s)", ("wait_s", "mean"), True),
    Figure("p99 latency (s)", ("latency_s", "p99"), True),
    Figure("throughput / min", ("throughput_per_min",), False),
    Figure("utilisation", ("utilization",), None),
    Figure("agents mean", ("agents", "mean"), None),
    Figure("agents max", ("agents", "max"), None),
    Figure("cost per day (USD)", ("cost", "usd_per_day"), True),
    Figure("cost per 1k tasks (USD)", ("cost", "usd_per_1k_tasks"), True),
    Figure("SLO breach minutes", ("slo", "breach_minutes"), True),
    Figure("tasks completed", ("tasks", "completed"), False),
    Figure("tasks lost", ("tasks", "lost"), True),
    Figure("tasks retried", ("tasks", "retried"), True),
    Figure("attempt error rate", ("errors", "attempt_error_rate"), True),
    Figure("dispatch p99 (s)", ("dispatch_s", "p99"), True),
    Figure("chief utilisation", ("coordination", "chief_utilization"), None),
    Figure("agents failed", ("failures", "agents"), None),
    Figure("tasks shed", ("tasks", "shed"), True, optional=True),
    Figure("LLM requests", ("llm", "requests"), None, optional=True),
    Figure("LLM calls throttled (429)", ("llm", "throttled"), True, optional=True),
    Figure("attempts failed rate_limited", ("llm", "rate_limited_attempts"), True, optional=True),
    Figure("LLM retry wait p99 (s)", ("llm", "retry_wait_s", "p99"), True, optional=True),
    Figure("token cost per day (USD)", ("llm", "usd_per_day"), True, optional=True),
    Figure("spot cost (USD)", ("cost", "usd_spot"), None, optional=True),
    Figure("spot reclaims", ("cost", "reclaims"), None, optional=True),
)


def shown(figure: Figure, summaries: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the table has a row for *figure*: always, or (optional) some run has it non-zero."""
    return not figure.optional or any(figure_value(s, figure.path) for s in summaries)


def figure_value(summary: Mapping[str, Any], path: Sequence[str]) -> float | None:
    """The number at *path* in a summary, or None (missing, not a number, NaN)."""
    node: Any = summary
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    value = float(node)
    return value if math.isfinite(value) else None


def values_of(summary: Mapping[str, Any], path: Sequence[str]) -> list[float]:
    """The figure in each replication (``per_replication``); [] for a single run."""
    reps = summary.get("per_replication")
    if not isinstance(reps, list):
        return []
    out = [figure_value(r, path) for r in reps if isinstance(r, Mapping)]
    return [v for v in out if v is not None]


@dataclass(frozen=True)
class Difference:
    """Run B against the reference A: B − A, (B − A) / A, Welch's p (NaN when untested)."""

    absolute: float | None
    relative: float | None
    p_value: float
    #: "better", "worse" or "" (no direction, no difference, or not significant when tested).
    verdict: str

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p_value)

    @property
    def significant(self) -> bool:
        return self.tested and self.p_value < ALPHA


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Welch t-test p-value; NaN with fewer than two values a side or no variance."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.std(ddof=1) == 0 and y.std(ddof=1) == 0:
        # Identical replications on both sides: equal means are no difference, unequal
        # ones are as certain as a difference can be (t is infinite).
        return 1.0 if x.mean() == y.mean() else 0.0
    with warnings.catch_warnings():
        # Nearly identical replications make scipy warn of lost precision; the p-value it
        # still returns (or NaN: untested) is what the table shows.
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(x, y, equal_var=False).pvalue)


def difference(
    figure: Figure, reference: Mapping[str, Any], other: Mapping[str, Any]
) -> Difference:
    """How *other* differs from *reference* on *figure*."""
    a, b = figure_value(reference, figure.path), figure_value(other, figure.path)
    if a is None or b is None:
        return Difference(None, None, math.nan, "")
    absolute = b - a
    relative = absolute / abs(a) if a else None
    p = welch_p(values_of(reference, figure.path), values_of(other, figure.path))
    verdict = ""
    if figure.lower_is_better is not None and absolute != 0 and (math.isnan(p) or p < ALPHA):
        better = (absolute < 0) == figure.lower_is_better
        verdict = "better" if better else "worse"
    return Difference(absolute, relative, p, verdict)
