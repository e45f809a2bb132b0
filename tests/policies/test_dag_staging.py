"""The planned dispatch's plan (sim.policies.dag_staging): HEFT over slots, in a runnable order.

The simulator runs a planned job by sending every node to the slot this plan
names and letting each slot run its nodes in the order given; these tests
check the plan is HEFT's, that the order can never deadlock (a predecessor on
the same slot always comes first, even among zero-work nodes that tie on
their start), and that categories are honoured.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.policies.dag import Dag, DagEdge, DagNode
from sim.policies.dag_schedule import AgentSlot, heft_schedule
from sim.policies.dag_staging import plan_staged, slot_key
from sim.policies.types import AgentInfo


def transfer(mb: float, a: str, b: str) -> float:
    return 0.001 + mb / 100.0 + (0.05 if a != b else 0.0)


@st.composite
def dags(draw: st.DrawFn) -> Dag:
    n = draw(st.integers(1, 12))
    work = draw(st.lists(st.sampled_from([0.0, 1.0, 2.5, 4.0]), min_size=n, max_size=n))
    nodes = tuple(DagNode(i, "Generic", w) for i, w in enumerate(work))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=20))
    edges = {(a, b) for a, b in pairs if a < b}
    mb = draw(st.sampled_from([0.0, 10.0]))
    return Dag("g", nodes, tuple(DagEdge(a, b, mb) for a, b in sorted(edges)))


FLEET = [
    AgentInfo("a", "Generic", "Z1", speed=1.0, slots=1),
    AgentInfo("b", "Generic", "Z1", speed=2.0, slots=2),
    AgentInfo("c", "Generic", "Z2", speed=1.0, slots=1),
]


@settings(max_examples=200, deadline=None)
@given(dags())
def test_every_node_is_placed_once_and_each_slot_order_respects_the_edges(dag: Dag) -> None:
    plan = plan_staged(dag, FLEET, transfer)
    assert plan is not None
    assert sorted(plan.placement) == [n.node_id for n in dag.nodes]
    listed = [n for seq in plan.sequences.values() for n in seq]
    assert sorted(listed) == sorted(plan.placement)
    for slot, seq in plan.sequences.items():
        assert all(plan.placement[n] == slot for n in seq)
        position = {n: i for i, n in enumerate(seq)}
        for e in dag.edges:
            if e.src in position and e.dst in position:
                assert position[e.src] < position[e.dst], (slot, e)
    assert sorted(plan.send_order) == sorted(plan.placement)


def test_on_one_slot_agents_the_plan_is_hefts() -> None:
    dag = Dag(
        "diamond",
        (
            DagNode(0, "Generic", 2.0),
            DagNode(1, "Generic", 5.0),
            DagNode(2, "Generic", 1.0),
            DagNode(3, "Generic", 1.0),
        ),
        (DagEdge(0, 1, 50.0), DagEdge(0, 2, 1.0), DagEdge(1, 3, 1.0), DagEdge(2, 3, 50.0)),
    )
    fleet = [AgentInfo(f"x{i}", "Generic", "Z1") for i in range(3)]
    plan = plan_staged(dag, fleet, transfer)
    heft = heft_schedule(
        dag, [AgentSlot(slot_key(a.agent_id, 0), 1.0, "Z1") for a in fleet], transfer
    )
    assert plan is not None
    assert {n: slot_key(*plan.placement[n]) for n in plan.placement} == dict(heft.placement)
    assert plan.makespan_s == heft.makespan
    assert plan.send_order == heft.sequence
    assert plan.send_order[0] == 0  # the entry of the critical path leaves the chief first


def test_zero_work_nodes_that_tie_on_their_start_keep_the_predecessor_first() -> None:
    """Three empty nodes in a chain all start at 0 on one slot: the order must be the chain's."""
    dag = Dag(
        "empty-chain",
        (DagNode(5, "Generic", 0.0), DagNode(1, "Generic", 0.0), DagNode(3, "Generic", 0.0)),
        (DagEdge(5, 1), DagEdge(1, 3)),
    )
    plan = plan_staged(dag, [AgentInfo("solo", "Generic", "Z1")], transfer)
    assert plan is not None
    assert plan.sequences == {("solo", 0): (5, 1, 3)}


def test_nodes_go_only_to_agents_of_their_category() -> None:
    dag = Dag(
        "mixed",
        (DagNode(0, "CodeGen", 3.0), DagNode(1, "Review", 1.0), DagNode(2, "CodeGen", 3.0)),
        (DagEdge(0, 1), DagEdge(1, 2)),
    )
    fleet = [
        AgentInfo("fast-review", "Review", "Z1", speed=10.0),
        AgentInfo("coder", "CodeGen", "Z1", speed=1.0),
    ]
    plan = plan_staged(dag, fleet, transfer)
    assert plan is not None
    assert plan.placement == {0: ("coder", 0), 1: ("fast-review", 0), 2: ("coder", 0)}


def test_a_category_nobody_serves_gives_no_plan() -> None:
    dag = Dag("orphan", (DagNode(0, "Security", 1.0),), ())
    assert plan_staged(dag, [AgentInfo("coder", "CodeGen", "Z1")], transfer) is None
    assert plan_staged(Dag("empty", (), ()), FLEET, transfer) is None


def test_every_slot_of_an_agent_is_a_processor() -> None:
    dag = Dag("fan", tuple(DagNode(i, "Generic", 1.0) for i in range(3)), ())
    plan = plan_staged(dag, [AgentInfo("wide", "Generic", "Z1", slots=3)], transfer)
    assert plan is not None
    assert sorted(plan.placement.values()) == [("wide", 0), ("wide", 1), ("wide", 2)]
    assert plan.makespan_s == 1.0
