"""A tighter makespan lower bound, to tell a loose bound from a weak schedule.

The issue measures schedules against LB = max(critical path, total work / P)
(:func:`sim.policies.dag.makespan_lower_bound`). On workflows whose work sits
in a few long stages neither term binds: Epigenomics (1,000 tasks) on 16 agents has a
critical path of 1,120 s and work / P of 1,446 s, yet no schedule finishes before
about 1,920 s. A ratio of 1.39 to LB then says little about the
scheduler. This module computes the energetic ("interval") bound in the style
of Fernández and Bussell (IEEE Trans. Computers, 1973), which accounts for
that.

The argument: task *n* cannot start before its head ``es(n)`` (the longest
path of work into it) and must end at least its tail ``q(n)`` (the longest
path of work after it) before the makespan C. So inside the window
[θ1, C − θ2] it must run for at least

    w(n) − max(0, θ1 − es(n)) − max(0, θ2 − q(n)),

and P agents provide at most P · (C − θ1 − θ2) there. Hence
C ≥ θ1 + θ2 + (Σ of those amounts, floored at 0) / P for any θ1, θ2 with a
positive sum (with a zero sum the window may be empty and nothing follows).
The bound is the largest value over a grid of heads and tails, and never
below LB. Transfers are ignored, as in LB, so it bounds every network.

:func:`dispatch_lower_bound` is another kind of bound: not for every schedule,
but for every dispatcher that pays a control path (:class:`ControlPath`) —
where a static schedule ends before it, no such dispatcher can match it.
:func:`delivery_lower_bound` bounds every dispatcher whatsoever, a planned one
included, on a network where work must be sent to the agents and the end
reported back: a static schedule that ends before it is out of reach of any
real run.
"""

from __future__ import annotations

import math

import numpy as np

from sim.policies.dag import (
    Dag,
    DagNode,
    critical_path,
    makespan_lower_bound,
    topological_order,
    upward_rank,
)
from sim.policies.dag_schedule import ControlPath

#: Candidate window ends per side: quantiles of the heads and tails (any choice is valid).
GRID = 200


def interval_lower_bound(dag: Dag, n_agents: int, grid: int = GRID) -> float:
    """No schedule of *dag* on *n_agents* agents of speed 1 finishes before this (seconds).

    At least :func:`makespan_lower_bound`; a finer *grid* can only raise it.
    Costs O(grid² · nodes) array operations: about a second for 1,000 nodes.
    """
    base = makespan_lower_bound(dag, n_agents)
    if not dag.nodes:
        return base
    order = topological_order(dag)
    work = {n.node_id: n.work_s for n in dag.nodes}
    preds: dict[int, list[int]] = {nid: [] for nid in work}
    for edge in dag.edges:
        preds[edge.dst].append(edge.src)
    head: dict[int, float] = {}
    for nid in order:
        head[nid] = max((head[p] + work[p] for p in preds[nid]), default=0.0)
    rank = upward_rank(dag)
    w = np.array([work[n] for n in order])
    es = np.array([head[n] for n in order])
    q = np.array([rank[n] - work[n] for n in order])
    theta1 = _candidates(es, grid)
    theta2 = _candidates(q, grid)
    best = base
    for t1 in theta1:
        left = w - np.maximum(0.0, t1 - es)
        inside = np.clip(left[None, :] - np.maximum(0.0, theta2[:, None] - q[None, :]), 0.0, None)
        need = inside.sum(axis=1)
        ok = need > 0.0
        if ok.any():
            best = max(best, float((t1 + theta2[ok] + need[ok] / n_agents).max()))
    return best


def _candidates(values: np.ndarray, grid: int) -> np.ndarray:
    """0 and the distinct values, thinned to about *grid* quantiles when there are more."""
    unique = np.unique(np.concatenate([[0.0], values]))
    if len(unique) > grid:
        unique = np.unique(np.quantile(unique, np.linspace(0.0, 1.0, grid)))
    return unique


def dispatch_lower_bound(dag: Dag, n_agents: int, control: ControlPath) -> float:
    """No dispatcher paying *control* finishes *dag* on *n_agents* agents of speed 1 before this.

    A dispatcher that decides while the job runs (the simulator, or greedy
    with a :class:`ControlPath`) gets a task to an agent ``route_s`` after
    the task's release at the earliest, then ``assign_s`` (pushed to an idle
    agent) or ``pull_s`` (pulled by one that just freed) later; a task is
    released ``report_s`` after its last predecessor ends, and the job ends
    when the last report arrives. With c = min(assign_s, pull_s), two terms:

    * path: every node costs its work plus ``report_s + route_s + c``, so the
      longest path of those costs bounds the makespan;
    * work: on each agent every task is preceded by an idle stretch of at
      least c (a push is decided no sooner than the agent freed, a pull is
      asked when it frees), and the first starts no sooner than ``route_s``
      + c; so some agent ends after ``route_s + (work + n·c) / P``, and the
      job a report later.

    Transfers are ignored, so the bound holds on every network. Static
    schedules (HEFT, greedy without control) pay no message and are not
    bound by it: where one ends before it, no dispatcher paying *control*
    can match that static schedule.
    """
    if n_agents < 1:
        raise ValueError(f"n_agents must be at least 1, got {n_agents}")
    if not dag.nodes:
        return 0.0
    step = min(control.assign_s, control.pull_s)
    per_node = control.report_s + control.route_s + step
    costed = Dag(
        dag.name,
        tuple(DagNode(n.node_id, n.category, n.work_s + per_node) for n in dag.nodes),
        dag.edges,
    )
    path = critical_path(costed)[1]
    work = math.fsum(n.work_s for n in dag.nodes)
    busy = control.route_s + (work + len(dag.nodes) * step) / n_agents + control.report_s
    return max(path, busy)


def delivery_lower_bound(dag: Dag, n_agents: int, down_s: float, up_s: float) -> float:
    """No run of *dag* on *n_agents* agents of speed 1 ends before this, however it is dispatched.

    The job reaches the dispatcher at 0; no node can start before some
    message has carried work to an agent (*down_s* at the least), and the job
    is known done only when the last completion has come back (*up_s* at the
    least). All the work lies between, so the makespan is at least
    *down_s* + LB + *up_s*, with LB = max(critical path, work / P)
    (:func:`makespan_lower_bound`). With the network's one-way latencies
    alone (no processing, no transfers) it holds for a static plan sent
    ahead as much as for a dispatcher deciding as tasks end; static
    schedules, which assume work is on the agents at 0 and its end known at
    once, are not bound by it.
    """
    if down_s < 0.0 or up_s < 0.0:
        raise ValueError(f"latencies must be >= 0, got down {down_s!r}, up {up_s!r}")
    if not dag.nodes:
        return 0.0
    return down_s + makespan_lower_bound(dag, n_agents) + up_s
