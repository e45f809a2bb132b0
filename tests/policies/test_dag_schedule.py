"""Static schedules: insertion-based HEFT against a naive model, and greedy FIFO.

What insertion-based HEFT guarantees, and what it does not:

* Every schedule is feasible: no agent runs two tasks at once, and a task
  starts only after each predecessor finished and its data arrived.
* Placing one task, insertion never does worse than appending: on every
  agent the earliest fitting gap starts no later than the agent's last
  finish. So at the first task where the two variants decide differently,
  the insertion variant's finish is no later.
* The whole makespan is NOT guaranteed to be no worse: a different early
  placement changes what every later task sees. A six-task graph below
  shows insertion losing by one second; the test pins it so nobody states
  the guarantee by mistake.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis.dag_bounds import dispatch_lower_bound
from sim.policies.dag import (
    Dag,
    DagEdge,
    DagNode,
    makespan_lower_bound,
    topological_order,
    upward_rank,
)
from sim.policies.dag_schedule import (
    AgentSlot,
    ControlPath,
    Schedule,
    greedy_schedule,
    heft_schedule,
)

PROPS = settings(max_examples=150, deadline=None)
TOL = 1e-9

Transfer = Callable[[float, str, str], float]


def zone_transfer(mb: float, a: str, b: str) -> float:
    return mb * 0.01 if a == b else 0.2 + mb * 0.05


def per_mb(mb: float, a: str, b: str) -> float:
    return mb


def close_or_above(a: float, b: float) -> bool:
    return a >= b - TOL * max(1.0, abs(b))


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 14) -> Dag:
    """A random DAG: edges go forwards in a hidden order; small integer-ish work and data.

    Whole numbers make ties (equal finishes, touching intervals) common,
    which is where gap search and tie-breaking go wrong if they do.
    """
    n = draw(st.integers(1, max_nodes))
    ids = draw(st.permutations(range(n)))
    works = draw(st.lists(st.integers(0, 8).map(float), min_size=n, max_size=n))
    edges = []
    for i, j in itertools.combinations(range(n), 2):
        if draw(st.booleans()):
            edges.append(DagEdge(ids[i], ids[j], float(draw(st.integers(0, 6)))))
    nodes = tuple(DagNode(ids[i], "C", works[i]) for i in range(n))
    return Dag("random", nodes, tuple(draw(st.permutations(edges))))


@st.composite
def fleets(draw: st.DrawFn) -> list[AgentSlot]:
    n = draw(st.integers(1, 4))
    return [
        AgentSlot(
            f"agent-{i}",
            draw(st.sampled_from([0.5, 1.0, 2.0])),
            draw(st.sampled_from(["eu", "us"])),
        )
        for i in range(n)
    ]


def assert_feasible(sched: Schedule, dag: Dag, agents: list[AgentSlot], transfer: Transfer) -> None:
    by_id = {a.agent_id: a for a in agents}
    work = {n.node_id: n.work_s for n in dag.nodes}
    assert set(sched.placement) == set(work) == set(sched.sequence)
    assert len(sched.sequence) == len(work)
    for nid, aid in sched.placement.items():
        assert math.isclose(
            sched.finish[nid] - sched.start[nid], work[nid] / by_id[aid].speed, abs_tol=TOL
        )
        assert sched.start[nid] >= 0.0
    for e in dag.edges:
        a, b = by_id[sched.placement[e.src]], by_id[sched.placement[e.dst]]
        cost = 0.0 if a is b else transfer(e.data_mb, a.zone, b.zone)
        assert close_or_above(sched.start[e.dst], sched.finish[e.src] + cost)
    for aid in by_id:
        mine = sorted(
            (sched.start[n], sched.finish[n]) for n, x in sched.placement.items() if x == aid
        )
        for (_s0, f0), (s1, _f1) in itertools.pairwise(mine):
            assert close_or_above(s1, f0)
    assert sched.makespan == max(sched.finish.values())
    fastest = max(a.speed for a in agents)
    assert close_or_above(sched.makespan, makespan_lower_bound(dag, len(agents), fastest))


# ----------------------------------------------------------------------------- feasibility


@PROPS
@given(dags(), fleets(), st.sampled_from(["insertion", "append", "greedy"]))
def test_every_schedule_is_feasible(dag: Dag, agents: list[AgentSlot], kind: str) -> None:
    if kind == "greedy":
        sched = greedy_schedule(dag, agents, zone_transfer)
    else:
        sched = heft_schedule(dag, agents, zone_transfer, insertion=kind == "insertion")
    assert_feasible(sched, dag, agents, zone_transfer)


# ----------------------------------------------------------------------------- HEFT, insertion


def naive_insertion_heft(dag: Dag, agents: list[AgentSlot], transfer: Transfer) -> Schedule:
    """The paper's insertion policy written plainly: scan every idle interval of every agent.

    No bisect and no per-zone shortcut: the model the indexed version must
    agree with exactly (same placements, same times, same order).
    """
    rank = upward_rank(
        dag,
        lambda mb: (
            sum(transfer(mb, a.zone, b.zone) for a, b in itertools.permutations(agents, 2))
            / (len(agents) * (len(agents) - 1))
            if len(agents) > 1
            else 0.0
        ),
        sum(a.speed for a in agents) / len(agents),
    )
    topo = {nid: i for i, nid in enumerate(topological_order(dag))}
    work = {n.node_id: n.work_s for n in dag.nodes}
    preds: dict[int, list[DagEdge]] = {n.node_id: [] for n in dag.nodes}
    for e in dag.edges:
        preds[e.dst].append(e)
    sequence = sorted(work, key=lambda n: (-rank[n], topo[n]))
    busy: list[list[tuple[float, float]]] = [[] for _ in agents]
    where: dict[int, int] = {}
    start: dict[int, float] = {}
    finish: dict[int, float] = {}
    for nid in sequence:
        best: tuple[float, int, float] | None = None
        for i, agent in enumerate(agents):
            ready = 0.0
            for e in preds[nid]:
                j = where[e.src]
                cost = 0.0 if j == i else transfer(e.data_mb, agents[j].zone, agent.zone)
                ready = max(ready, finish[e.src] + cost)
            d = work[nid] / agent.speed
            # Idle stretches: before the first task, between tasks, after the last.
            edges_ = [0.0]
            for s, f in sorted(busy[i]):
                edges_.extend([s, f])
            edges_.append(math.inf)
            chosen = math.inf
            for lo, hi in zip(edges_[::2], edges_[1::2], strict=True):
                s = max(lo, ready)
                if s + d <= hi:
                    chosen = s
                    break
            if best is None or chosen + d < best[0]:
                best = (chosen + d, i, chosen)
        assert best is not None
        f, i, s = best
        busy[i].append((s, f))
        where[nid], start[nid], finish[nid] = i, s, f
    return Schedule(
        placement={n: agents[where[n]].agent_id for n in work},
        start=start,
        finish=finish,
        makespan=max(finish.values(), default=0.0),
        sequence=tuple(sequence),
    )


@PROPS
@given(dags(), fleets())
def test_indexed_gap_search_agrees_with_the_naive_scan(dag: Dag, agents: list[AgentSlot]) -> None:
    fast = heft_schedule(dag, agents, per_mb)
    model = naive_insertion_heft(dag, agents, per_mb)
    assert fast.sequence == model.sequence
    assert dict(fast.placement) == dict(model.placement)
    for nid in model.start:
        assert math.isclose(fast.start[nid], model.start[nid], abs_tol=TOL)
    assert math.isclose(fast.makespan, model.makespan, abs_tol=TOL)


@PROPS
@given(dags(), fleets())
def test_insertion_finishes_no_later_where_the_variants_first_part(
    dag: Dag, agents: list[AgentSlot]
) -> None:
    """Same rank order, same choices until one task: there, insertion's finish is no later.

    And if they never part, the schedules (and makespans) are the same.
    """
    ins = heft_schedule(dag, agents, per_mb, insertion=True)
    app = heft_schedule(dag, agents, per_mb, insertion=False)
    assert ins.sequence == app.sequence
    for nid in ins.sequence:
        if ins.placement[nid] != app.placement[nid] or ins.start[nid] != app.start[nid]:
            assert ins.finish[nid] <= app.finish[nid]
            break
    else:
        assert ins.makespan == app.makespan


def test_a_task_fills_the_gap_a_transfer_left() -> None:
    """Tasks 0 and 1 feed 2 over a 3 s transfer, which leaves agent a idle from 4 to 7.

    The three small independent tasks rank last. Appending them stacks all
    three on agent b (13 s); insertion slots the first into a's gap and the
    job ends with task 2 at 11 s — the lower bound is 10.5 s.
    """
    nodes = (
        DagNode(0, "C", 4.0),
        DagNode(1, "C", 4.0),
        DagNode(2, "C", 4.0),
        DagNode(3, "C", 3.0),
        DagNode(4, "C", 3.0),
        DagNode(5, "C", 3.0),
    )
    edges = (DagEdge(0, 2, 3.0), DagEdge(1, 2, 3.0))
    dag = Dag("gap", nodes, edges)
    agents = [AgentSlot("a", 1.0, "z"), AgentSlot("b", 1.0, "z")]
    app = heft_schedule(dag, agents, per_mb, insertion=False)
    assert dict(app.placement) == {0: "a", 1: "b", 2: "a", 3: "b", 4: "b", 5: "b"}
    assert app.makespan == 13.0
    ins = heft_schedule(dag, agents, per_mb)
    assert dict(ins.placement) == {0: "a", 1: "b", 2: "a", 3: "a", 4: "b", 5: "b"}
    assert (ins.start[2], ins.start[3]) == (7.0, 4.0)  # 3 runs in the gap, before 2 on a
    assert ins.makespan == 11.0
    assert makespan_lower_bound(dag, 2) == 10.5


def test_insertion_is_not_always_better_than_appending() -> None:
    """A six-task graph on two agents: insertion 13 s, append 12 s (found by random search).

    Filling a gap with task 3 early moves where 2 and 4 go, and the join pays
    a transfer it would not have paid. The guarantee is per placement only.
    """
    nodes = tuple(DagNode(i, "C", w) for i, w in enumerate([1.0, 3.0, 6.0, 6.0, 2.0, 3.0]))
    edges = (
        DagEdge(0, 4, 2.0),
        DagEdge(1, 2, 0.0),
        DagEdge(1, 3, 0.0),
        DagEdge(1, 4, 1.0),
        DagEdge(1, 5, 2.0),
        DagEdge(2, 4, 2.0),
        DagEdge(3, 4, 1.0),
    )
    dag = Dag("loses", nodes, edges)
    agents = [AgentSlot("a", 1.0, "z"), AgentSlot("b", 1.0, "z")]
    ins = heft_schedule(dag, agents, per_mb)
    app = heft_schedule(dag, agents, per_mb, insertion=False)
    assert_feasible(ins, dag, agents, per_mb)
    assert (ins.makespan, app.makespan) == (13.0, 12.0)


# ----------------------------------------------------------------------------- greedy FIFO


def test_greedy_takes_ready_tasks_in_release_order_to_the_first_free_agent() -> None:
    """Entry tasks leave in id order to agents a and b; the third waits for the first to free.

    Task 2 is ready at 0 s but both agents are busy; it goes to a when a frees
    at 2 s. Task 3, released by 0 at that same instant, queues behind it (FIFO
    by release, though its rank is far higher) and runs on a from 3 s.
    """
    nodes = (
        DagNode(0, "C", 2.0),
        DagNode(1, "C", 4.0),
        DagNode(2, "C", 1.0),
        DagNode(3, "C", 10.0),
    )
    dag = Dag("fifo", nodes, (DagEdge(0, 3, 1.0),))
    agents = [AgentSlot("a", 1.0, "z"), AgentSlot("b", 1.0, "z")]
    sched = greedy_schedule(dag, agents, per_mb)
    assert sched.sequence == (0, 1, 2, 3)
    assert dict(sched.placement) == {0: "a", 1: "b", 2: "a", 3: "a"}
    assert dict(sched.start) == {0: 0.0, 1: 0.0, 2: 2.0, 3: 3.0}
    assert sched.makespan == 13.0


def test_greedy_pays_the_transfer_from_assignment() -> None:
    """A task assigned to an agent that lacks its input starts after the transfer."""
    nodes = (DagNode(0, "C", 2.0), DagNode(1, "C", 5.0), DagNode(2, "C", 1.0))
    dag = Dag("pull", nodes, (DagEdge(0, 2, 4.0),))
    agents = [AgentSlot("a", 1.0, "z"), AgentSlot("b", 1.0, "z")]
    sched = greedy_schedule(dag, agents, per_mb)
    # 0 on a (0-2), 1 on b (0-5); 2 released at 2 on a (which holds its input): no transfer.
    assert (sched.placement[2], sched.start[2]) == ("a", 2.0)
    nodes = (DagNode(0, "C", 1.0), DagNode(1, "C", 2.0), DagNode(2, "C", 1.0))
    sched = greedy_schedule(Dag("pull2", nodes, (DagEdge(1, 2, 4.0),)), agents, per_mb)
    # 1 ran on b; at 2 s both agents are free and a is listed first: it fetches 4 s of data.
    assert (sched.placement[2], sched.start[2]) == ("a", 6.0)
    assert sched.makespan == 7.0


@pytest.mark.parametrize("scheduler", ["heft", "greedy"])
def test_schedulers_reject_bad_fleets(scheduler: str) -> None:
    dag = Dag("one", (DagNode(0, "C", 1.0),), ())
    run = (
        (lambda agents: heft_schedule(dag, agents, per_mb))
        if scheduler == "heft"
        else (lambda agents: greedy_schedule(dag, agents, per_mb))
    )
    with pytest.raises(ValueError, match="at least one agent"):
        run([])
    with pytest.raises(ValueError, match="speed"):
        run([AgentSlot("a", -1.0, "z")])


# ----------------------------------------------------------------------------- greedy, control


def test_greedy_without_control_is_greedy_with_a_free_control_path() -> None:
    """ControlPath() (every leg 0) is the textbook schedule, bit for bit."""
    nodes = (DagNode(0, "C", 2.0), DagNode(1, "C", 4.0), DagNode(2, "C", 1.0))
    dag = Dag("free", (*nodes, DagNode(3, "C", 3.0)), (DagEdge(0, 3, 1.0), DagEdge(2, 3, 2.0)))
    agents = [AgentSlot("a", 1.0, "z"), AgentSlot("b", 1.0, "z")]
    assert greedy_schedule(dag, agents, per_mb, ControlPath()) == greedy_schedule(
        dag, agents, per_mb
    )


def test_greedy_pays_each_leg_of_the_control_path() -> None:
    """A chain and a queued task on one agent, timed by hand from the four legs."""
    ctl = ControlPath(report_s=0.5, route_s=0.25, assign_s=0.125, pull_s=2.0)
    agents = [AgentSlot("a", 1.0, "z")]
    chain = Dag("chain", (DagNode(0, "C", 1.0), DagNode(1, "C", 1.0)), (DagEdge(0, 1, 0.0),))
    sched = greedy_schedule(chain, agents, per_mb, ctl)
    # Entry: routed, then pushed to the idle agent: 0.375. Its child: report, route, push.
    assert dict(sched.start) == {0: 0.375, 1: 1.375 + 0.875}
    # The job ends when the last completion report arrives.
    assert sched.makespan == 3.25 + 0.5
    both = Dag("both", (DagNode(0, "C", 1.0), DagNode(1, "C", 1.0)), ())
    sched = greedy_schedule(both, agents, per_mb, ctl)
    # 1 waits in the queue; the agent pulls it when 0 ends (1.375): a round trip of 2 s.
    assert dict(sched.start) == {0: 0.375, 1: 3.375}
    assert sched.makespan == 4.375 + 0.5


def test_a_released_task_waits_for_its_route_before_an_agent_frees_for_it() -> None:
    """An agent freeing before a released task reaches the queue sits idle, then is pushed it."""
    ctl = ControlPath(report_s=1.0, route_s=1.0, assign_s=0.5, pull_s=4.0)
    nodes = (DagNode(0, "C", 1.0), DagNode(1, "C", 1.0))
    sched = greedy_schedule(
        Dag("late", nodes, (DagEdge(0, 1, 3.0),)), [AgentSlot("a", 1.0, "z")], per_mb, ctl
    )
    # 0: 1.5-2.5; 1 joins the queue at 4.5 and is pushed (0.5), not pulled; same agent: no data.
    assert dict(sched.start) == {0: 1.5, 1: 5.0}


@pytest.mark.parametrize("leg", ["report_s", "route_s", "assign_s", "pull_s"])
def test_control_legs_must_be_finite_and_non_negative(leg: str) -> None:
    for bad in (-0.1, math.inf, math.nan):
        with pytest.raises(ValueError, match=leg):
            ControlPath(**{leg: bad})


@PROPS
@given(
    dags(),
    fleets(),
    st.tuples(*[st.sampled_from([0.0, 0.25, 1.0])] * 4).map(lambda legs: ControlPath(*legs)),
)
def test_greedy_with_control_is_feasible_and_pays_at_least_the_legs(
    dag: Dag, agents: list[AgentSlot], ctl: ControlPath
) -> None:
    """Every start is at least a release and a push after its inputs; the end, one report after.

    And on agents of speed 1 it never beats the bound for dispatchers paying the same path.
    """
    sched = greedy_schedule(dag, agents, zone_transfer, ctl)
    free_makespan = max(sched.finish.values(), default=0.0)
    assert sched.makespan == free_makespan + (ctl.report_s if dag.nodes else 0.0)
    assert_feasible(
        Schedule(sched.placement, sched.start, sched.finish, free_makespan, sched.sequence),
        dag,
        agents,
        zone_transfer,
    )
    if all(a.speed == 1.0 for a in agents):
        bound = dispatch_lower_bound(dag, len(agents), ctl)
        assert close_or_above(sched.makespan, bound)
    least = min(ctl.assign_s, ctl.pull_s)
    preds: dict[int, list[int]] = {n.node_id: [] for n in dag.nodes}
    for e in dag.edges:
        preds[e.dst].append(e.src)
    for nid, srcs in preds.items():
        ready = max((sched.finish[s] + ctl.report_s for s in srcs), default=0.0)
        assert close_or_above(sched.start[nid], ready + ctl.route_s + least)


def test_the_dispatch_bound_is_tight_on_a_chain_and_on_a_queue() -> None:
    """Greedy with control meets the bound exactly where nothing else delays it."""
    ctl = ControlPath(report_s=0.5, route_s=0.25, assign_s=0.125, pull_s=2.0)
    chain = Dag("chain", (DagNode(0, "C", 1.0), DagNode(1, "C", 1.0)), (DagEdge(0, 1, 0.0),))
    agents = [AgentSlot("a", 1.0, "z")]
    assert (
        dispatch_lower_bound(chain, 1, ctl) == greedy_schedule(chain, agents, per_mb, ctl).makespan
    )
    # Two independent tasks on one agent: the bound takes the cheaper push (0.125) for the
    # second task's gap, greedy pays the pull (2 s): the bound is below, by the difference.
    both = Dag("both", (DagNode(0, "C", 1.0), DagNode(1, "C", 1.0)), ())
    gap = greedy_schedule(both, agents, per_mb, ctl).makespan - dispatch_lower_bound(both, 1, ctl)
    assert gap == pytest.approx(2.0 - 0.125)
