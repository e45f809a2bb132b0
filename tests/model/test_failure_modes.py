"""The failure modes a failure matrix needs, and that Raft predicts the outcome of.

An asymmetric (one-way) partition of the leader and a stall of its WAL disk
are the modes CockroachDB's matrix singles out; each test states what Raft
(with pre-vote and check-quorum, dissertation §6.2 and §9.6) predicts and
checks the simulated chiefs do it. A loss burst on one path is checked to
touch that path only.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from support import short_baseline

from sim.model.engine import Simulation
from sim.scenario.load import ScenarioError, load_scenario
from sim.world.network import Network

AT = 1200.0  # 20 minutes: ten minutes after the warm-up


def _run(chaos: str, *more: str) -> tuple[Simulation, pd.DataFrame]:
    sim = Simulation(short_baseline(f"chaos=[{chaos}]", *more, hours=0.5))
    result = sim.run()
    assert result.counts["lost"] == 0
    return sim, result.events


def _elections(events: pd.DataFrame) -> pd.DataFrame:
    return events[events["kind"] == "election"]


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_a_one_way_partitioned_leader_is_replaced_and_does_not_disrupt(direction: str) -> None:
    """Pre-vote and check-quorum: one election, and the new leader keeps its term after the heal.

    Inbound: the old leader heartbeats but hears no acks, so check-quorum
    steps it down; its pre-votes never raise its term. Outbound: the followers
    stop hearing it and elect; it follows the new leader, whose heartbeats it
    hears. Either way, healing the link changes nothing.
    """
    chaos = (
        f"{{at: {AT}, duration: 60, one_way_partition: {{chief: leader, direction: {direction}}}}}"
    )
    sim, events = _run(chaos)
    elections = _elections(events)
    assert len(elections) == 1
    assert AT < elections["time_s"].iloc[0] < AT + 2.0
    assert elections["subject"].iloc[0] != "chief-1"
    plane = sim.control_plane
    terms = {node.term for node in plane.nodes.values()}
    assert terms == {2}  # nobody's term ran ahead, before or after the heal
    assert plane.leader is not None and plane.leader != 1


def test_without_pre_vote_the_cut_off_leader_disrupts_at_the_heal() -> None:
    """The contrast that shows pre-vote matters: its term runs away and deposes the new leader."""
    chaos = f"{{at: {AT}, duration: 60, one_way_partition: {{chief: leader, direction: inbound}}}}"
    sim, events = _run(chaos, "topology.control_plane.pre_vote=false")
    elections = _elections(events)
    assert len(elections) >= 2
    assert (elections["time_s"] >= AT + 60).any()  # an election caused by the heal
    assert max(node.term for node in sim.control_plane.nodes.values()) > 10


def test_a_stalled_leaders_followers_elect_once_its_heartbeats_stop() -> None:
    """A 5 s fsync blocks the leader's loop: its heartbeats stop, a follower's timeout elects."""
    chaos = f"{{at: {AT}, duration: 30, wal_stall: {{chief: leader, fsync: 5}}}}"
    sim, events = _run(chaos)
    elections = _elections(events)
    assert len(elections) == 1
    elected = elections["time_s"].iloc[0]
    # No sooner than an election timeout (150 ms) after the stall began, and well
    # within the stall: the first write (within ~1 s at 2.6 tasks/s) stops the beats.
    assert AT + 0.150 <= elected < AT + 5.0
    assert elections["subject"].iloc[0] != "chief-1"
    assert sim.control_plane.leader != 1


def test_a_stall_shorter_than_the_election_timeout_elects_nobody() -> None:
    """50 ms writes delay heartbeats by less than the 150 ms timeout: the leader stays."""
    chaos = f"{{at: {AT}, duration: 30, wal_stall: {{chief: leader, fsync: 0.05}}}}"
    sim, events = _run(chaos)
    assert _elections(events).empty
    assert sim.control_plane.leader == 1


def test_a_loss_burst_on_one_path_delays_only_that_zone() -> None:
    """Lost TASK_ASSIGNs are resent after the TTL; only tasks bound for zone A pay it.

    Compared with the same run without the burst (common random numbers): the
    tasks that newly spent a TTL or more on the wire (not queued at a zone)
    before dispatch were all first sent to zone A (a resend routes afresh).
    """
    chaos = f"{{at: {AT}, duration: 120, message_loss: {{rate: 0.5, zones: [A]}}}}"
    scenario = short_baseline(f"chaos=[{chaos}]", hours=0.5)
    result = Simulation(scenario).run()
    clean = Simulation(short_baseline(hours=0.5)).run()
    assert result.counts["resent_messages"] > 0

    def late(tasks: pd.DataFrame) -> pd.DataFrame:
        first = tasks[(tasks["attempt"] == 1) & (tasks["job_id"] < 0)]
        delay = first["dispatch_s"] - first["arrival_s"] - first["queue_s"]
        return first[delay >= scenario.network.message_ttl].set_index("task_id")

    before = late(clean.tasks)
    new = late(result.tasks).drop(index=before.index, errors="ignore")
    assert not new.empty
    assert set(new["home_zone"]) == {"A"}


def test_a_path_outside_the_burst_draws_nothing() -> None:
    """So a burst on one path leaves a fleet-wide burst's draws unchanged."""
    scenario = short_baseline()
    regions = {zone.name: zone.region for zone in scenario.topology.zones}
    net = Network(scenario.network, regions, "us-east-1", np.random.default_rng(1))
    net.loss_rate = 0.99
    net.loss_zones = frozenset({"A"})
    assert not any(net.lost("B", key, key) for key in range(100))
    assert sum(net.lost("A", key, key) for key in range(100)) > 90


def test_an_unknown_chief_is_a_one_line_error(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "chaos: [{at: 10, duration: 5, wal_stall: {chief: chief-9, fsync: 2}}]\n", "utf-8"
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "chaos[0].wal_stall.chief" in message and "chief-9" in message
    assert "\n" not in message


def test_the_one_way_partition_is_recorded_for_replay() -> None:
    chaos = f"{{at: {AT}, duration: 60, one_way_partition: {{chief: leader, direction: inbound}}}}"
    _, events = _run(chaos)
    recorded = events[(events["kind"] == "chaos")]["detail"].map(json.loads)
    assert recorded.iloc[0]["event"]["one_way_partition"] == {
        "chief": "leader",
        "direction": "inbound",
    }


def test_a_dead_team_lead_starves_its_team_until_a_member_takes_over() -> None:
    """No new work reaches team A-T01 between the crash and the replacement; then it does."""
    sim = Simulation(
        short_baseline(f"chaos=[{{at: {AT}, team_lead_crash: A-T01-lead}}]", hours=0.5)
    )
    result = sim.run()
    assert result.counts["lost"] == 0
    events = result.events.set_index("kind")
    detected = json.loads(events.loc["team_lead_detected", "detail"])["detect_s"]
    replaced = float(events.loc["team_lead_replaced", "time_s"])
    # The spec's rule: 3 failed checks 10 s apart, each failing 2 s after it is sent.
    assert 2 * 10 + 2 <= detected <= 3 * 10 + 2
    assert replaced == pytest.approx(AT + detected + sim.scenario.health.zone_promotion)
    team = {a.id for a in sim.fleet.agents.values() if a.spec.team == "A-T01"}
    assert team
    tasks = result.tasks
    to_team = tasks[tasks["agent"].isin(team)]
    during = to_team[(to_team["dispatch_s"] > AT) & (to_team["dispatch_s"] < replaced)]
    assert during.empty
    assert (to_team["dispatch_s"] > replaced).any()
