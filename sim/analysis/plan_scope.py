"""Which tasks a plan promises the SLO to: every task, or every tier but a shed lowest one.

Without tiers a plan is judged on all tasks. With tiers whose admission can
shed (a queue limit, or a provider budget to watch), the planner answers two
questions (:func:`scopes`):

* **every tier** — the fleet that serves all of them: each tier's p99 wait
  within the target (the worst of them is judged: the promise is per tier,
  and the lowest tier, served last, is usually the worst), and the tasks
  shed (of any tier) counted against the error-rate target, since a shed
  task is one not served;
* **shed the lowest** — the fleet that keeps the same promise to the tiers
  above the lowest: the worst of their p99 waits within the target, their
  shed share within the error-rate target, and the lowest tier shed as much
  as admission decides. Its constraints are a subset of the first plan's,
  so it is searched at or below that plan's size; the plan reports each
  tier's shed share, so the price of the smaller fleet is on the page.

A scope also says how much of each category's load it carries: the share of
the category's tasks in the judged tiers (its ``tiers.by_category`` weights,
else the levels' shares). The analytic guess and the provider check use it,
so a fleet that may shed the batch tier is sized for the work it keeps. DAG
nodes are never shed; the share is applied to a category's whole rate, which
overstates the shed part by the DAG nodes' share of the category (small in
the shipped scenarios; the simulation decides anyway).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sim.scenario.schema import Scenario

__all__ = ["Scope", "can_shed", "scopes", "shed_shares"]


@dataclass(frozen=True)
class Scope:
    """The tasks judged: ``tiers`` None means all tasks; ``shed_free`` the tier left to shed."""

    tiers: tuple[str, ...] | None = None
    shed_free: str | None = None
    #: Whether sheds count against the error-rate target (only when tiers can shed).
    counts_sheds: bool = False

    @property
    def label(self) -> str:
        if self.shed_free is not None:
            return f"shed {self.shed_free}"
        return "every tier" if self.counts_sheds else "all tasks"

    def describe(self) -> str:
        """What the SLO was judged on, in a sentence's words."""
        if self.shed_free is not None and self.tiers is not None:
            return (
                f"p99 wait of each tier {', '.join(self.tiers)} within the target and their "
                f"shed share within the error rate; {self.shed_free} may be shed"
            )
        if self.tiers is not None:
            return (
                f"p99 wait of each tier {', '.join(self.tiers)} within the target; tasks shed "
                "(any tier) count as errors"
            )
        return "p99 wait over all tasks"

    def p99_wait(self, summary: Mapping[str, Any]) -> float:
        """The p99 wait judged: all tasks', or the worst judged tier's (NaN: it served none)."""
        if self.tiers is None:
            return float(summary["wait_s"]["p99"])
        rows = {r["tier"]: r for r in summary.get("tiers", {}).get("by_tier", [])}
        waits = []
        for tier in self.tiers:
            row = rows.get(tier)
            if row is None or not row.get("completed"):
                continue  # a tier with no work in the window promises nothing
            waits.append(float(row["wait_s"]["p99"]))
        return max(waits) if waits else math.nan

    def shed_share(self, summary: Mapping[str, Any]) -> float:
        """Share of the judged tiers' submitted tasks that were shed (0 without sheds)."""
        if not self.counts_sheds:
            return 0.0
        rows = summary.get("tiers", {}).get("by_tier", [])
        judged = [r for r in rows if self.tiers is None or r["tier"] in self.tiers]
        submitted = sum(int(r["submitted"]) for r in judged)
        return sum(int(r["shed"]) for r in judged) / submitted if submitted else 0.0

    def load_share(self, scenario: Scenario, category: str) -> float:
        """The share of *category*'s tasks this scope judges (and sizes the fleet for)."""
        tiers = scenario.tiers
        if tiers is None or self.tiers is None:
            return 1.0
        weights = tiers.weights(category)
        total = sum(weights)
        if total <= 0:
            return 1.0
        names = [level.name for level in tiers.levels]
        return sum(w for name, w in zip(names, weights, strict=True) if name in self.tiers) / total


def can_shed(scenario: Scenario) -> bool:
    """Whether admission can shed: tiers, and a queue limit or a provider budget to read."""
    tiers = scenario.tiers
    if tiers is None:
        return False
    return tiers.queue_limit is not None or scenario.llm is not None or tiers.budgets


def scopes(scenario: Scenario) -> tuple[Scope, Scope | None]:
    """The plan's scope, and the shed-the-lowest alternative when tiers can shed (else None)."""
    tiers = scenario.tiers
    if tiers is None or not can_shed(scenario):
        return Scope(), None
    names = tuple(level.name for level in tiers.levels)
    main = Scope(names, None, counts_sheds=True)
    if len(names) < 2:
        return main, None
    return main, Scope(names[:-1], names[-1], counts_sheds=True)


def shed_shares(summary: Mapping[str, Any]) -> dict[str, float]:
    """Each tier's shed share (shed over submitted) in a summary; {} without tiers."""
    out = {}
    for row in summary.get("tiers", {}).get("by_tier", []):
        submitted = int(row["submitted"])
        out[str(row["tier"])] = int(row["shed"]) / submitted if submitted else 0.0
    return out
