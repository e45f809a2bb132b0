"""A takeover hands idle agents work in its predecessor's order, as the replay does.

Covers: ``DispatchCore.restore_order`` (the balancer's pools put agents of
equal load back in the order they reached it) and the books that say when
(``Books.reached``, ``sim.live.coordinator.state``): a new primary joins its
agents by id and adopts what each holds, then restores that order before it
places anything, so its least-connections pools rotate idle agents as its
predecessor's did.

Scenario: least connections keeps agents of equal load in the order they
reached it, so the next task goes to the agent idle longest. The simulator's
chief never restarts its books, so its replay of a leader crash goes on in
that order. A live takeover rebuilt its pools by joining every agent by id:
at the full fleet (``dag_heavy`` with a leader crash, x10) 61 % of the tasks
in the minute after the crash went to the same agent in live and in its
replay, against 97 % in the same minute without a crash. (Joining in the
order agents came free instead fixed the rotation but not the speed index,
which keeps agents of equal speed in join order: critical-path nodes then
went to another agent than the replay's, 61 % -> 63 %.)
"""

from __future__ import annotations

import pytest
from test_coordinator_logic import Fleet, run

from sim.live.subjects import submit_subject

LEAST_CONNECTIONS = "policies.load_balancing=least_connections"


@pytest.mark.parametrize("takeover", [False, True])
def test_the_next_task_goes_to_the_agent_idle_longest_after_a_takeover_too(
    takeover: bool,
) -> None:
    """a1, a2, a3 each serve one task and come free in the order a3, a1, a2; the next tasks
    go to a3, then a1, whether the first primary still leads or a standby took over."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3"):
            await fleet.beat(agent)
        first = fleet.coordinator(LEAST_CONNECTIONS, name="c1")
        await first.take_over()
        await fleet.submit(0, 1, 2)
        await first.pump()
        held = {agent: await fleet.take(agent) for agent in ("a1", "a2", "a3")}
        assert held == {"a1": [(0, 1)], "a2": [(1, 1)], "a3": [(2, 1)]}
        for task, agent in ((2, "a3"), (0, "a1"), (1, "a2")):
            fleet.wall.t += 1.0
            await fleet.result("start", task, agent)
            await fleet.result("end", task, agent)
            await first.pump()
        assert first.books.reached("a3") < first.books.reached("a1") < first.books.reached("a2")
        leader = first
        if takeover:
            leader = fleet.coordinator(LEAST_CONNECTIONS, name="c2")
            await leader.take_over()
        await fleet.submit(3, 4)
        await leader.pump()
        assert await fleet.take("a3") == [(3, 1)]
        assert await fleet.take("a1") == [(4, 1)]
        assert await fleet.take("a2") == []

    run(body)


def test_agents_whose_load_never_changed_keep_the_join_order_by_id() -> None:
    """Nothing to restore on a fresh fleet: the first task goes to the first agent by id,
    whatever order the agents beat in, before and after a takeover."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a3", "a1", "a2"):
            await fleet.beat(agent)
        first = fleet.coordinator(LEAST_CONNECTIONS, name="c1")
        await first.take_over()
        assert first.books.reached("a2") == float("-inf")
        second = fleet.coordinator(LEAST_CONNECTIONS, name="c2")
        await second.take_over()
        await fleet.submit(0)
        await second.pump()
        assert await fleet.take("a1") == [(0, 1)]

    run(body)


def test_a_takeover_adopts_what_every_zones_stream_shows_held_before_it_places_anything() -> None:
    """A takeover reads the submissions stream by stream (``orch.submit``, then each zone's):
    a task of an earlier stream was placed before the held tasks of a later one were
    adopted, on an agent that looked free but was serving (full fleet, a partition: tasks
    queued 8-18 s behind a predecessor's work while the replay's leader, knowing every
    load, put them on free agents). Now what is to be placed anew waits for the adoption.

    a1 serves task 0 (submitted on zone A's stream, read last); a2 served task 1 and came
    free after a1 took task 0, so a1 is the idle-longest agent should its load be unknown.
    The backlog's task 2 (on ``orch.submit``, read first) must go to a2."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2"):
            await fleet.beat(agent)
        first = fleet.coordinator(LEAST_CONNECTIONS, name="c1")
        await first.take_over()
        await fleet.submit(0, subject=submit_subject("A"))
        await first.pump()
        assert await fleet.take("a1") == [(0, 1)]
        await fleet.result("start", 0, "a1")
        fleet.wall.t += 1.0
        await fleet.submit(1)
        await first.pump()
        assert await fleet.take("a2") == [(1, 1)]
        for kind in ("start", "end"):
            await fleet.result(kind, 1, "a2")
        await first.pump()
        fleet.wall.t += 1.0
        await fleet.submit(2)  # the first primary is gone: nobody places it
        second = fleet.coordinator(LEAST_CONNECTIONS, name="c2")
        await second.take_over()
        assert await fleet.take("a2") == [(2, 1)]
        assert await fleet.take("a1") == []  # still serving task 0, adopted
        assert second.dispatcher.load("a1") == 1 and second.dispatcher.load("a2") == 1

    run(body)


def test_the_backlog_a_takeover_places_goes_out_in_the_order_it_arrived() -> None:
    """Zone A's stream holds the earlier arrival, ``orch.submit`` (read first) the later:
    placed by arrival, as the simulator's new leader re-drives what waited for it, the
    earlier one takes the one free agent and the later one waits in the pool's queue."""

    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1")
        first = fleet.coordinator(LEAST_CONNECTIONS, name="c1")
        await first.take_over()
        await first.pump()
        await fleet.submit(0, subject=submit_subject("A"))  # nobody leads: both wait
        fleet.wall.t += 1.0
        await fleet.submit(1)
        second = fleet.coordinator(LEAST_CONNECTIONS, name="c2")
        await second.take_over()
        assert await fleet.take("a1") == [(0, 1)]
        assert second.dispatcher.queued() == 1

    run(body)
