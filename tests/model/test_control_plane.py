"""The chiefs' Raft group in the model: dispatch waits for a leader, nothing is lost."""

from __future__ import annotations

import json

from support import short_baseline

from sim.model.engine import Simulation, run_scenario


def _kinds(result, kind):
    return result.events[result.events["kind"] == kind]


def test_a_healthy_group_costs_no_events_and_adds_the_commit_to_dispatch() -> None:
    sim = Simulation(short_baseline(hours=0.3))
    result = sim.run()
    assert sim.control_plane.leader == 1
    assert sim.control_plane.elections == 0
    assert not sim.control_plane.detailed
    done = result.tasks[(result.tasks["outcome"] == "completed") & (result.tasks["job_id"] < 0)]
    # Chief -> zone A: gRPC 0.5 ms + 0.5 ms, plus the WAL commit: 1 ms RTT + 1 ms fsync.
    unqueued = done[(done["zone"] == "A") & (done["home_zone"] == "A") & (done["queue_s"] == 0)]
    assert (unqueued["start_s"] - unqueued["arrival_s"]).median() > 0.002


def test_leader_crash_elects_a_new_leader_and_dispatch_resumes() -> None:
    result = run_scenario(
        short_baseline("chaos=[{at: 20m, coordinator_crash: leader, restart_after: 1m}]", hours=0.5)
    )
    crashed = _kinds(result, "coordinator_crash")
    elected = _kinds(result, "leader_elected")
    assert len(crashed) == 1 and len(elected) == 1
    downtime = json.loads(elected["detail"].iloc[0])["downtime_s"]
    # A follower's timeout (150-300 ms) minus the heartbeat it already waited, plus a vote round.
    assert 0.150 - 0.050 <= downtime <= 0.300 + 0.050
    assert elected["subject"].iloc[0] != "chief-1"
    # Work that arrived while nobody led was held, then dispatched.
    tasks = result.tasks
    window = tasks[(tasks["arrival_s"] >= 1200) & (tasks["arrival_s"] < 1200 + downtime)]
    started = window.dropna(subset=["start_s"])
    assert (started["start_s"] >= 1200 + downtime).all()
    assert result.counts["lost"] == 0
    summary_like = _kinds(result, "election")
    assert len(summary_like) >= 1


def test_a_minority_partition_cannot_lead() -> None:
    result = run_scenario(
        short_baseline(
            "chaos=[{at: 20m, partition: {groups: [[chief-1], [chief-2, chief-3]]}, duration: 2m}]",
            hours=0.5,
        )
    )
    elections = _kinds(result, "election")
    winners = set(elections["subject"])
    assert winners <= {"chief-2", "chief-3"}  # the isolated leader never wins again while cut off
    assert len(_kinds(result, "leader_elected")) >= 1
    assert result.counts["lost"] == 0


def test_zone_coordinator_failure_promotes_the_standby() -> None:
    result = run_scenario(
        short_baseline("chaos=[{at: 20m, coordinator_crash: C-coord}]", hours=0.5)
    )
    promoted = _kinds(result, "standby_promoted")
    assert len(promoted) == 1
    downtime = json.loads(promoted["detail"].iloc[0])["downtime_s"]
    assert 20 + 15 <= downtime <= 32 + 15  # detection (3 checks) plus the promotion time
    tasks = result.tasks
    later = tasks[(tasks["zone"] == "C") & (tasks["dispatch_s"] > 1200 + downtime + 1)]
    assert len(later) > 0  # the zone serves again through its new coordinator
    assert result.counts["lost"] == 0
