"""The HPA's behaviour rules: scaling policies, and the rate limits they set per period.

Kubernetes' ``HPAScalingRules`` as dataclasses, and the controller's
functions that bound a change by the scale events of each policy's period
(``horizontal.go``). :class:`~sim.policies.autoscale.hpa.HpaPolicy` applies
them always; :class:`~sim.policies.autoscale.keda.KedaQueuePolicy` when the
ScaledObject states a behaviour for the HPA that KEDA creates.
"""

from __future__ import annotations

import builtins
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sim.policies.autoscale.base import round_down, round_up

__all__ = [
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "ScalingPolicy",
    "ScalingRules",
    "down_limit",
    "record_change",
    "up_limit",
]


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """One HPA scaling policy (``HPAScalingPolicy``): at most *value* pods or percent per period."""

    kind: Literal["pods", "percent"]
    value: int
    period_s: float = 15.0

    def __post_init__(self) -> None:
        if self.value <= 0 or self.period_s <= 0:
            raise ValueError("expected a positive policy value and period")


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """One direction's HPA behaviour (``HPAScalingRules``).

    The recommendation used is the min (scale-up) or max (scale-down) over the
    recommendations of the last ``stabilization_window_s``; the change per
    period is bounded by ``policies``, combined by ``select`` ("max": the
    policy allowing the biggest change, Kubernetes' default; "min"; or
    "disabled": no change in this direction). No policies means no rate limit.
    """

    stabilization_window_s: float = 0.0
    policies: tuple[ScalingPolicy, ...] = ()
    select: Literal["max", "min", "disabled"] = "max"


#: Kubernetes' default scale-up behaviour: double or add 4 pods per 15 s, whichever is more.
DEFAULT_SCALE_UP = ScalingRules(
    0.0, (ScalingPolicy("percent", 100, 15.0), ScalingPolicy("pods", 4, 15.0))
)
#: Kubernetes' default scale-down behaviour: a 300 s window, then down to any size per 15 s.
DEFAULT_SCALE_DOWN = ScalingRules(300.0, (ScalingPolicy("percent", 100, 15.0),))


def record_change(
    now: float,
    before: int,
    after: int,
    ups: deque[tuple[float, int]],
    downs: deque[tuple[float, int]],
    periods: Iterable[float],
) -> None:
    """Remember a scale event for the rate limits; forget those older than every period."""
    if after > before:
        ups.append((now, after - before))
    elif after < before:
        downs.append((now, before - after))
    horizon = now - builtins.max(periods, default=0.0)
    for events in (ups, downs):
        while events and events[0][0] <= horizon:
            events.popleft()


def _changed_within(events: Iterable[tuple[float, int]], now: float, period_s: float) -> int:
    """getReplicasChangePerPeriod: replicas changed by events after ``now - period_s``."""
    return sum(n for when, n in events if when > now - period_s)


def up_limit(
    now: float,
    current: int,
    ups: Iterable[tuple[float, int]],
    downs: Iterable[tuple[float, int]],
    rules: ScalingRules,
) -> int | None:
    """calculateScaleUpLimitWithScalingRules; None when no policy limits the growth."""
    if rules.select == "disabled":
        return current
    if not rules.policies:
        return None
    proposals = []
    for policy in rules.policies:
        start = current - _changed_within(ups, now, policy.period_s)
        start += _changed_within(downs, now, policy.period_s)
        if policy.kind == "pods":
            proposals.append(start + policy.value)
        else:
            proposals.append(round_up(start * (1.0 + policy.value / 100.0)))
    return builtins.max(proposals) if rules.select == "max" else builtins.min(proposals)


def down_limit(
    now: float,
    current: int,
    ups: Iterable[tuple[float, int]],
    downs: Iterable[tuple[float, int]],
    rules: ScalingRules,
) -> int | None:
    """calculateScaleDownLimitWithBehaviors; None when no policy limits the shrinking."""
    if rules.select == "disabled":
        return current
    if not rules.policies:
        return None
    proposals = []
    for policy in rules.policies:
        start = current - _changed_within(ups, now, policy.period_s)
        start += _changed_within(downs, now, policy.period_s)
        if policy.kind == "pods":
            proposals.append(start - policy.value)
        else:
            proposals.append(round_down(start * (1.0 - policy.value / 100.0)))
    # "max" selects the policy allowing the biggest change: the lowest floor.
    return builtins.min(proposals) if rules.select == "max" else builtins.max(proposals)
