"""SimPy events per completed task: a budget the hot path must not outgrow.

Covers: the count of scheduled SimPy events per completed task on a short
baseline (everything on: hierarchy, DAGs, autoscaler, alerts, health,
coordinator capacity, metrics) and on the textbook M/M/c mode.

Scenario: speed is measured in ``benchmarks/bench_core.py`` as ratios, never
here; but the number of events a task costs is exact and deterministic (same
scenario and seed, same count), so it can be pinned without flakiness. A
task of the baseline needs four events — its arrival at the chief, its
TASK_ASSIGN delivered to the zone, the hand-over to the agent's slot, the
end of its service — plus a share of DAG transfers and reports, sampling,
health and control ticks; the textbook mode drops the network (arrival,
wake-up, service: the lean reference's ~3). A change that turns a callback
back into a process, or adds a relay event per message, shows up here.
"""

from __future__ import annotations

from support import SCENARIOS, short_baseline

from sim.model.engine import run_scenario
from sim.scenario.load import load_scenario

#: Events per completed task on the 1 h baseline (4.17 when set; the bare minimum is 4).
BASELINE_BUDGET = 4.25
#: Events per completed task of the textbook M/M/c (3.00 when set; the lean model's ~2.9).
TEXTBOOK_BUDGET = 3.05


def test_baseline_events_per_task_within_budget() -> None:
    result = run_scenario(short_baseline(autoscale=True))
    completed = result.counts["completed"]
    assert completed > 8000  # a real hour of the fleet, not an empty run
    per_task = result.sim_events / completed
    assert 4.0 <= per_task <= BASELINE_BUDGET, f"{per_task:.3f} events per task"


def test_textbook_events_per_task_within_budget() -> None:
    scenario = load_scenario(SCENARIOS / "mmc_validation.yaml", ["duration=1h", "warmup=10m"])
    result = run_scenario(scenario)
    completed = result.counts["completed"]
    assert completed > 9000
    per_task = result.sim_events / completed
    assert per_task <= TEXTBOOK_BUDGET, f"{per_task:.3f} events per task"


def test_event_count_is_deterministic() -> None:
    """The count is a property of scenario and seed, so the budget cannot be flaky."""
    first = run_scenario(short_baseline(hours=0.25))
    second = run_scenario(short_baseline(hours=0.25))
    assert first.sim_events == second.sim_events
    assert first.events_sha256 == second.events_sha256
