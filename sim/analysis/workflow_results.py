"""The makespan table's rows and their verdict: geometric means against the goal, rows that lose.

Split from :mod:`sim.analysis.workflow_table` (which re-exports it) so the
table's measuring and its judging can be read apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: The issue's goal for the geometric mean of makespan / lower bound.
GOAL = 1.05


@dataclass(frozen=True)
class Row:
    """One workflow on one fleet size: the makespans (s) and their ratios to the lower bound."""

    workflow: str
    recipe: str
    tasks: int
    edges: int
    data_gb: float
    agents: int
    work_s: float
    cp_s: float
    lower_bound_s: float
    interval_bound_s: float
    #: No dispatcher paying the simulator's control path ends sooner (dispatch_lower_bound).
    dispatch_bound_s: float
    heft_s: float
    heft_append_s: float
    greedy_s: float
    greedy_ctl_s: float
    sim_s: float
    sim_fifo_s: float
    #: The simulator with planned dispatch (policies.dag.dispatch: planned).
    sim_planned_s: float = math.nan
    #: No run at all ends sooner on this network (delivery_lower_bound, network legs only).
    delivery_bound_s: float = math.nan

    def ratio(self, makespan_s: float) -> float:
        return makespan_s / self.lower_bound_s


def geomean(values: Sequence[float]) -> float:
    return float(np.exp(np.mean(np.log(values)))) if len(values) else math.nan


@dataclass(frozen=True)
class Verdict:
    """The goal checked on a set of rows: the two geometric means and the rows that lose.

    ``sim_over_greedy_ctl`` lists each row where the simulator ends later than
    greedy FIFO paying the same control path, with the shortfall in seconds
    and as a share of that makespan: the goal wants it empty.
    ``sim_over_greedy`` does the same against static greedy (no control path)
    and ``sim_over_fifo`` against the simulator's own FIFO order, for context.
    ``closest`` is the row where the simulator comes nearest to losing to
    ``greedy_ctl``: (row, greedy_ctl - sim in s, as a share of greedy_ctl).
    ``greedy_beats_dispatchers`` lists the rows where static greedy ends
    before the dispatch bound: no dispatcher paying the control path (the
    simulator included) can match it there.
    ``planned_geomean`` and ``planned_over_greedy`` are the same figures for
    the simulator with planned dispatch, against static greedy; and
    ``greedy_beats_any_run`` lists the rows where static greedy ends before
    the delivery bound, which no run on the network can match.
    """

    heft_geomean: float
    sim_geomean: float
    heft_worse_than_greedy: tuple[str, ...]
    sim_over_greedy_ctl: tuple[tuple[str, float, float], ...]
    sim_over_greedy: tuple[tuple[str, float, float], ...]
    sim_over_fifo: tuple[tuple[str, float, float], ...]
    closest: tuple[str, float, float] | None
    greedy_beats_dispatchers: tuple[str, ...] = ()
    planned_geomean: float = math.nan
    planned_over_greedy: tuple[tuple[str, float, float], ...] = ()
    greedy_beats_any_run: tuple[str, ...] = ()

    @property
    def planned_met(self) -> bool:
        """Planned dispatch against static greedy: within GOAL, and never worse where any
        run could be as early (rows where static greedy ends before the delivery bound excepted).
        """
        beyond = set(self.greedy_beats_any_run)
        return (math.isnan(self.planned_geomean) or self.planned_geomean <= GOAL) and all(
            label in beyond for label, _d, _x in self.planned_over_greedy
        )

    @property
    def met(self) -> bool:
        """The issue's goal, strictly: both means within GOAL, no row worse than greedy FIFO.

        Like for like: HEFT against static greedy, the simulator against greedy
        paying the simulator's control path.
        """
        return (
            self.heft_geomean <= GOAL
            and (math.isnan(self.sim_geomean) or self.sim_geomean <= GOAL)
            and not self.heft_worse_than_greedy
            and not self.sim_over_greedy_ctl
        )


def _label(r: Row) -> str:
    return f"{r.workflow} P={r.agents}"


def _shortfalls(
    rows: Sequence[Row], ref: str, run: str = "sim_s"
) -> tuple[tuple[str, float, float], ...]:
    out = []
    for r in rows:
        base, made = getattr(r, ref), getattr(r, run)
        if not math.isnan(made) and made > base:
            out.append((_label(r), made - base, (made - base) / base))
    return tuple(out)


def verdict(rows: Sequence[Row]) -> Verdict:
    ran = [r for r in rows if not math.isnan(r.sim_s)]
    sims = [r.ratio(r.sim_s) for r in ran]
    planned = [r.ratio(r.sim_planned_s) for r in rows if not math.isnan(r.sim_planned_s)]
    margins = [
        (_label(r), r.greedy_ctl_s - r.sim_s, (r.greedy_ctl_s - r.sim_s) / r.greedy_ctl_s)
        for r in ran
    ]
    return Verdict(
        heft_geomean=geomean([r.ratio(r.heft_s) for r in rows]),
        sim_geomean=geomean(sims) if sims else math.nan,
        heft_worse_than_greedy=tuple(_label(r) for r in rows if r.heft_s > r.greedy_s),
        sim_over_greedy_ctl=_shortfalls(rows, "greedy_ctl_s"),
        sim_over_greedy=_shortfalls(rows, "greedy_s"),
        sim_over_fifo=_shortfalls(rows, "sim_fifo_s"),
        closest=min(margins, key=lambda m: m[2]) if margins else None,
        greedy_beats_dispatchers=tuple(_label(r) for r in rows if r.greedy_s < r.dispatch_bound_s),
        planned_geomean=geomean(planned) if planned else math.nan,
        planned_over_greedy=_shortfalls(rows, "greedy_s", "sim_planned_s"),
        greedy_beats_any_run=tuple(_label(r) for r in rows if r.greedy_s < r.delivery_bound_s),
    )
