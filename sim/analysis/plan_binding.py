"""What a simulated candidate fleet says about the binding constraint when it misses the SLO.

The planner grows the fleet while a candidate misses; that is only worth it
while agents are what is short. A missing candidate can show that something
else is: a coordinator near saturation (the chief, the busiest zone
coordinator or team lead at or above :data:`SATURATED` utilisation — every
task passes through it whatever the number of agents, and more agents add
heartbeats and status traffic to it), or a model provider refusing a good
share of the calls (:data:`THROTTLED_SHARE` or more answered 429, or a fifth
of that with attempts that spent their whole retry budget: a token bucket
refuses only when the offered load exceeds its rate, and more agents offer
more, not less), or, when the plan counts sheds, tenants' token budgets
shedding as large a share of the judged tiers' tasks (a budget refuses
whatever the fleet). Either way the planner stops adding agents and names the
constraint with the evidence.

Read from the candidate's replications' summaries (their mean), so the
evidence is the same the verdict was made on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["SATURATED", "THROTTLED_SHARE", "Saturation", "saturation"]

#: Utilisation of a coordinator at which it, not the agents, bounds the fleet.
SATURATED = 0.95

#: Share of model calls refused (429) at which the provider, not the agents, bounds the fleet.
THROTTLED_SHARE = 0.05

Kind = Literal["coordinator", "provider", "tenant_budget"]

_ROLES = (
    ("chief_utilization", "the chief"),
    ("zone_utilization_max", "the busiest zone coordinator"),
    ("team_lead_utilization_max", "the busiest team lead"),
)


@dataclass(frozen=True)
class Saturation:
    """A constraint other than agents that a candidate fleet ran into, and the evidence."""

    kind: Kind
    note: str


def _mean(summaries: Sequence[Mapping[str, Any]], *path: str) -> float:
    values = []
    for summary in summaries:
        node: Any = summary
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, int | float) and not isinstance(node, bool) and math.isfinite(node):
            values.append(float(node))
    return sum(values) / len(values) if values else math.nan


def _budget_shed(summary: Mapping[str, Any], tiers: tuple[str, ...]) -> float:
    """Share of *tiers*' submitted tasks shed for a tenant's token budget."""
    rows = [r for r in summary.get("tiers", {}).get("by_tier", []) if r["tier"] in tiers]
    submitted = sum(int(r["submitted"]) for r in rows)
    shed = sum(int(r.get("shed_by_reason", {}).get("tenant_budget", 0)) for r in rows)
    return shed / submitted if submitted else 0.0


def saturation(
    summaries: Sequence[Mapping[str, Any]],
    specialists: int,
    judged_tiers: tuple[str, ...] | None = None,
) -> Saturation | None:
    """The coordinator, provider or tenant budget a candidate of *specialists* ran into.

    *judged_tiers*: the tiers whose sheds the plan counts (None: sheds are not judged).
    """
    for key, role in _ROLES:
        used = _mean(summaries, "coordination", key)
        if used >= SATURATED:
            note = (
                f"{role} at {used:.0%} utilisation with {specialists} specialists: more agents "
                "add control traffic to it, not throughput (give it more vCPU, or flatten less)"
            )
            return Saturation("coordinator", note)
    if judged_tiers is not None:
        budget = _tenant_saturation(summaries, specialists, judged_tiers)
        if budget is not None:
            return budget
    requests = _mean(summaries, "llm", "requests")
    if not requests or not math.isfinite(requests):
        return None
    refused = _mean(summaries, "llm", "throttled") / requests
    failed = _mean(summaries, "llm", "rate_limited_attempts")
    if refused >= THROTTLED_SHARE or (failed > 0 and refused >= THROTTLED_SHARE / 5):
        note = (
            f"with {specialists} specialists {refused:.0%} of model calls were refused (429) "
            f"and {failed:.0f} attempts per run failed rate_limited: the provider's limit, not "
            "the agents, bounds throughput"
        )
        return Saturation("provider", note)
    return None


def _tenant_saturation(
    summaries: Sequence[Mapping[str, Any]], specialists: int, tiers: tuple[str, ...]
) -> Saturation | None:
    shares = [_budget_shed(s, tiers) for s in summaries]
    share = sum(shares) / len(shares) if shares else 0.0
    if share < THROTTLED_SHARE:
        return None
    note = (
        f"with {specialists} specialists {share:.1%} of the tasks of {', '.join(tiers)} were "
        "shed for tenants' token budgets, whatever the fleet: raise the budgets "
        "(tiers.tenants.<name>.tokens_per_min) or promise those tiers less"
    )
    return Saturation("tenant_budget", note)
