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
    columns); either is None where that run made no evaluation within
    half an interval of the other's (a leaderless spell, a run that ended).
    """

    time_s: float
    first: dict[str, Any] | None
    second: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """For ``calibration.json``: the rows with NaN as None."""
        return {
            "time_s": self.time_s,
            "first": _plain(self.first),
            "second": _plain(self.second),
        }


def first_apart(first: pd.DataFrame, second: pd.DataFrame, within_s: float) -> ScalingApart | None:
    """The first evaluation, in time, at which *first* and *second* asked differently.

    Each evaluation of one run is paired with the other's nearest within
    *within_s* (half the decision interval: live evaluates at the same
    multiples of it, a little late); an evaluation without a partner
    counts as apart only if it asked for a change. None where they agree
    throughout.
    """
    a = first.sort_values("time_s", kind="stable").reset_index(drop=True)
    b = second.sort_values("time_s", kind="stable").reset_index(drop=True)
    times_b = b["time_s"].to_numpy(dtype=float)
    partner_of_a = _nearest(a["time_s"].to_numpy(dtype=float), times_b, within_s)
    candidates: list[ScalingApart] = []
    for i, j in enumerate(partner_of_a):
        row = _row(a, i)
        other = _row(b, j) if j >= 0 else None
        if (other is None and row["asked"] != 0) or (
            other is not None and other["asked"] != row["asked"]
        ):
            candidates.append(ScalingApart(float(row["time_s"]), row, other))
            break
    partnered = {j for j in partner_of_a if j >= 0}
    asked_b = b["asked"].to_numpy(dtype=np.int64)
    for j in range(len(b)):
        if j not in partnered and asked_b[j] != 0:
            row = _row(b, j)
            candidates.append(ScalingApart(float(row["time_s"]), None, row))
            break
    return min(candidates, key=lambda c: c.time_s, default=None)


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


def _nearest(times: np.ndarray, others: np.ndarray, within_s: float) -> list[int]:
    """For each time, the index of the nearest of *others* within *within_s* (-1: none)."""
    out = []
    for t in times:
        if not len(others):
            out.append(-1)
            continue
        j = int(np.abs(others - t).argmin())
        out.append(j if abs(others[j] - t) <= within_s else -1)
    return out


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
        out[name] = float(row[name])
    return out


def _num(value: Any) -> str:
    return (
        "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"
    )


def _plain(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
