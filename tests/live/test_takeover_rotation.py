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
