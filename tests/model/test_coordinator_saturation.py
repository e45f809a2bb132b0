"""Coordinators as a resource: queueing at the chief, and the hierarchy against a flat design.

The full study is scenarios/coordinator_saturation.yaml (200 to 20,000 agents,
spec-sized coordinators). Here it runs reduced: shorter, smaller fleets, and
coordinators that spend 8 ms of CPU per message, so the same bend shows up at
a size the suite can afford.
"""

from __future__ import annotations

import pytest
from support import SCENARIOS

from sim.runner import run
from sim.scenario.load import load_scenario

#: Tasks per specialist per minute, the baseline's (156 tasks/min over 173 specialists).
PER_AGENT = 156.0 / 173
CPU_MS = 8.0
HEARTBEAT_S, STATUS_S, VCPU = 10.0, 30.0, 4.0


def study(design: str, specialists: int) -> dict[str, float]:
    scenario = load_scenario(
        SCENARIOS / "coordinator_saturation.yaml",
        [
            "duration=6m",
            "warmup=2m",
            f"coordination.design={design}",
            f"coordination.message_cpu_ms={CPU_MS}",
            f"topology.specialists={specialists}",
            f"workload.arrivals.rate_per_min={PER_AGENT * specialists:.3f}",
            "variants={}",
        ],
    )
    summary = run(scenario).summary
    return {
        "dispatch_p50": summary["dispatch_s"]["p50"],
        "dispatch_p99": summary["dispatch_s"]["p99"],
        "chief": summary["coordination"]["chief_utilization"],
        "zone": summary["coordination"]["zone_utilization_max"],
        "lost": summary["tasks"]["lost"],
    }


@pytest.mark.slow
def test_flat_design_saturates_the_chief_where_the_hierarchy_does_not() -> None:
    sizes = (200, 1000, 2500)
    hier = {n: study("hierarchical", n) for n in sizes}
    flat = {n: study("flat", n) for n in sizes}
    cost = CPU_MS / 1000 / VCPU
    for n in sizes:
        assert hier[n]["lost"] == 0 and flat[n]["lost"] == 0
        # Flat: the chief carries every heartbeat and status poll; its load is at least that.
        background = n * (1 / HEARTBEAT_S + 2 / STATUS_S) * cost
        assert flat[n]["chief"] >= background * 0.99
        # ... plus two to four messages per task (assign, complete, pulls).
        tasks_per_s = PER_AGENT * n / 60
        assert flat[n]["chief"] <= background + 4.5 * tasks_per_s * cost
        # Hierarchical: the chief sees two messages per task and four zones' heartbeats.
        assert hier[n]["chief"] < flat[n]["chief"]
    # Flat at 2,500 specialists: 2,500 x (0.1 + 0.067) x 2 ms = 83 % background, and the
    # task traffic on top: the chief is nearly saturated and dispatch has bent.
    assert flat[2500]["chief"] > 0.9
    assert flat[2500]["dispatch_p99"] > 2 * hier[2500]["dispatch_p99"]
    assert flat[1000]["dispatch_p99"] < 1.1 * hier[1000]["dispatch_p99"]  # not yet at 1,000
    # The hierarchy spreads the same traffic: its busiest coordinator is far from full and
    # its dispatch time hardly moves with the fleet.
    assert max(hier[2500]["chief"], hier[2500]["zone"]) < 0.25
    assert hier[2500]["dispatch_p50"] < 1.1 * hier[200]["dispatch_p50"]
