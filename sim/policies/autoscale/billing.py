"""Billing granularity: what a life is billed, and how much paid time an agent has left.

A cloud bills an agent's life rounded up to its unit (a second, an hour)
and never less than a minimum. Two consequences a fleet can act on: a short
life costs the minimum, and an agent stopped mid-hour under hourly billing
throws away the rest of an hour already paid. :func:`drain_by_paid_time` is
the scale-down rule that uses the hour: among a pool's candidates, drain the
one whose paid unit ends soonest; :func:`drain_choice` is which rule a
scale-down follows, the same in both shells.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "DrainCandidate",
    "billed_seconds",
    "drain_by_paid_time",
    "drain_choice",
    "paid_time_left",
]


def billed_seconds(life_s: float, unit_s: float | None, minimum_s: float = 0.0) -> float:
    """Seconds billed for a life of *life_s*: whole units, at least *minimum_s*.

    ``unit_s=None`` bills the life exactly (a smooth integral). A life of
    zero is billed zero: the agent never ran.
    """
    if life_s <= 0.0:
        return 0.0
    if unit_s is None:
        billed = life_s
    else:
        # (a hair under a whole unit of float noise does not start another unit)
        billed = max(1, math.ceil(life_s / unit_s - 1e-9)) * unit_s
    return max(billed, minimum_s)


def paid_time_left(age_s: float, unit_s: float) -> float:
    """Seconds left in the unit the agent is in now (a full unit at age 0 and on each boundary)."""
    into = math.fmod(max(age_s, 0.0), unit_s)
    return unit_s - into


@dataclass(frozen=True, slots=True)
class DrainCandidate:
    """One agent of a pool the scale-down may drain: its age and what it holds."""

    agent_id: str
    age_s: float
    load: int


def drain_by_paid_time(candidates: Sequence[DrainCandidate], unit_s: float) -> str | None:
    """The candidate whose paid unit ends soonest (then holding least, then by id)."""
    if not candidates:
        return None
    best = min(candidates, key=lambda c: (paid_time_left(c.age_s, unit_s), c.load, c.agent_id))
    return best.agent_id


def drain_choice(
    idlest: Callable[[], str | None],
    candidates: Callable[[], Sequence[DrainCandidate]],
    unit_s: float | None,
) -> str | None:
    """The pool's agent a scale-down drains.

    *unit_s* is the billing unit when the scenario asks to drain near the
    end of a paid unit (``purchase.billing.drain_near_paid_end``), else
    None: then the dispatch core's pick, *idlest* (holding least, then by
    id). Both are called only when their rule applies: listing a pool's
    candidates costs a pass over the fleet.
    """
    if unit_s is None:
        return idlest()
    return drain_by_paid_time(candidates(), unit_s)
