"""Calibrated detection: the replay declares each failed agent when the recorded run did.

The recorded run here is the simulator's own at another seed (other drawn
check phases), so the end-to-end check needs no live fleet; the real-NATS
version is in ``tests/live/test_live_run.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis.calibrate_detection import detection_phases, fitted_phase
from sim.cli import main
from sim.runner import run
from sim.scenario.health import Health
from sim.scenario.load import load_scenario
from sim.world.policy_set import check_phases, failure_detector

ROOT = Path(__file__).resolve().parents[2]
VICTIMS = ["A-CodeGen-001", "B-CodeGen-002", "C-Review-001", "D-Test-001", "B-Design-001"]


@pytest.mark.parametrize("detector", ["consecutive", "phi_accrual"])
@settings(max_examples=25, deadline=None)
@given(
    interval=st.floats(2.0, 60.0),
    threshold=st.integers(1, 5),
    timeout_share=st.floats(0.0, 0.9),
    failed_s=st.floats(0.0, 5_000.0),
    phase_share=st.floats(0.0, 0.999),
)
def test_the_fitted_phase_declares_the_agent_when_the_recording_did(
    detector: str,
    interval: float,
    threshold: int,
    timeout_share: float,
    failed_s: float,
    phase_share: float,
) -> None:
    health = Health(
        detector=detector,  # type: ignore[arg-type]
        interval=interval,
        threshold=threshold,
        timeout=timeout_share * interval,
    )
    true_phase = phase_share * interval
    declared_s = failure_detector(health, lambda _a: true_phase).detection_time("x", failed_s)
    phase = fitted_phase("x", failed_s, declared_s, health)
    assert 0.0 <= phase < interval
    again = failure_detector(health, lambda _a: phase).detection_time("x", failed_s)
    assert again == pytest.approx(declared_s, abs=1e-3)


def test_a_declaration_no_phase_can_give_is_fitted_to_the_nearest_one() -> None:
    """Live declared an agent a check later than the spec's rule can (its round abstained
    on a late wake-up): the latest declaration the rule gives, a phase just before the
    failure's, is the nearest."""
    health = Health(interval=10.0, threshold=3, timeout=2.0)
    phase = fitted_phase("x", 100.0, 140.0, health)  # the rule's latest: just under 132 s
    declared = failure_detector(health, lambda _a: phase).detection_time("x", 100.0)
    assert 131.9 < declared < 132.0


def test_pinned_phases_move_no_other_agents_draw() -> None:
    drawn = check_phases(np.random.default_rng(3), 10.0)
    pinned = check_phases(np.random.default_rng(3), 10.0, {"a": 2.5})
    assert pinned("a") == 2.5 and drawn("a") != 2.5
    assert [pinned(f"b{n}") for n in range(20)] == [drawn(f"b{n}") for n in range(20)]


def kills(seed: int, *more: str) -> list[str]:
    return [
        f"seed={seed}",
        "duration=8m",
        f'chaos=[{{"at": "3m", "kill": {{"agents": {VICTIMS!r}}}}}]'.replace("'", '"'),
        *more,
    ]


def declared(events: pd.DataFrame) -> dict[str, float]:
    rows = events[events["kind"] == "agent_detected"]
    return dict(zip(rows["subject"].astype(str), rows["time_s"].astype(float), strict=True))


def replaced(events: pd.DataFrame) -> list[str]:
    return list(events.loc[events["kind"] == "agent_replaced", "subject"].astype(str))


@pytest.mark.parametrize("detector", ["consecutive", "phi_accrual"])
def test_the_replay_declares_and_replaces_the_same_agents_in_the_same_order(
    detector: str,
) -> None:
    """A run at seed 1 stands for live; its replay runs at seed 2, whose drawn phases
    declare the five killed agents at other instants and in another order. Pinned to the
    fitted phases, the replay declares each when the recording did, and replaces them in
    its order."""
    scenario_path = ROOT / "scenarios" / "baseline_200.yaml"
    more = (f"health.detector={detector}",)
    recorded = run(load_scenario(scenario_path, kills(1, *more))).results[0]
    before = run(load_scenario(scenario_path, kills(2, *more))).results[0]
    assert declared(before.events) != pytest.approx(declared(recorded.events), abs=1e-3)
    assert replaced(before.events) != replaced(recorded.events)

    replay = load_scenario(scenario_path, kills(2, *more))
    phases = detection_phases(recorded.events, recorded.agents, before.events, replay.health)
    assert sorted(phases) == sorted(VICTIMS)
    pinned = replay.model_copy(
        update={"health": replay.health.model_copy(update={"phases": phases})}
    )
    after = run(pinned).results[0]
    assert declared(after.events) == pytest.approx(declared(recorded.events), abs=1e-3)
    assert replaced(after.events) == replaced(recorded.events)


def test_a_phase_outside_the_interval_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"extends: {ROOT / 'scenarios' / 'baseline_200.yaml'}\n"
        "health: {interval: 10s, phases: {A-CodeGen-001: 12.5}}\n"
    )
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "health" in err and "phases.A-CodeGen-001" in err and "12.5" in err
