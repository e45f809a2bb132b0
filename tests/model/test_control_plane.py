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


def test_a_zone_cut_off_from_the_chiefs_is_routed_around_until_the_partition_heals() -> None:
    result = run_scenario(
        short_baseline("chaos=[{at: 20m, partition: {groups: [[D]]}, duration: 10m}]", hours=0.75)
    )
    events = result.events
    assert (events["kind"] == "zone_cut_off").sum() == 1
    assert (events["kind"] == "zone_reconnected").sum() == 1
    assert (events["kind"] == "election").sum() == 0  # the chiefs were not split
    detected = events.loc[events["kind"] == "zone_redistributed", "time_s"].iloc[0]
    tasks = result.tasks
    routed = tasks[(tasks["home_zone"] == "D") & (tasks["arrival_s"] > detected + 1)]
    routed = routed[routed["arrival_s"] < 1800]
    assert len(routed) > 0 and (routed["zone"] != "D").all()
    # D's agents kept serving what they held: nothing of theirs was retried.
    assert (tasks["reason"] == "agent_failed").sum() == 0
    back = tasks[(tasks["home_zone"] == "D") & (tasks["arrival_s"] > 1800 + 5)]
    assert (back["zone"] == "D").any()
    assert result.counts["lost"] == 0


def test_chiefs_and_zones_partitioned_together() -> None:
    """{chief-1, A} | {chief-2, chief-3, rest}: chief-1 loses the lead, A is cut off."""
    result = run_scenario(
        short_baseline(
            "chaos=[{at: 20m, partition: {groups: [[chief-1, A]]}, duration: 5m}]", hours=0.5
        )
    )
    events = result.events
    assert set(events.loc[events["kind"] == "zone_cut_off", "subject"]) == {"A"}
    winners = set(events.loc[events["kind"] == "election", "subject"])
    assert winners and winners <= {"chief-2", "chief-3"}
    assert result.counts["lost"] == 0


def test_every_message_mode_puts_each_assignment_through_the_log() -> None:
    sim = Simulation(short_baseline("topology.control_plane.every_message=true", hours=0.2))
    result = sim.run()
    plane = sim.control_plane
    leader = plane.nodes[plane.leader]
    independent = int((result.tasks["job_id"] < 0).sum())
    logged = [e.data for e in leader.log.entries() if isinstance(e.data, int)]
    # Every task that reached the chief was appended (DAG nodes released too), in order.
    assert len(logged) >= independent > 100
    assert logged == sorted(logged)
    assert leader.commit_index >= len(logged) - len(plane.held)
    assert result.counts["lost"] == 0
    assert (result.events["kind"] == "election").sum() == 0
