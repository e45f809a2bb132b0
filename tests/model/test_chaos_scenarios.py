"""Every shipped chaos scenario runs with conservation intact, and shows what it is about."""

from __future__ import annotations

import json

import pytest
from support import FULL, SCENARIOS, assert_conserved

from sim.model.engine import run_scenario
from sim.scenario.load import load_scenario


def _run(name: str, *overrides: str):
    return run_scenario(load_scenario(SCENARIOS / f"{name}.yaml", list(overrides)))


def test_zone_outage() -> None:
    result = _run("zone_outage", "duration=4h")
    kinds = set(result.events["kind"])
    assert {"zone_outage", "agent_detected", "zone_redistributed", "zone_restored"} <= kinds
    assert_conserved(result)


def test_leader_crash() -> None:
    result = _run("leader_crash", "duration=4h30m")
    elected = result.events[result.events["kind"] == "leader_elected"]
    assert len(elected) == 1  # the follower crash at 4 h costs no election
    assert json.loads(elected["detail"].iloc[0])["downtime_s"] < 1.0
    assert_conserved(result)


def test_partition() -> None:
    """The lone leader steps down and the majority side, every zone with it, elects
    another: dispatch pauses for the election only, and no zone is cut off."""
    result = _run("partition")
    kinds = set(result.events["kind"])
    assert {"partition", "partition_healed", "standby_promoted"} <= kinds
    assert "zone_cut_off" not in kinds
    events = result.events
    split = float(events.loc[events["kind"] == "partition", "time_s"].iloc[0])
    elected = events[(events["kind"] == "leader_elected") & (events["time_s"] >= split)]
    assert elected["subject"].iloc[0] in {"chief-2", "chief-3"}
    assert float(elected["time_s"].iloc[0]) - split < 5.0
    assert_conserved(result)


def test_agent_churn() -> None:
    result = _run("agent_churn", "duration=6h")
    failed = (result.events["kind"] == "agent_failed").sum()
    assert failed > 20  # random failures plus a fifth of CodeGen at 4 h
    assert (result.events["kind"] == "agents_slow").sum() == 1
    assert_conserved(result)


@pytest.mark.slow
def test_chaos_soak() -> None:
    """Two days in full size; 12 hours in `make test`."""
    result = _run("chaos_soak", *([] if FULL else ["duration=12h"]))
    assert (result.events["kind"] == "chaos").sum() > 5
    assert_conserved(result)
