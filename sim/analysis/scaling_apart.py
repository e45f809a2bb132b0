"""Where two runs' autoscalers first decided differently, and on what numbers.

Scenario: a live run scaled up at 240 s and its replay did not. The ``scale``
events say that much; whether the replay missed by a hair (an average
response of 4.94 s against a 5 s threshold, live's 5.29 s) or by a mile (a
queue of 3 against 100) decides whether the replay is wrong or the threshold
sits on a knife edge that any run may fall either side of. Both shells
write every evaluation (``scaling.parquet``), so the two can be laid side
by side: the first evaluation at which they asked for different changes,
with each side's observation and reason. ``orchestra calibrate`` reports it
against the replays, ``orchestra compare`` between two runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.metrics.scaling_rows import OBSERVED

__all__ = ["ScalingApart", "describe_apart", "evaluation_spacing", "first_apart"]

#: The observation's fields shown beside each other, with their short names.
SHOWN = (
    ("queue_depth", "queue"),
    ("avg_response_time_s", "response s"),
    ("cpu_utilization", "cpu"),
    ("idle_fraction", "idle"),
    ("agents", "agents"),
)


@dataclass(frozen=True)
class ScalingApart:
    """The first evaluation at which two runs' autoscalers asked for different changes.

    ``first`` and ``second`` are the two evaluations' rows (``scaling.parquet``
    columns, a metric not delivered as None, as :func:`evaluation_row` writes
    them); either is None where that run made no evaluation within half an
    interval of the other's (a leaderless spell, a run that ended).
    """

    time_s: float
    first: dict[str, Any] | None
    second: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """For ``calibration.json`` (the rows are plain JSON already)."""
        return {"time_s": self.time_s, "first": self.first, "second": self.second}

    @classmethod
    def from_json(cls, document: dict[str, Any] | None) -> ScalingApart | None:
        """Read back from :meth:`to_json` (None: the runs were not apart)."""
        return None if document is None else cls(**document)


def first_apart(first: pd.DataFrame, second: pd.DataFrame, within_s: float) -> ScalingApart | None:
    """The first evaluation, in time, at which *first* and *second* asked differently.

    Evaluations are compared instant by instant: an alert's forced evaluation
    and the periodic one at (nearly) the same time form one instant, whose
    changes asked are compared whatever their order (two shells may run the
    alert before the tick or after it), holds left out. The two runs' instants are paired
    in time order where they lie within *within_s* of each other (half the
    decision interval: live evaluates at the same multiples of it, a little
    late); an instant without a partner counts as apart only if it asked
    for a change. None where they agree throughout.
    """
    a = first.sort_values("time_s", kind="stable").reset_index(drop=True)
    b = second.sort_values("time_s", kind="stable").reset_index(drop=True)
    groups_a, groups_b = _instants(a, within_s / 2), _instants(b, within_s / 2)
    times_a, times_b = (t["time_s"].to_numpy(dtype=float) for t in (a, b))
    starts_a = np.array([times_a[g[0]] for g in groups_a])
    starts_b = np.array([times_b[g[0]] for g in groups_b])
    for i, j in _paired(starts_a, starts_b, within_s):
        mine = [_row(a, k) for k in groups_a[i]] if i >= 0 else []
        theirs = [_row(b, k) for k in groups_b[j]] if j >= 0 else []
        # The changes asked at the instant, holds left out (one run may hold twice).
        asked_a = sorted(row["asked"] for row in mine if row["asked"])
        asked_b = sorted(row["asked"] for row in theirs if row["asked"])
        if asked_a == asked_b:
            continue
        shown_a, shown_b = _odd_one(mine, asked_b), _odd_one(theirs, asked_a)
        time_s = (shown_a or shown_b or {"time_s": math.nan})["time_s"]
        return ScalingApart(float(time_s), shown_a, shown_b)
    return None


def _instants(table: pd.DataFrame, gap_s: float) -> list[list[int]]:
    """Row indices of *table* (sorted by time) grouped into instants no wider than *gap_s*."""
    groups: list[list[int]] = []
    start = -math.inf
    for k, t in enumerate(table["time_s"].to_numpy(dtype=float)):
        if t - start > gap_s:
            groups.append([])
            start = t
        groups[-1].append(k)
    return groups


def _odd_one(rows: list[dict[str, Any]], other: list[int]) -> dict[str, Any] | None:
    """The first of *rows* that asked a change the other run's instant did not (holds are
    not compared), else the first row: the one to show for this run."""
    left = list(other)
    for row in rows:
        if not row["asked"]:
            continue
        if row["asked"] in left:
            left.remove(row["asked"])
        else:
            return row
    return rows[0] if rows else None


def _paired(a: np.ndarray, b: np.ndarray, within_s: float) -> list[tuple[int, int]]:
    """(i, j) in time order: indices paired one to one within *within_s*, -1 for none."""
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) or j < len(b):
        if i < len(a) and j < len(b) and abs(a[i] - b[j]) <= within_s:
            out.append((i, j))
            i, j = i + 1, j + 1
        elif j >= len(b) or (i < len(a) and a[i] < b[j]):
            out.append((i, -1))
            i += 1
        else:
            out.append((-1, j))
            j += 1
    return out


def evaluation_spacing(table: pd.DataFrame) -> float:
    """Seconds between a run's evaluations (its decision interval; 60 s, the spec's, where
    the table holds fewer than two)."""
    gaps = np.diff(np.sort(table["time_s"].to_numpy(dtype=float)))
    gaps = gaps[gaps > 1e-9]
    return float(np.median(gaps)) if len(gaps) else 60.0


def describe_apart(apart: ScalingApart | None, first: str, second: str) -> str:
    """One paragraph: when, what each asked and why, the numbers beside each other."""
    if apart is None:
        return f"{first} and {second} asked for the same changes at every evaluation"
    lines = [f"first apart at {apart.time_s:.0f} s:"]
    for name, row in ((first, apart.first), (second, apart.second)):
        if row is None:
            lines.append(f"  {name}: no evaluation then")
        else:
            lines.append(
                f"  {name}: asked {int(row['asked']):+d} ({row['policy']}: {row['reason']})"
            )
    if apart.first is not None and apart.second is not None:
        numbers = ", ".join(
            f"{label} {_num(apart.first[key])} / {_num(apart.second[key])}" for key, label in SHOWN
        )
        lines.append(f"  observed ({first} / {second}): {numbers}")
    return "\n".join(lines)


def _row(frame: pd.DataFrame, i: int) -> dict[str, Any]:
    row = frame.iloc[i]
    out: dict[str, Any] = {
        "time_s": float(row["time_s"]),
        "policy": str(row["policy"]),
        "asked": int(row["asked"]),
        "target": int(row["target"]),
        "reason": str(row["reason"]),
    }
    for name in OBSERVED:
        value = float(row[name])
        out[name] = None if math.isnan(value) else value  # (as evaluation_row writes it)
    return out


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
