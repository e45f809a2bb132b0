"""Chaos ``partition``, live: the primary off the chiefs' majority is fenced, zones off it cut off.

And ``one_way_partition``: on the leader it fences the primary (Raft elects
another either way), on a follower it moves nothing.

Live had skipped the action ("the simulator's alone"). Its chiefs share a
lease on one broker, not Raft over links of their own, so the partition is
played where it lands (``sim.live.network_chaos``): a primary on a side
without a majority of the chiefs can no longer renew its lease and a standby
takes it, as the majority's side elects a new leader; a zone on such a side
is cut off (``sim.live.coordinator.zone_cutoffs``); the heal gives it back.
"""

from __future__ import annotations

from pathlib import Path

from conftest import exactly_once, run_live, small

from sim.replay import chaos_from_events


def test_a_partition_fences_the_primary_and_cuts_its_zone_off_until_it_heals(
    tmp_path: Path,
) -> None:
    scenario = small(
        "duration=4m",
        "topology.control_plane.chiefs=3",
        "topology.specialists=8",
        "workload.arrivals.rate_per_min=30",
        'chaos=[{"at": "30s", "duration": "20s", "one_way_partition": {"chief": "follower"}},'
        ' {"at": "1m", "duration": "1m", "partition": {"groups": [["chief-1", "B"]]}},'
        ' {"at": "150s", "duration": "30s", "one_way_partition": {"chief": "leader"}}]',
    )
    scale = 30.0
    run = run_live(scenario, tmp_path, time_scale=scale, lease_s=1.0, agents_mode="simulated")
    exactly_once(run)
    events = run.result.events
    at = {kind: list(events.loc[events["kind"] == kind, "time_s"]) for kind in set(events["kind"])}
    jitter = 0.2 * scale  # a fifth of a wall second, in scenario seconds
    # The follower's one-way cut moves nothing; the primary (chief-1) on the minority's side
    # is fenced and a standby takes the lease; so is the leader whose links work one way.
    [_, takeover, again] = at["coordinator_primary"]
    assert 60.0 < takeover <= 60.0 + (1.0 + 1.0) * scale  # lease + one poll
    assert 150.0 < again <= 150.0 + (1.0 + 1.0) * scale
    assert len(at["one_way_partition"]) == len(at["one_way_healed"]) == 2
    [split] = at["partition"]
    [healed] = at["partition_healed"]
    assert abs(split - 60.0) < jitter and abs(healed - 120.0) < jitter
    # Zone B is cut off, its coordinator's checks declare it, and it is back at the heal.
    subjects = events.set_index("kind")["subject"]
    for kind in ("zone_cut_off", "zone_redistributed", "zone_reconnected"):
        assert subjects[kind] == "B", kind
    [declared] = at["zone_redistributed"]
    health = scenario.health
    assert declared <= 60.0 + (health.threshold + 1) * health.interval + 2 * jitter
    [back] = at["zone_reconnected"]
    assert abs(back - 120.0) < 2 * jitter
    assert "agent_detected" not in at  # B's agents were alive all along
    tasks = run.result.tasks
    started_b = tasks[(tasks["zone"] == "B") & tasks["start_s"].notna()]
    assert ((started_b["start_s"] > declared + jitter) & (started_b["start_s"] < back)).sum() == 0
    assert (started_b["start_s"] > back + jitter).sum() > 0  # B serves again after the heal
    follower, partition, leader = chaos_from_events(events)  # what a replay plays again
    assert partition.partition is not None and partition.partition.groups == [["chief-1", "B"]]
    for replayed, role in ((follower, "follower"), (leader, "leader")):
        assert replayed.one_way_partition is not None
        assert replayed.one_way_partition.chief == role
