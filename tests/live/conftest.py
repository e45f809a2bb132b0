"""Fixtures for the live tests: a real nats-server on a free loopback port, a tmp store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.live.runtime import LiveOptions, LiveRun, live_run
from sim.live.transport import EmbeddedServer
from sim.scenario.load import load_scenario
from sim.scenario.schema import Scenario

HERE = Path(__file__).parent


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "store")
    server.start()
    yield server
    server.stop()


def small(*overrides: str) -> Scenario:
    return load_scenario(HERE / "small.yaml", list(overrides))


def run_live(scenario: Scenario, tmp_path: Path, **options: Any) -> LiveRun:
    """A live run on an embedded broker whose store lives in *tmp_path*.

    The lag budget is two health intervals rather than half of one: these tests
    check what the run decides, on a CI machine shared with other test workers,
    and must not stop because a neighbour took the CPU for a while. The
    verdict itself is tested, with the default budget, in test_lag.py.
    """
    options.setdefault("lag_budget", 2.0)
    settings = LiveOptions(store_dir=tmp_path / "store", log_dir=tmp_path / "logs", **options)
    return asyncio.run(live_run(scenario, settings))


def exactly_once(run: LiveRun) -> None:
    """Every submitted task completed, and exactly one completed row per task id."""
    tasks = run.result.tasks
    counts = run.summary["tasks"]
    assert counts["completed"] == counts["submitted"] > 0, counts
    assert counts["in_flight"] == 0 and counts["lost"] == 0 and counts["failed"] == 0
    done = tasks[tasks["outcome"] == "completed"]
    assert done["task_id"].is_unique
    assert set(done["task_id"]) == set(tasks["task_id"])
    assert len(done) == counts["submitted"]
