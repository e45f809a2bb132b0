"""The live shell's own lag never reads as an agent's death; an impossible time-scale stops.

Real nats-server and agent processes: what is tested is how the coordinator
and the runtime behave when the machine (here: a deliberately blocked event
loop, or a time-scale no machine sustains) cannot keep the scenario's pace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import HERE, exactly_once, run_live, small

from sim.live.lag import LagBudget, LagMonitor


def test_a_coordinator_stalled_longer_than_an_interval_mid_round_detects_no_one(
    tmp_path: Path,
) -> None:
    """Every health round from 60 s to 150 s blocks the loop 1.5 intervals after its read.

    Judged at the time they were judged, every heartbeat of those rounds would be
    a failed check (three in a row: the whole fleet declared dead); judged at
    the time the coordinator asked for them, they are fresh.
    """
    scenario = small(
        "duration=4m",
        "topology.specialists=6",
        "workload.arrivals.rate_per_min=30",
    )
    scale = 30.0
    stall_wall = 1.5 * scenario.health.interval / scale
    run = run_live(scenario, tmp_path, time_scale=scale, loop_stalls=((60.0, 150.0, stall_wall),))
    exactly_once(run)
    events = run.result.events
    assert (events["kind"] == "agent_detected").sum() == 0
    assert (events["kind"] == "pool_evacuated").sum() == 0
    lag = run.summary["live"]["lag"]
    # The stalls were measured: the event loop woke about a stall late at least once.
    assert lag["event_loop_ms"]["max"] >= 0.8 * stall_wall * 1000.0
    assert lag["event_loop_s"]["max"] >= 0.8 * stall_wall * scale
    assert lag["event_loop_ms"]["p99"] <= lag["event_loop_ms"]["max"]
    assert lag["heartbeat_age_ms"]["count"] > 0 and lag["follow_s"]["count"] > 0


def test_an_impossible_time_scale_ends_with_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "sim",
        "live",
        "run",
        str(HERE / "small.yaml"),
        "--agents",
        "2",
        "--time-scale",
        "100000",
        "--duration",
        "10m",
        "--grace",
        "20",
        "--out",
        str(out),
        "--quiet",
    ]
    # Its own process group: should it hang, the broker it started goes down with it.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    assert process.returncode != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "cannot keep up at --time-scale 100000" in lines[0]
    assert "largest time-scale it sustains is about" in lines[0]
    assert "Traceback" not in stdout + stderr
    assert not (out / "summary.json").exists()  # no meaningless run written


def test_the_verdict_is_a_sustained_median_not_a_blip() -> None:
    """A stall once in a while moves the window's median little; a slow loop moves it for good."""
    budget = LagBudget.for_interval(60.0, 10.0)  # 5 s scenario = 83 ms wall; window 5 s
    monitor = LagMonitor(budget)
    wall = 0.0
    for n in range(200):  # 10 s of ticks every 50 ms, a 1 s stall every second
        monitor.loop(1.0 if n % 20 == 0 else 0.001)
        wall += 0.05
        monitor.tick(wall)
        assert monitor.behind(wall) is None
    for _ in range(40):  # then every wake 200 ms late, for 2 s
        monitor.loop(0.2)
        wall += 0.25
        monitor.tick(wall)
    message = monitor.behind(wall)
    assert message is not None
    assert "cannot keep up at --time-scale 60" in message
    # 5 s of budget over 0.2 wall s of lag: a time-scale of 25 would have kept up.
    assert "sustains is about 25 " in message
    assert "\n" not in message


def test_the_verdict_says_when_and_what_fell_behind() -> None:
    """A backlog of messages and a starved loop need different remedies: the message names
    the source of most of the window's lag, and the scenario second it was judged at."""
    budget = LagBudget.for_interval(10.0, 10.0)  # 5 s scenario = 0.5 wall s; window 6 s
    monitor = LagMonitor(budget)
    wall = 0.0
    for n in range(200):
        monitor.loop(0.01)
        monitor.follow(7.0 if n >= 40 else 0.1)  # scenario s: 0.7 wall s once the backlog grows
        wall += 0.05
        monitor.tick(wall)
    message = monitor.behind(wall, scenario_s=362.4)
    assert message is not None and "\n" not in message
    assert "behind at 362 s," in message
    assert "mostly stream messages handled late after their time stamps" in message
    loop_only = LagMonitor(budget)
    for n in range(200):
        loop_only.loop(0.7)
        loop_only.tick(n * 0.05)
    assert "mostly its event loop waking late" in (loop_only.behind(199 * 0.05) or "")


def test_a_false_detection_while_the_fleet_comes_up_says_so() -> None:
    """Health checks run while a large fleet starts, before scenario time 0: a verdict
    then is named as such (a full fleet at x60 read "at -216 s", which said nothing)."""
    monitor = LagMonitor(LagBudget.for_interval(60.0, 10.0))
    monitor.false_detections.append(("D-Integration-001", -216.4))
    message = monitor.behind(1.0)
    assert message is not None and "\n" not in message
    assert "first D-Integration-001 at 216 s before the start, as the fleet came up" in message
    monitor.false_detections[:] = [("A-CodeGen-002", 75.2)]
    assert "first A-CodeGen-002 at 75 s;" in (monitor.behind(1.0) or "")


def test_phi_accrual_live_detects_the_killed_agents_and_no_one_else(tmp_path: Path) -> None:
    """``health.detector: phi_accrual`` live: φ on the heartbeats' own times, not three checks."""
    scenario = small(
        "duration=5m",
        "topology.specialists=8",
        "workload.arrivals.rate_per_min=30",
        "health.detector=phi_accrual",
        'chaos=[{"at": "2m", "kill": {"category": "CodeGen", "count": 2}}]',
    )
    run = run_live(scenario, tmp_path, time_scale=20.0)
    exactly_once(run)
    events = run.result.events
    failed = events[events["kind"] == "agent_failed"]
    detected = events[events["kind"] == "agent_detected"]
    assert sorted(detected["subject"]) == sorted(failed["subject"]) and len(failed) == 2
    interval = scenario.health.interval
    kill = float(failed["time_s"].min())
    reasons = [json.loads(str(d))["reason"] for d in detected["detail"]]
    assert all(r.startswith("phi ") for r in reasons), reasons  # φ judged, not three checks
    for row in detected.itertuples(index=False):
        # φ needs the gap to pass mean + ~5.6 std of the seen intervals (10 s ± the rounds'
        # quantisation); three checks would declare at 3 intervals, φ later but within 6.
        assert 0 < float(row.time_s) - kill <= 6 * interval, row
