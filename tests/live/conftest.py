"""Fixtures for the live tests: a real nats-server on a free loopback port, a tmp store."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.live.cancel import run_bounded
from sim.live.memory_broker import MemoryBroker
from sim.live.runtime import LiveOptions, LiveRun, live_run
from sim.live.transport import CALL, CALL_ANSWERED, EmbeddedServer
from sim.metrics.store import atomic_write_text, write_parquet
from sim.runner import Outcome, write_outputs
from sim.scenario.load import load_scenario, scenario_yaml
from sim.scenario.schema import Scenario

HERE = Path(__file__).parent


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "store")
    server.start()
    yield server
    server.stop()


def agents_answer_calls(broker: MemoryBroker, dead: set[str] | None = None) -> set[str]:
    """The memory broker's agents answer their coordinator's calls, but those in *dead*.

    A real agent answers on its control subject (``sim.live.agent``); the tests
    that play agents through the memory broker answer for them here. Returns the
    set of dead agents, for the test to add a kill to.
    """
    dead = set() if dead is None else dead

    def answer(subject: str, data: bytes) -> bytes | None:
        alive = subject.removeprefix("orch.ctl.") not in dead
        return CALL_ANSWERED if data == CALL and alive else None

    broker.responders["orch.ctl.*"] = answer
    return dead


def no_task_waited_on_a_dead_agent(tasks: Any) -> None:
    """No task sat on a dead agent's subject until the detector declared it.

    The zone coordinator's call to a dead agent fails at once and the task goes
    elsewhere as the same attempt, as in the simulator (``policies.circuit_breaker``),
    so every attempt past the first follows one that started (and was lost).
    """
    for row in tasks[tasks["attempt"] > 1].itertuples(index=False):
        earlier = tasks[(tasks["task_id"] == row.task_id) & (tasks["attempt"] == row.attempt - 1)]
        assert len(earlier) == 1, f"task {row.task_id} waited on a dead agent"


def small(*overrides: str) -> Scenario:
    return load_scenario(HERE / "small.yaml", list(overrides))


@pytest.fixture(autouse=True)
def _collect_at_each_end() -> Iterator[None]:
    """Collect garbage as each test ends, so what a test left behind — a task its loop
    abandoned, a coroutine never awaited — is reported against that test, not whichever
    later test a collection happens to run in. What survives is frozen (``gc.freeze``):
    the next collection looks at the next test's objects only, not again at every module,
    frame and table loaded so far (29 s of the lane's 520 s were teardowns; on 59 tests,
    4.5 s of them became under 0.1 s)."""
    yield
    gc.collect()
    gc.freeze()


def run_live(scenario: Scenario, tmp_path: Path, **options: Any) -> LiveRun:
    """A live run on an embedded broker whose store lives in *tmp_path*.

    The lag budget is two health intervals rather than half of one: these tests
    check what the run decides, on a CI machine shared with other test workers,
    and must not stop because a neighbour took the CPU for a while. The
    verdict itself is tested, with the default budget, in test_lag.py.
    """
    options.setdefault("lag_budget", 2.0)
    settings = LiveOptions(store_dir=tmp_path / "store", log_dir=tmp_path / "logs", **options)
    return run_bounded(live_run(scenario, settings))


def write_live_dir(live: LiveRun, scenario: Scenario, out: Path) -> Path:
    """*live*'s directory as ``orchestra live run`` writes it: what calibrate reads."""
    write_outputs(Outcome(live.summary, [live.result]), out, report=False)
    atomic_write_text(out / "scenario.yaml", scenario_yaml(scenario))
    assert live.drained is not None
    write_parquet(out / "drained.parquet", live.drained)
    return out


def detection_bound(run: LiveRun, scenario: Scenario) -> float:
    """Latest detection after a kill, in scenario seconds: the simulator's bound on the run's clock.

    A missed check is counted at each health round, so the bound is the threshold's
    rounds plus one round of phase. On the wall clock a round also comes as late as the
    coordinator's event loop ran behind (measured: ``lag.event_loop_s``), and a round
    the coordinator judged too late to trust declares no one (``abstained_rounds``):
    each of those pushes a detection back by one interval. Both are the run's own
    measurements, so the bound is exact on a quiet machine and honest on a loaded one.
    """
    health = scenario.health
    abstained = int(run.summary["live"]["lag"]["abstained_rounds"])
    slack = worst_stall(run) + abstained * health.interval
    return health.threshold * health.interval + health.interval + slack


def worst_stall(run: LiveRun) -> float:
    """The run's worst stall of the coordinator's event loop, in scenario seconds (its own
    measurement, ``lag.event_loop_s``)."""
    return float(run.summary["live"]["lag"]["event_loop_s"]["max"])


def timing_slack(run: LiveRun, scale: float) -> float:
    """How far a wall-clock instant of the run may stray, in scenario seconds: a tenth of a
    wall second at *scale*, plus the run's worst stall of the coordinator's event loop (its
    own measurement, ``lag.event_loop_s``). A fresh-clone CI run saw a chaos event 0.15 wall
    s late at x40 and a slowed agent's service 0.46 wall s long at x30, with the simulator
    lane beside them: exact on a quiet machine, honest on a loaded one."""
    return 0.1 * scale + worst_stall(run)


def exactly_once(run: LiveRun) -> None:
    """Every submitted task completed exactly once: by the duration, or while the run drained.

    The tables stop at the duration as a simulation's do, so a task that ended
    after it is an ``in_flight`` row there and a row of ``run.drained``.
    """
    tasks, counts, drained = run.result.tasks, run.summary["tasks"], run.drained
    assert drained is not None
    assert counts["submitted"] > 0 and counts["lost"] == 0 and counts["failed"] == 0, counts
    assert run.summary["drained"]["unfinished"] == 0
    done = tasks[tasks["outcome"] == "completed"]
    assert done["task_id"].is_unique and drained["task_id"].is_unique
    assert not set(done["task_id"]) & set(drained["task_id"])
    assert (drained["outcome"] == "completed").all()
    assert len(done) == counts["completed"] and len(drained) == counts["in_flight"], counts
    assert counts["completed"] + len(drained) == counts["submitted"]
    assert set(tasks["task_id"]) <= set(done["task_id"]) | set(drained["task_id"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Live tests run one at a time (one xdist worker): each is a broker, a coordinator and
    agents on the wall clock, and two at once on a 2-core machine starve each other — the
    lag they then measure is the neighbour's, not the code's. (``make test`` runs them in
    a lane of their own, beside the rest at a lower priority: tests/run_two_lanes.sh. The
    group keeps a hand-run ``pytest -n 2 --dist loadgroup`` of the whole suite safe too.)"""
    live = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == live:
            item.add_marker(pytest.mark.xdist_group("live"))
