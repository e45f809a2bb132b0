"""Every past bug the chaos tests found, kept as a named scenario and run here.

The way etcd keeps each past bug as a named robustness target: a failure a
random-chaos property test once found becomes ``scenarios/regressions/NAME.yaml``
(its comment says what broke and which commit fixed it), and this module runs
every file in that folder. Each must keep task conservation (the engine raises
when it breaks), never record a task completed twice, and meet the expectation
stated for it below — a scenario added without one fails, so no regression is
kept without saying what it guards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from support import SCENARIOS

from sim.metrics.result import RunResult
from sim.model.engine import run_scenario
from sim.scenario.load import load_scenario

REGRESSIONS = sorted((SCENARIOS / "regressions").glob("*.yaml"))


def _kinds(result: RunResult, kind: str) -> pd.DataFrame:
    return result.events[result.events["kind"] == kind]


def _fetch_during_crash(result: RunResult) -> None:
    # The kill hit agents holding work: their tasks were retried, none vanished.
    retried = result.tasks[result.tasks["outcome"] == "retried"]
    assert (retried["reason"] == "agent_failed").sum() > 0
    assert len(_kinds(result, "agent_detected")) == len(_kinds(result, "agent_failed")) > 5


def _overlapping_outages(result: RunResult) -> None:
    # Dark once, back once: when the last outage (the first one) ends at 25 min,
    # not when the shorter one inside it ends at 22 min.
    assert _kinds(result, "zone_outage")["time_s"].tolist() == [900.0]
    assert _kinds(result, "zone_restored")["time_s"].tolist() == [1500.0]
    tasks = result.tasks
    in_b = tasks[(tasks["zone"] == "B") & (tasks["start_s"] > 1320) & (tasks["start_s"] < 1500)]
    assert in_b.empty  # nothing served in B between the inner outage's end and the last's


def _random_chaos_only(result: RunResult) -> None:
    # 173 agents, MTBF 1 h, 20 minutes after warm-up: about 58 failures expected;
    # with no chaos process at all there would be none.
    assert len(_kinds(result, "agent_failed")) > 20


EXPECTATIONS: dict[str, Callable[[RunResult], None]] = {
    "fetch_during_crash": _fetch_during_crash,
    "overlapping_outages": _overlapping_outages,
    "random_chaos_only": _random_chaos_only,
}


def test_the_regressions_folder_is_not_empty() -> None:
    assert {path.stem for path in REGRESSIONS} >= set(EXPECTATIONS)


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_regression_scenario(path: Path) -> None:
    assert path.stem in EXPECTATIONS, f"{path.name}: state what it guards in EXPECTATIONS"
    result = run_scenario(load_scenario(path))
    assert result.counts["lost"] == 0
    tasks = result.tasks
    assert tasks["task_id"][tasks["outcome"] != "retried"].is_unique
    EXPECTATIONS[path.stem](result)
