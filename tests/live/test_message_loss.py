"""Chaos ``message_loss``, live: assignments lost on their way to a zone, sent again later.

Live had skipped the action ("the simulator's alone"): a scenario that loses
a share of the chief's TASK_ASSIGN messages ran live with none lost, while
its replay lost them and made each wait a TTL. Now the primary draws the
losses with the simulator's rule and sends a lost task again, routed
afresh, when its TTL is over (``sim.live.coordinator.message_loss``).
"""

from __future__ import annotations

import math
from pathlib import Path

from conftest import run_live, small, timing_slack
from test_coordinator_logic import EPOCH, Fleet, run

from sim.live.coordinator.message_loss import MessageLoss, message_loss
from sim.live.task import LiveTask
from sim.policies.keyed_draws import task_key
from sim.replay import chaos_from_events
from sim.world.network import Network
from sim.world.streams import Streams

LOSS_IN_A = (
    'chaos=[{"at": "100s", "duration": "60s", "message_loss": {"rate": 0.5, "zones": ["A"]}}]'
)


def task(n: int) -> LiveTask:
    """Task *n*, arriving at its own second (the loss draws are keyed by the arrival)."""
    return LiveTask(n, "CodeGen", "A", 0.5 + n, 10.0)


def test_losses_follow_the_timeline_and_spare_the_zones_not_named() -> None:
    """Inside the window a share of the assignments to A is lost and comes back a TTL
    later, in the order sent; B's draw nothing (so they leave A's draws unchanged, as the
    simulator's network rule says); a later window overrides an earlier one while both
    last; none is lost outside them."""
    overlapping = (
        'chaos=[{"at": "100s", "duration": "60s", "message_loss": {"rate": 0.5, "zones": ["A"]}},'
        ' {"at": "120s", "duration": "10s", "message_loss": {"rate": 0.99}}]'
    )
    scenario = small(overlapping, "network.message_ttl=20s")
    assert message_loss(small()) is None  # no window: nothing to draw

    def losses_in_a(interleave_b: bool) -> list[int]:
        loss = MessageLoss(scenario)
        lost = []
        for n in range(200):
            if interleave_b:
                assert not loss.lost(task(1000 + n), "B", 110.0)
            if loss.lost(task(n), "A", 110.0):
                lost.append(n)
        assert loss.waiting == loss.resent == len(lost)
        assert loss.due(129.9) == []
        assert [t.task_id for t in loss.due(130.0)] == lost
        return lost

    lost = losses_in_a(False)
    assert abs(len(lost) - 100) <= 4 * math.sqrt(200 * 0.25)  # four binomial deviations
    assert losses_in_a(True) == lost
    loss = MessageLoss(scenario)
    assert not any(loss.lost(task(n), "A", at) for n in range(50) for at in (99.9, 160.0))
    assert sum(loss.lost(task(n), "B", 125.0) for n in range(50)) >= 45  # the later window


def test_a_lost_assignment_waits_its_ttl_and_is_routed_again() -> None:
    """The primary's own books: every task sent to A is assigned, queued, or in transit
    after a loss; the in-transit ones go out once their TTL is over (some lost again
    while the window lasts), and after it every one has reached the zone. B loses none.
    ``deadlines`` acts on them: the loop that runs it wakes when the first TTL ends."""

    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1", "A")
        await fleet.beat("b1", "B")
        c = fleet.coordinator(LOSS_IN_A, "network.message_ttl=20s")
        await c.take_over()
        losses = c.intake.calls.losses
        assert losses is not None
        fleet.wall.t = EPOCH + 110
        await fleet.submit(*range(30), zone="A", apart_s=1e-3)
        await c.pump()
        in_transit = losses.waiting
        assert 0 < in_transit < 30
        # a1's one slot took one task and b1's another (A spills to B's idle agent); the
        # rest of what reached A waits in its queue.
        assert 2 + c.dispatcher.queued() + in_transit == 30
        await fleet.submit(*range(100, 110), zone="B")
        await c.pump()
        assert losses.waiting == in_transit  # B's path loses nothing
        assert losses.next_due() == c.deadlines.next_due() == 110 + 20  # its wake-up
        fleet.wall.t = EPOCH + 129
        await c.deadlines.act_on_due()
        assert losses.waiting == in_transit  # not before the TTL
        fleet.wall.t = EPOCH + 131
        await c.deadlines.act_on_due()
        assert losses.waiting < in_transit and losses.resent > in_transit - losses.waiting
        fleet.wall.t = EPOCH + 175  # past the window: what was lost again goes out for good
        await c.deadlines.act_on_due()
        assert losses.waiting == 0
        assert 2 + c.dispatcher.queued() == 40  # a1 and b1 busy, the rest queued

    run(body)


