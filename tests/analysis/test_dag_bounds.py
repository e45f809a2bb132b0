"""The energetic interval bound: valid for every schedule, and tighter than max(CP, work / P).

And the delivery bound: LB plus the latency down to the agents and back up.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis.dag_bounds import delivery_lower_bound, interval_lower_bound
from sim.policies.dag import Dag, DagEdge, DagNode, makespan_lower_bound
from sim.policies.dag_schedule import AgentSlot, greedy_schedule, heft_schedule


def free(mb: float, a: str, b: str) -> float:
    return 0.0


def test_a_fork_after_a_long_head_is_bounded_above_cp_and_work() -> None:
    """X (10 s) feeds Y, Z1, Z2 (10 s each) on two agents.

    CP = 20 s and work / P = 20 s, but the three successors cannot start
    before 10 s, so 30 s of work fits only in C - 10 s on two agents:
    C >= 25 s. (The best schedule takes 30 s: tasks do not split.)
    """
    nodes = tuple(DagNode(i, "C", 10.0) for i in range(4))
    dag = Dag("fork", nodes, (DagEdge(0, 1), DagEdge(0, 2), DagEdge(0, 3)))
    assert makespan_lower_bound(dag, 2) == 20.0
    assert interval_lower_bound(dag, 2) == 25.0
    agents = [AgentSlot("a", 1.0, "z"), AgentSlot("b", 1.0, "z")]
    assert heft_schedule(dag, agents, free).makespan == 30.0


@st.composite
def dags(draw: st.DrawFn) -> Dag:
    n = draw(st.integers(1, 12))
    works = draw(st.lists(st.integers(0, 9).map(float), min_size=n, max_size=n))
    edges = [DagEdge(i, j) for i, j in itertools.combinations(range(n), 2) if draw(st.booleans())]
    return Dag("random", tuple(DagNode(i, "C", w) for i, w in enumerate(works)), tuple(edges))


@settings(max_examples=150, deadline=None)
@given(dags(), st.integers(1, 5))
def test_no_schedule_beats_the_bound_and_it_beats_the_plain_one(dag: Dag, p: int) -> None:
    agents = [AgentSlot(f"a{i}", 1.0, "z") for i in range(p)]
    bound = interval_lower_bound(dag, p)
    assert bound >= makespan_lower_bound(dag, p)
    for schedule in (
        heft_schedule(dag, agents, free),
        heft_schedule(dag, agents, free, insertion=False),
        greedy_schedule(dag, agents, free),
    ):
        assert schedule.makespan >= bound - 1e-9 * max(1.0, bound)


def test_the_delivery_bound_adds_the_way_down_and_up_to_lb() -> None:
    """A chain of 3 s and 4 s on 2 agents: LB 7 s; 3 ms down and 3 ms up make 7.006 s."""
    dag = Dag("pair", (DagNode(0, "C", 3.0), DagNode(1, "C", 4.0)), (DagEdge(0, 1),))
    assert delivery_lower_bound(dag, 2, 0.003, 0.003) == pytest.approx(7.006, abs=1e-12)
    # Wide and short: work / P binds (8 x 1 s on 2 agents), and the latencies come on top.
    wide = Dag("wide", tuple(DagNode(i, "C", 1.0) for i in range(8)), ())
    assert delivery_lower_bound(wide, 2, 0.5, 0.25) == 4.75
    assert delivery_lower_bound(Dag("empty", (), ()), 2, 0.5, 0.25) == 0.0
    with pytest.raises(ValueError, match="latencies must be >= 0"):
        delivery_lower_bound(dag, 2, -0.001, 0.0)
