"""Chaos is recorded as it happens and replays to the very same run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import SCENARIOS, short_baseline

from sim.model.engine import run_scenario
from sim.replay import ReplayError, chaos_from_events, load_events, replay_scenario
from sim.runner import run, write_outputs
from sim.world.random_chaos import random_failures
from sim.world.topology import build_world

CHAOS = (
    "chaos=[{at: 15m, kill: {category: CodeGen, fraction: 0.25}, restart_after: 10m},"
    " {at: 25m, zone_outage: C, duration: 10m}, {at: 30m, slow: {zone: A, count: 3, factor: 2},"
    " duration: 5m}, {at: 32m, message_loss: {rate: 0.1}, duration: 2m}]"
)


def test_replaying_the_recorded_chaos_reproduces_the_run_bit_for_bit() -> None:
    original = short_baseline(
        CHAOS,
        "chaos_random.enabled=true",
        "chaos_random.agent_mtbf=6h",
        "chaos_random.agent_mttr=3m",
        hours=0.75,
        autoscale=True,
    )
    first = run_scenario(original)
    timeline = chaos_from_events(first.events)
    assert len(timeline) >= 4
    # Selectors are resolved to the ids they hit (empty when the agent was already gone).
    assert all(e.kill is None or e.kill.category is None for e in timeline)
    # Replay against the scenario without any chaos of its own: same failures, same run.
    bare = short_baseline(hours=0.75, autoscale=True)
    second = run_scenario(replay_scenario(bare, timeline))
    assert second.events_sha256 == first.events_sha256
    assert second.counts == first.counts


def test_a_changed_policy_replays_the_same_failures() -> None:
    first = run_scenario(short_baseline(CHAOS, hours=0.75))
    timeline = chaos_from_events(first.events)
    changed = replay_scenario(
        short_baseline("policies.load_balancing=round_robin", hours=0.75), timeline
    )
    second = run_scenario(changed)
    failed = [
        first.events[first.events["kind"] == "agent_failed"],
        second.events[second.events["kind"] == "agent_failed"],
    ]
    assert list(failed[0]["subject"]) == list(failed[1]["subject"])
    assert list(failed[0]["time_s"]) == list(failed[1]["time_s"])
    assert second.events_sha256 != first.events_sha256
    assert second.counts["lost"] == 0


def test_random_failures_are_seeded_per_component() -> None:
    scenario = short_baseline("chaos_random.enabled=true", "chaos_random.agent_mtbf=2h", hours=3.0)
    world = build_world(scenario, __import__("numpy").random.default_rng(0))
    a = random_failures(scenario, world)
    b = random_failures(scenario, world)
    assert a == b and len(a) > 100
    # Exponential gaps: about duration / MTBF failures per agent (Poisson, 4 sd bound).
    expected = len(world.specialists) * (3 * 3600 - 600) / (2 * 3600 + 600)
    assert abs(len(a) - expected) < 4 * expected**0.5 + 0.1 * expected
    other = random_failures(scenario.model_copy(update={"seed": 43}), world)
    assert other != a


def test_replay_command_compares_with_the_recording(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded"
    outcome = run(short_baseline(CHAOS, hours=0.75))
    write_outputs(outcome, recorded, report=False)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"extends: {SCENARIOS / 'baseline_200.yaml'}\nduration: 45m\nwarmup: 10m\n"
        "scaling: {auto_scale: {enabled: false}}\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim",
            "replay",
            str(recorded),
            str(scenario),
            "--no-report",
            "--out",
            str(tmp_path / "replayed"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "replayed 4 failures" in proc.stdout
    assert "recorded" in proc.stdout and "replay" in proc.stdout
    replayed = json.loads((tmp_path / "replayed" / "summary.json").read_text())
    original = json.loads((recorded / "summary.json").read_text())
    assert replayed["events_sha256"] == original["events_sha256"]


def test_bad_event_logs_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="file not found"):
        load_events(tmp_path / "nothing")
    broken = tmp_path / "events.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(ReplayError, match=r"expected an events\.parquet table"):
        load_events(tmp_path)


def test_random_chaos_alone_breaks_things() -> None:
    result = run_scenario(
        short_baseline("chaos_random.enabled=true", "chaos_random.agent_mtbf=4h", hours=0.5)
    )
    failed = (result.events["kind"] == "agent_failed").sum()
    # 173 agents over 20 minutes at MTBF 4 h: about 14 failures expected.
    assert 3 <= failed <= 40
    assert result.counts["lost"] == 0


def test_random_chief_failures_cause_elections() -> None:
    result = run_scenario(
        short_baseline(
            "chaos_random.enabled=true",
            "chaos_random.agent_mtbf=100d",
            "chaos_random.chief_mtbf=20m",
            "chaos_random.chief_mttr=30s",
            hours=1.5,
        )
    )
    crashes = result.events[result.events["kind"] == "coordinator_crash"]
    assert len(crashes) >= 3  # three chiefs over 80 minutes at MTBF 20 m
    leader_losses = crashes["detail"].str.contains('"leader":true').sum()
    assert (result.events["kind"] == "leader_elected").sum() == leader_losses
    assert result.counts["lost"] == 0
