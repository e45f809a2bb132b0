"""Helpers shared by the test modules (importable as ``support``)."""

from __future__ import annotations

import os
from pathlib import Path

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
