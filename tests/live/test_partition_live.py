"""The chiefs' chaos, live: crashes and partitions of the leader and of a follower.

Live's chiefs share a lease on one broker, not Raft over links of their own,
so each is played where it lands (``sim.live.network_chaos``): what takes
the scenario's leader away — its crash, a partition that leaves it off the
majority's side, its links working one way only — ends the primary (fenced:
it can no longer renew the lease) and a standby takes the lease, as the
majority elects another (a leader's *inbound* cut alone is skipped:
``network_chaos`` says why); what hits a follower moves nothing. A zone on a side
without the majority is cut off (``sim.live.coordinator.unreachable_zones``) until
the heal gives it back. Live had skipped partitions and one-way partitions
("the simulator's alone"), and crashed its primary for any target.
"""

from __future__ import annotations

from pathlib import Path

from conftest import exactly_once, run_live, small

from sim.replay import chaos_from_events

CHAOS = (
    'chaos=[{"at": "20s", "coordinator_crash": "follower"},'
    ' {"at": "30s", "duration": "20s", "one_way_partition": {"chief": "follower"}},'
    ' {"at": "40s", "duration": "10s", "one_way_partition": {"chief": "leader"}},'
    ' {"at": "1m", "duration": "1m", "partition": {"groups": [["chief-1", "B"]]}},'
    ' {"at": "150s", "duration": "30s",'
    ' "one_way_partition": {"chief": "leader", "direction": "outbound"}},'
    ' {"at": "210s", "coordinator_crash": "leader"}]'
)


def test_each_loss_of_the_leader_moves_the_lease_once_and_a_cut_zone_comes_back(
    tmp_path: Path,
) -> None:
    scenario = small(
        "duration=5m",
        "topology.control_plane.chiefs=3",
        "topology.specialists=8",
        "workload.arrivals.rate_per_min=30",
        CHAOS,
    )
    scale = 30.0
    run = run_live(scenario, tmp_path, time_scale=scale, lease_s=1.0, agents_mode="simulated")
    exactly_once(run)
    events = run.result.events
    at = {kind: list(events.loc[events["kind"] == kind, "time_s"]) for kind in set(events["kind"])}
    jitter = 0.2 * scale  # a fifth of a wall second, in scenario seconds
    # The follower's crash and one-way cut move nothing, nor does the leader's inbound cut
    # (skipped live, and unrecorded); the partition (chief-1, the run's first primary, on
    # the minority's side), the leader's outbound cut and its crash each move the lease
    # once: within the lease and one poll (scenario s).
    [_, *takeovers] = at["coordinator_primary"]
    assert len(takeovers) == 3, takeovers
    for cause, took in zip((60.0, 150.0, 210.0), takeovers, strict=True):
        assert cause < took <= cause + (1.0 + 1.0) * scale, (cause, took)
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
    # What a replay plays again: each chief's chaos as the role it hit, the partition as it was.
    crash, cut, partition, one_way, last = chaos_from_events(events)
    assert (crash.coordinator_crash, last.coordinator_crash) == ("follower", "leader")
    assert cut.one_way_partition is not None and cut.one_way_partition.chief == "follower"
    assert one_way.one_way_partition is not None and one_way.one_way_partition.chief == "leader"
    assert partition.partition is not None and partition.partition.groups == [["chief-1", "B"]]
