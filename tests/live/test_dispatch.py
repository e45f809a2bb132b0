"""The dispatch core as the live coordinator calls it, without a broker."""

from __future__ import annotations

import numpy as np

from sim.live.task import LiveTask
from sim.policies.balancing import make_balancer
from sim.policies.dispatch import DispatchCore
from sim.policies.routing import ZoneRouter
from sim.policies.types import AgentInfo

RTT = {("A", "A"): 0.0, ("A", "B"): 60.0, ("B", "A"): 60.0, ("B", "B"): 0.0}


def books(strategy: str, *, spill: bool = True) -> DispatchCore[LiveTask]:
    balancer = make_balancer(strategy, np.random.default_rng(1))
    return DispatchCore(balancer, ZoneRouter(("A", "B"), RTT), spill=spill, retry_budget=2)


def task(n: int, zone: str = "A") -> LiveTask:
    return LiveTask(n, "Gen", zone, float(n), 10.0)


def agent(name: str, zone: str = "A", capacity: int = 1) -> AgentInfo:
    return AgentInfo(name, "Gen", zone, slots=1, capacity=capacity)


def test_round_robin_choices_are_the_balancers_in_join_order() -> None:
    d = books("round_robin")
    for name in ("a1", "a2", "a3"):
        assert d.join(agent(name, capacity=4)) == []
    chosen = [d.route(task(n), float(n)) for n in range(7)]
    assert [c.agent_id if c else None for c in chosen] == ["a1", "a2", "a3"] * 2 + ["a1"]


def test_full_pool_queues_and_a_freed_slot_takes_the_oldest() -> None:
    d = books("least_connections", spill=False)
    d.join(agent("a1"))
    first = d.route(task(0), 0.0)
    assert first is not None and first.agent_id == "a1"
    assert d.route(task(1), 1.0) is None and d.route(task(2), 2.0) is None
    assert d.queued() == 2
    pulled = d.ended(0, "a1")
    assert [(p.task.task_id, p.agent_id) for p in pulled] == [(1, "a1")]
    assert d.queued() == 1


def test_full_zone_spills_to_the_nearest_free_agent_and_idle_agents_pull_across() -> None:
    d = books("least_connections")
    d.join(agent("a1"))
    d.join(agent("b1", "B"))
    assert d.route(task(0), 0.0).agent_id == "a1"  # type: ignore[union-attr]
    spilled = d.route(task(1), 1.0)
    assert spilled is not None and spilled.agent_id == "b1" and spilled.zone == "B"
    assert d.route(task(2), 2.0) is None  # both busy: queued in A
    pulled = d.ended(1, "b1")  # b1's own queue is empty: it takes A's oldest
    assert [p.task.task_id for p in pulled] == [2]


def test_a_dead_agents_tasks_come_back_and_an_empty_pools_queue_moves() -> None:
    d = books("least_connections", spill=False)
    d.join(agent("a1"))
    d.join(agent("b1", "B", capacity=5))
    assert d.route(task(0), 0.0).agent_id == "a1"  # type: ignore[union-attr]
    queued = [d.route(task(n), float(n)) for n in (1, 2)]
    assert queued == [None, None]
    assert d.stranded_pools() == []
    assert [t.task_id for t in d.gone("a1")] == [0]
    assert d.stranded_pools() == [("A", "Gen")]
    moved = d.evacuate("A", "Gen")
    assert [t.task_id for t in moved] == [1, 2]
    placed = [d.route(t, 3.0) for t in [task(0), *moved]]
    assert [p.agent_id if p else None for p in placed] == ["b1"] * 3
    assert [t.task_id for t in d.holding("b1")] == [0, 1, 2]


def test_a_start_reported_by_another_agent_moves_the_task_there() -> None:
    d = books("round_robin")
    d.join(agent("a1", capacity=3))
    d.join(agent("a2", capacity=3))
    t = task(0)
    d.adopt(t, "a1")
    d.started(t, "a2")
    assert d.holder[0] == "a2" and d.holding("a1") == [] and d.holding("a2") == [t]
