"""The dispatch core alone: its decisions one by one, then its books under generated programs.

The unit tests pin each decision the module docstring of
``sim.policies.dispatch.core`` promises (placement, spill, queue order,
pull order, avoid lists, the retry budget, drains, evacuation). The state
machine then runs generated sequences of joins, arrivals, ends, deaths and
drains and checks, after every step, that every task is in exactly one
place and that no retry went back to an agent it avoids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sim.policies.balancing import STRATEGIES, make_balancer
from sim.policies.dispatch import DispatchCore
from sim.policies.routing import ZoneRouter
from sim.policies.types import AgentInfo, TaskInfo

ZONES = ("A", "B", "C")
#: A is nearer to B than to C; B is nearest to A; C is nearest to B.
RTT = {
    ("A", "B"): 10.0,
    ("A", "C"): 80.0,
    ("B", "C"): 40.0,
}
RTT_MS = {
    (a, b): 0.0 if a == b else RTT.get((a, b), RTT.get((b, a), 0.0)) for a in ZONES for b in ZONES
}


@dataclass
class Job:
    """The smallest task the core accepts (its Dispatchable protocol)."""

    id: int
    category: str = "Gen"
    home_zone: str = "A"
    priority: float = 0.0
    critical: bool = False
    affinity_key: int | None = None
    info: TaskInfo | None = None
    avoid: frozenset[str] | None = None
    attempt: int = 1
    zone: str = ""
    near: tuple[str, float] | None = None


def core(
    strategy: str = "least_connections", *, spill: bool = True, budget: int = 2
) -> DispatchCore[Job]:
    balancer = make_balancer(strategy, np.random.default_rng(7))
    return DispatchCore(balancer, ZoneRouter(ZONES, RTT_MS), spill=spill, retry_budget=budget)


def agent(name: str, zone: str = "A", *, slots: int = 1, capacity: int = 1) -> AgentInfo:
    return AgentInfo(name, "Gen", zone, slots=slots, capacity=capacity)


# --------------------------------------------------------------------------- decisions


def test_a_dag_node_goes_to_the_agent_holding_its_input_when_a_slot_is_free() -> None:
    d = core()
    for name in ("a1", "a2", "a3"):
        d.join(agent(name, slots=2, capacity=2))
    d.hold(Job(1), "a3")  # the balancer (least connections) would now avoid a3
    assert d.place(Job(2, near=("a3", 5.0)), "A", 0.0) == "a3"
    assert d.place(Job(3), "A", 0.0) in ("a1", "a2")


def test_the_holder_is_passed_over_when_it_may_not_take_the_task() -> None:
    d = core(spill=False)
    d.join(agent("a1"))
    d.join(agent("b1", "B"))
    d.join(AgentInfo("a2", "Other", "A"))
    assert d.place(Job(1, near=("b1", 5.0)), "A", 0.0) == "a1"  # another zone, no spill
    assert d.place(Job(2, near=("a2", 5.0)), "A", 0.0) == "a1"  # another category
    assert d.place(Job(3, near=("gone", 5.0)), "A", 0.0) == "a1"  # not in the pool
    avoided = Job(4, near=("a1", 5.0), avoid=frozenset({"a1"}))
    assert d.place(avoided, "A", 0.0) is None  # a retry never goes back to an avoided agent


def test_a_busy_holder_is_waited_for_only_when_it_frees_sooner_than_the_transfer() -> None:
    frees = {"a1": 3.0}
    balancer = make_balancer("least_connections", np.random.default_rng(7))
    d: DispatchCore[Job] = DispatchCore(
        balancer,
        ZoneRouter(ZONES, RTT_MS),
        spill=True,
        retry_budget=2,
        frees_in=lambda agent_id, now: frees[agent_id],
    )
    d.join(agent("a1", slots=1, capacity=2))
    d.join(agent("a2"))
    d.hold(Job(1), "a1")
    assert d.place(Job(2, near=("a1", 5.0)), "A", 0.0) == "a1"  # frees in 3 s < 5 s to move
    assert d.place(Job(3, near=("a1", 2.0)), "A", 0.0) == "a2"  # moving is quicker
    d.hold(Job(2), "a1")
    assert d.place(Job(4, near=("a1", 50.0)), "A", 0.0) == "a2"  # no room left at all


def test_without_an_estimate_a_busy_holder_is_never_waited_for() -> None:
    d = core()
    d.join(agent("a1", slots=1, capacity=3))
    d.join(agent("a2"))
    d.hold(Job(1), "a1")
    assert d.place(Job(2, near=("a1", 1e9)), "A", 0.0) == "a2"


def test_place_books_nothing_until_the_shell_holds_and_queues_when_nobody_has_room() -> None:
    d = core(spill=False)
    d.join(agent("a1"))
    first = Job(1)
    assert d.place(first, "A", 0.0) == "a1"
    assert d.load("a1") == 0  # the shell books it (the simulator between its own steps)
    d.hold(first, "a1")
    assert d.place(Job(2), "A", 0.0) is None
    assert d.queued() == 1 and d.queued_in == {"A": 1, "B": 0, "C": 0}


def test_a_full_zone_spills_to_the_nearest_zone_with_room() -> None:
    d = core()
    for name, zone in (("a1", "A"), ("c1", "C"), ("b1", "B")):
        d.join(agent(name, zone))
    placed = [d.route(Job(n), 0.0) for n in range(4)]
    assert [(p.agent_id, p.zone) if p else None for p in placed] == [
        ("a1", "A"),
        ("b1", "B"),  # B is A's nearest neighbour, whatever the join order
        ("c1", "C"),
        None,
    ]


def test_queues_serve_highest_priority_first_then_arrival_order() -> None:
    d = core(spill=False)
    d.join(agent("a1"))
    d.route(Job(0), 0.0)  # a1 busy from here
    for n, priority in ((1, 0.0), (2, 5.0), (3, 0.0), (4, 5.0)):
        assert d.route(Job(n, priority=priority), 0.0) is None
    order = []
    for held in (0, 2, 4, 1):
        order += [a.task.id for a in d.ended(held, "a1")]
    assert order == [2, 4, 1, 3]


def test_a_free_slot_pulls_its_own_zone_first_then_the_nearest_zones() -> None:
    d = core()
    for name, zone in (("a1", "A"), ("b1", "B"), ("c1", "C")):
        d.join(agent(name, zone))
    for n, zone in ((0, "A"), (1, "B"), (2, "C")):
        d.route(Job(n, home_zone=zone), 0.0)  # everyone busy
    d.route(Job(10, home_zone="C"), 0.0)
    d.route(Job(11, home_zone="B"), 0.0)
    d.route(Job(12, home_zone="A"), 0.0)
    assert d.queued_in == {"A": 1, "B": 1, "C": 1}
    pulled = [a.task.id for a in d.ended(0, "a1")]
    assert pulled == [12]  # its own zone's, though C's and B's waited longer
    assert [a.task.id for a in d.ended(12, "a1")] == [11]  # then B, A's nearest
    assert [a.task.id for a in d.ended(11, "a1")] == [10]  # then C


def test_pulls_skip_zones_that_are_dark_or_declared_down() -> None:
    d = core()
    d.join(agent("a1", "A"))
    d.join(agent("b1", "B"))
    d.join(agent("c1", "C"))
    for n, zone in ((0, "A"), (1, "B"), (2, "C"), (3, "B"), (4, "C")):
        d.route(Job(n, home_zone=zone), 0.0)
    d.mark_dark("B", True)
    assert [a.task.id for a in d.ended(0, "a1")] == [4]  # B skipped: its queue is unreachable
    d.mark_dark("B", False)
    d.router.mark_down("C")
    assert [a.task.id for a in d.ended(4, "a1")] == [3]


def test_a_dark_agents_zone_pulls_only_its_own_queue() -> None:
    d = core()
    d.join(agent("a1", "A"))
    d.join(agent("b1", "B"))
    d.route(Job(0, home_zone="A"), 0.0)
    d.route(Job(1, home_zone="B"), 0.0)
    d.route(Job(2, home_zone="B"), 0.0)
    d.mark_dark("A", True)
    assert d.ended(0, "a1") == []


def test_a_queued_retry_is_never_handed_to_an_agent_it_avoids() -> None:
    d = core(spill=False)
    d.join(agent("a1"))
    d.join(agent("a2"))
    d.route(Job(0), 0.0)
    d.route(Job(1), 0.0)
    retry = Job(2, avoid=frozenset({"a1"}))
    assert d.route(retry, 0.0) is None
    assert d.ended(0, "a1") == []  # the head avoids a1 and nothing else waits
    d.route(Job(3), 0.0)  # a1 is free again: it takes this one directly
    assert d.holder[3] == "a1"
    assert [a.task.id for a in d.ended(1, "a2")] == [2]


def test_when_the_next_task_avoids_the_agent_too_nothing_is_taken() -> None:
    d = core(spill=False)
    d.join(agent("a1"))
    d.join(agent("a2"))
    d.route(Job(0), 0.0)
    d.route(Job(1), 0.0)
    d.route(Job(2, priority=1.0, avoid=frozenset({"a1"})), 0.0)
    d.route(Job(3, avoid=frozenset({"a1", "a2"})), 0.0)
    d.route(Job(4), 0.0)
    assert d.ended(0, "a1") == []
    assert [t.id for t in d.pool_waiting("A", "Gen")] == [2, 3, 4]


def test_a_queued_retry_lets_the_next_task_go_to_the_agent_it_avoids() -> None:
    d = core(spill=False)
    d.join(agent("a1"))
    d.join(agent("a2"))
    d.route(Job(0), 0.0)
    d.route(Job(1), 0.0)
    d.route(Job(2, priority=1.0, avoid=frozenset({"a1"})), 0.0)
    d.route(Job(3), 0.0)
    assert [a.task.id for a in d.ended(0, "a1")] == [3]
    assert [t.id for t in d.pool_waiting("A", "Gen")] == [2]


def test_placement_of_a_retry_excludes_the_agents_it_avoids() -> None:
    d = core("round_robin")
    for name in ("a1", "a2", "a3"):
        d.join(agent(name, capacity=5))
    picks = [d.route(Job(n, avoid=frozenset({"a2"})), 0.0) for n in range(4)]
    assert [p.agent_id for p in picks if p] == ["a1", "a3", "a1", "a3"]


@pytest.mark.parametrize("budget", [0, 1, 3])
def test_a_lost_task_is_retried_within_its_budget_avoiding_who_lost_it(budget: int) -> None:
    d = core(budget=budget)
    job = Job(1)
    outcomes = []
    for n in range(budget + 2):
        outcomes.append(d.retry(job, f"x{n}"))
    assert outcomes == [True] * budget + [False, False]
    assert job.attempt == budget + 1
    assert job.avoid == (frozenset(f"x{n}" for n in range(budget)) or None)


def test_the_idlest_non_draining_agent_of_the_pool_drains() -> None:
    d = core(spill=False)
    for name in ("a1", "a2", "a3"):
        d.join(agent(name, capacity=3))
    d.join(agent("b1", "B"))
    for n in range(4):
        d.route(Job(n), 0.0)  # least connections: a1, a2, a3, a1
    assert d.load("a1") == 2 and d.load("a2") == 1 and d.load("a3") == 1
    assert d.drain_choice("A", "Gen") == "a2"  # least held, then by id
    d.drain("a2")
    assert d.drain_choice("A", "Gen") == "a3"
    assert d.drain_choice("A", "Other") is None
    assert d.route(Job(9), 0.0).agent_id != "a2"  # type: ignore[union-attr]


def test_a_dead_zone_evacuates_in_arrival_order_and_stranded_pools_are_named() -> None:
    d = core(spill=False)
    d.join(agent("a1"))
    d.join(agent("b1", "B"))
    d.route(Job(0), 0.0)
    for n, priority in ((5, 0.0), (3, 9.0), (4, 0.0)):
        d.route(Job(n, priority=priority), 0.0)
    assert d.stranded_pools() == []
    assert [t.id for t in d.gone("a1")] == [0]
    assert d.stranded_pools() == [("A", "Gen")]
    assert [t.id for t in d.evacuate("A")] == [3, 4, 5]
    assert d.queued() == 0 and d.queued_in["A"] == 0


def test_an_end_removes_a_waiting_copy_and_a_start_moves_the_holder() -> None:
    d = core(spill=False)
    d.join(agent("a1", capacity=3))
    d.join(agent("a2", capacity=3))
    job = Job(1)
    d.adopt(job, "a1")
    d.started(job, "a2")
    assert d.holder[1] == "a2" and d.holding("a1") == [] and d.holding("a2") == [job]
    other = Job(2)
    d.enqueue(other, "A")
    d.ended(2, "a1")
    assert d.queued() == 0 and d.pool_waiting("A", "Gen") == []


# --------------------------------------------------------------------------- properties


class DispatchBooksMachine(RuleBasedStateMachine):
    """Generated programs of joins, arrivals, ends, deaths and drains against the core.

    The model is only what the test itself did: which tasks it submitted,
    which ended or failed for good. Invariants: every submitted task is
    waiting, held or finished — exactly one — and the core's counts agree
    with its own books; every assignment respected the task's avoid list;
    no agent holds more than its capacity; the retry budget was kept.
    """

    @initialize(
        strategy=st.sampled_from(STRATEGIES),
        spill=st.booleans(),
        budget=st.integers(0, 2),
    )
    def setup(self, strategy: str, spill: bool, budget: int) -> None:
        self.core = core(strategy, spill=spill, budget=budget)
        self.budget = budget
        self.next_task = 0
        self.next_agent = 0
        self.tasks: dict[int, Job] = {}
        self.finished: set[int] = set()
        self.failed: set[int] = set()
        self.capacity: dict[str, int] = {}
        self.dead: dict[str, AgentInfo] = {}
        self.violations: list[str] = []
        original = self.core.hold

        def hold(task: Job, agent_id: str) -> None:
            if task.avoid is not None and agent_id in task.avoid:
                self.violations.append(f"task {task.id} went to {agent_id}, which it avoids")
            original(task, agent_id)

        self.core.hold = hold  # type: ignore[method-assign]

    @rule(
        zone=st.sampled_from(ZONES),
        category=st.sampled_from(("Gen", "Rev")),
        slots=st.integers(1, 2),
        extra=st.integers(0, 2),
    )
    def join(self, zone: str, category: str, slots: int, extra: int) -> None:
        name = f"{zone}-{category}-{self.next_agent}"
        self.next_agent += 1
        self.capacity[name] = slots + extra
        self.core.join(AgentInfo(name, category, zone, slots=slots, capacity=slots + extra))

    @rule(
        zone=st.sampled_from(ZONES),
        category=st.sampled_from(("Gen", "Rev")),
        priority=st.sampled_from((0.0, 1.0, 2.5)),
        critical=st.booleans(),
    )
    def arrive(self, zone: str, category: str, priority: float, critical: bool) -> None:
        job = Job(self.next_task, category, zone, priority, critical)
        self.next_task += 1
        self.tasks[job.id] = job
        self.core.route(job, 0.0)

    @precondition(lambda self: bool(self.core.holder))
    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.core.holder)))
        agent_id = self.core.holder[task_id]
        self.finished.add(task_id)
        self.core.ended(task_id, agent_id)

    @precondition(lambda self: bool(self.core.agents))
    @rule(data=st.data())
    def die(self, data: st.DataObject) -> None:
        agent_id = data.draw(st.sampled_from(sorted(self.core.agents)))
        self.dead[agent_id] = self.core.agents[agent_id]
        for task in self.core.gone(agent_id):
            if self.core.retry(task, agent_id):
                self.core.route(task, 0.0)
            else:
                assert task.attempt == self.budget + 1
                self.failed.add(task.id)
        for zone, category in self.core.stranded_pools():
            for task in self.core.evacuate(zone, category):
                self.core.route(task, 0.0)

    @precondition(lambda self: bool(self.dead))
    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        """A dead agent comes back under its own id: the retries it lost must avoid it."""
        info = data.draw(st.sampled_from(sorted(self.dead.values(), key=str)))
        del self.dead[info.agent_id]
        self.core.join(info)

    @precondition(lambda self: bool(self.core.members))
    @rule(data=st.data())
    def drain(self, data: st.DataObject) -> None:
        info = data.draw(st.sampled_from(sorted(self.core.members.values(), key=str)))
        chosen = self.core.drain_choice(info.zone, info.category)
        assert chosen is not None and chosen not in self.core.draining
        self.core.drain(chosen)

    @invariant()
    def every_task_is_in_exactly_one_place(self) -> None:
        if not hasattr(self, "core"):
            return
        waiting = set(self.core.waiting)
        held = set(self.core.holder)
        done = self.finished | self.failed
        assert not waiting & held and not waiting & done and not held & done
        assert waiting | held | done == set(self.tasks)
        assert self.core.queued() == sum(self.core.queued_in.values())
        per_agent = [self.core.load(a) for a in self.core.books]
        assert sum(per_agent) == len(held)
        for task_id, agent_id in self.core.holder.items():
            assert task_id in self.core.books[agent_id].held

    @invariant()
    def assignments_respect_avoid_lists_capacity_and_budget(self) -> None:
        if not hasattr(self, "core"):
            return
        assert self.violations == []
        for agent_id in self.core.members:
            assert self.core.load(agent_id) <= self.capacity[agent_id]
        assert all(t.attempt <= self.budget + 1 for t in self.tasks.values())


TestDispatchBooks = DispatchBooksMachine.TestCase
