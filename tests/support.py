"""Helpers shared by the test modules (importable as ``support``)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from sim.scenario.load import load_scenario
from sim.scenario.schema import Scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"

#: Statistical sweeps run at full size only when asked; `make test` runs them reduced.
FULL = os.environ.get("ORCHESTRA_FULL") == "1"


def short_baseline(*overrides: str, hours: float = 1.0, autoscale: bool = False) -> Scenario:
    """The baseline scenario, shortened (a few thousand tasks) for fast model tests.

    Autoscaling is off unless asked for, so tests of dispatch and records see
    a fixed fleet; the autoscaler has tests of its own.
    """
    return load_scenario(
        SCENARIOS / "baseline_200.yaml",
        [
            f"duration={hours}h",
            "warmup=10m",
            f"scaling.auto_scale.enabled={str(autoscale).lower()}",
            *overrides,
        ],
    )


def assert_conserved(result: Any) -> None:
    """Every task submitted is accounted for: completed, failed, shed or still in flight."""
    counts = result.counts
    assert counts["lost"] == 0
    assert (
        counts["submitted"]
        == counts["completed"] + counts["failed"] + counts["shed"] + counts["in_flight"]
    )


def quantile_band(values: np.ndarray, q: float, z: float) -> tuple[float, float]:
    """A distribution-free confidence band of the *q* quantile of *values* (z: 1.96 for 95 %,
    2.576 for 99 %): the order statistics at ranks n q -+ z sqrt(n q (1 - q)), the count
    below the quantile being binomial."""
    ordered = np.sort(np.asarray(values, dtype=float))
    n = len(ordered)
    half = z * math.sqrt(n * q * (1 - q))
    low = max(0, math.floor(n * q - half) - 1)
    high = min(n - 1, math.ceil(n * q + half))
    return float(ordered[low]), float(ordered[high])