def test_live_loses_assignments_as_the_scenario_says_and_the_replay_reads_it(
    tmp_path: Path,
) -> None:
    """A real broker and a simulated fleet at x40: a task of zone A that arrives in the
    window is lost on its way with the scenario's probability and starts a TTL late; no
    task of zone B does; the event log says so, and the replay plays the same loss."""
    scenario = small(
        "duration=3m",
        "topology.specialists=16",
        "workload.arrivals.rate_per_min=40",
        "workload.dags.rate_per_min=0",
        "network.message_ttl=40s",
        'chaos=[{"at": "30s", "duration": "90s", "message_loss": {"rate": 0.4, "zones": ["A"]}}]',
    )
    live = run_live(scenario, tmp_path, time_scale=40.0, agents_mode="simulated")
    tasks, events = live.result.tasks, live.result.events
    # The loss starts and ends when chaos's message is read: as late as the run stalled
    # (timing_slack), never early, so the window's end needs only the tenth of a second.
    jitter, edge = timing_slack(live, 40.0), 0.1 * 40.0
    first = tasks[(tasks["attempt"] == 1) & tasks["start_s"].notna()]
    arrived = first["arrival_s"]
    window = first[(arrived >= 30.0 + jitter) & (arrived < 120.0 - edge)]
    # At this load (a third of the fleet busy) no task waits anywhere near a TTL in a queue.
    late = window["start_s"] - window["arrival_s"] >= 40.0 - jitter
    in_a = window["home_zone"] == "A"
    n = int(in_a.sum())
    assert n >= 20
    lost = int((late & in_a).sum())
    assert abs(lost - 0.4 * n) <= 4.0 * math.sqrt(n * 0.4 * 0.6), (lost, n)
    assert not (late & ~in_a).any()  # B's path loses nothing, and at this load none queues
    counts = live.summary["tasks"]
    assert counts["lost"] == 0 and live.summary["drained"]["unfinished"] == 0
    [logged] = events[events["kind"] == "message_loss"].itertuples()
    assert logged.subject == "A" and abs(logged.time_s - 30.0) < jitter
    [replayed] = chaos_from_events(events)  # what a replay of the run plays again
    assert replayed.message_loss is not None and replayed.message_loss.rate == 0.4
    assert replayed.message_loss.zones == ["A"] and replayed.duration == 90.0


def test_live_loses_the_messages_the_simulators_chief_loses() -> None:
    """Both shells key a send's loss draw by the task and its count of sends in the loss
    (``keyed_draws.loss_draw``): the same tasks wait a TTL live and replayed, where each had
    drawn from a stream of its own (full fleet: 93.6 % of the tasks within 1 s)."""
    scenario = small(
        'chaos=[{"at": "100s", "duration": "60s", "message_loss": {"rate": 0.3, "zones": ["A"]}}]'
    )
    seed = 12345
    live = MessageLoss(scenario, seed=seed)
    regions = {zone.name: zone.region for zone in scenario.topology.zones}
    simulated = Network(scenario.network, regions, "us-east-1", Streams(1).get("network"))
    simulated.loss_rate, simulated.loss_zones = 0.3, frozenset({"A"})
    rounds = []
    for _send in (1, 2):  # each task's first send in the window, then its second
        live_lost = [n for n in range(300) if live.lost(task(n), "A", 110.0)]
        keys = [task_key(seed, task(n).arrival_s, -1, -1) for n in range(300)]
        assert live_lost == [n for n in range(300) if simulated.lost("A", keys[n], n)]
        assert abs(len(live_lost) - 90) <= 4 * math.sqrt(300 * 0.3 * 0.7)
        rounds.append(live_lost)
    assert rounds[0] != rounds[1]  # a task's second send draws anew
