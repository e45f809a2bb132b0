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

Python calls per task are the same kind of count one level down: the calls
into the product's own functions (``sim/``, not the libraries') while a run
goes, per completed task — exact for a scenario and seed, whatever the
machine or the hash seed. Flattened twice, the hot path's time is mostly
those calls and what they do; a change that adds one per task (a helper on
the dispatch path, a wrapper around a record) shows up here, and re-pins the
budget with its reason, as a change that moves an event re-pins
``events_sha256``.
"""

from __future__ import annotations

import cProfile
import pstats
from pathlib import Path
from typing import Any

from support import SCENARIOS, short_baseline

import sim
from sim.model.engine import run_scenario
from sim.scenario.load import load_scenario

#: Events per completed task on the 1 h baseline (4.17 when set; the bare minimum is 4).
BASELINE_BUDGET = 4.25
#: Events per completed task of the textbook M/M/c (3.00 when set; the lean model's ~2.9).
TEXTBOOK_BUDGET = 3.05
#: Calls into sim/ per completed task, 1 h runs (42.94 and 60.12 when set, 2026-12-07;
#: the baseline's 60.79 after that day's sessions, and 60.80 since every autoscaler
#: evaluation is a row of scaling.parquet: one call each, 59 an hour, off the hot path).
TEXTBOOK_CALLS_BUDGET = 43.5
BASELINE_CALLS_BUDGET = 61.0
PACKAGE = str(Path(sim.__file__).parent) + "/"


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


def _calls_per_task(scenario: Any) -> float:
    """Calls into the product's own functions per completed task, over the whole run.

    Counted on a second run of the scenario: the first imports what the run
    imports lazily, whose module bodies are calls too, and which of them an
    earlier test in the same process already imported depends on the order
    the tests ran in (0.02 a task apart).
    """
    run_scenario(scenario)
    profile = cProfile.Profile()
    profile.enable()
    result = run_scenario(scenario)
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    ours = sum(row[1] for (path, _, _), row in stats.items() if path.startswith(PACKAGE))
    return float(ours) / result.counts["completed"]


def test_python_calls_per_task_within_budget() -> None:
    textbook = load_scenario(SCENARIOS / "mmc_validation.yaml", ["duration=1h", "warmup=10m"])
    per_task = _calls_per_task(textbook)
    assert 30 < per_task <= TEXTBOOK_CALLS_BUDGET, f"{per_task:.2f} calls per task"
    per_task = _calls_per_task(short_baseline(autoscale=True))
    assert 45 < per_task <= BASELINE_CALLS_BUDGET, f"{per_task:.2f} calls per task"
