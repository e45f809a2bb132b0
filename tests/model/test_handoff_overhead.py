"""``coordination.handoff_overhead``: a freed slot takes queued work that much later.

Calibration sets it from a live run (``sim.analysis.calibrate_handoff``), so
the model must charge it on exactly the path it was measured on: a slot that
pulls waiting work, not a task handed to an idle agent on arrival.
"""

from __future__ import annotations

import pytest
from support import SCENARIOS

from sim.analysis.calibrate_handoff import handoff_gaps
from sim.model.engine import run_scenario
from sim.scenario.load import load_scenario

#: The textbook M/M/c, small and busy: every hand-off is the pull alone (no network, no
#: coordinator queues), so the gaps are exactly the overhead.
BUSY_MMC = [
    "duration=2h",
    "warmup=0s",
    "topology.specialists=10",
    "workload.arrivals.rate_per_min=9.5",
    "workload.service.mean=60s",
]


def _gaps_and_waits(overhead: float) -> tuple[list[float], float]:
    scenario = load_scenario(
        SCENARIOS / "mmc_validation.yaml",
        [*BUSY_MMC, f"coordination.handoff_overhead={overhead}"],
    )
    tasks = run_scenario(scenario).tasks
    done = tasks[tasks["outcome"] == "completed"]
    return handoff_gaps(tasks).tolist(), float(done["wait_s"].mean())


def test_every_pull_of_queued_work_waits_the_overhead_and_nothing_else_does() -> None:
    none, wait_without = _gaps_and_waits(0.0)
    some, wait_with = _gaps_and_waits(2.5)
    assert len(none) > 200 and len(some) > 200  # ρ = 0.95: most starts follow a queue
    assert max(none) == 0.0
    assert min(some) == pytest.approx(2.5) and max(some) == pytest.approx(2.5)
    # Each slot loses 2.5 s a task to the hand-off (4 % of a 60 s service at ρ 0.95):
    # the queue drains slower, so waits grow.
    assert wait_with > wait_without


def test_work_handed_to_an_idle_agent_pays_no_hand_off() -> None:
    scenario = load_scenario(
        SCENARIOS / "mmc_validation.yaml",
        [*BUSY_MMC, "workload.arrivals.rate_per_min=1", "coordination.handoff_overhead=2.5"],
    )
    tasks = run_scenario(scenario).tasks
    free = tasks[(tasks["outcome"] == "completed") & (tasks["queue_s"] <= 0)]
    assert len(free) > 50
    assert float((free["start_s"] - free["arrival_s"]).max()) == 0.0
