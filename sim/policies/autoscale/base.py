"""What every autoscaler shares: the observation, the decision, the protocol, small helpers.

The helpers build the two kinds of decision (hold, move), apply the bound
correction the contract promises, and round without float noise, so the
three policies word and bound their decisions the same way.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "EPS",
    "Autoscaler",
    "FleetObservation",
    "ScaleDecision",
    "ScaleRecord",
    "bound_correction",
    "check_bounds",
    "fmt_num",
    "hold",
    "move",
    "round_down",
    "round_up",
]

#: Relative float noise ignored when rounding replica counts and comparing sizes.
EPS = 1e-9


@dataclass(frozen=True, slots=True)
class FleetObservation:
    """The fleet as an autoscaler sees it at one evaluation, averaged by the shell.

    ``agents`` is what ``min_agents``/``max_agents`` bound: specialists running
    or starting, not draining. ``ready`` of them serve; ``starting`` were asked
    for and are still inside their spawn delay. Times are seconds, shares are
    fractions in 0..1, ``arrival_rate`` is tasks per second.
    """

    agents: int
    ready: int
    starting: int
    queue_depth: float
    avg_response_time_s: float
    cpu_utilization: float
    idle_fraction: float
    in_flight: float = 0.0
    arrival_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    """What to do now: ``delta`` agents (+ add, - drain, 0 nothing) to reach ``target``.

    ``reason`` says which rule fired with which value, or why nothing happened
    ("cooldown", "at max", "not polled", ...); ``policy`` names the autoscaler.
    """

    delta: int
    target: int
    reason: str
    policy: str


@dataclass(frozen=True, slots=True)
class ScaleRecord:
    """One change an autoscaler made, as its ``scale`` event records it: when, from, to."""

    time_s: float
    before: int
    after: int


class Autoscaler(Protocol):
    """What the fleet shell needs from an autoscaling policy (see the module docstring)."""

    def restore(self, history: Sequence[ScaleRecord]) -> None:
        """Take over a predecessor's memory from the changes it made, oldest first.

        The spec's chiefs replicate the autoscaler's decisions with Raft, so a
        new leader keeps their cooldowns; a live coordinator taking over reads
        them back from the event log. Without them it would scale again at once.
        """
        ...

    def decide(self, obs: FleetObservation, now: float) -> ScaleDecision:
        """Decide the fleet size at time *now* (seconds) from *obs*."""
        ...

    def force_scale_up(self, now: float, reason: str) -> None:
        """Make the next :meth:`decide` scale up past any delay (alert ``scale_up_immediate``)."""
        ...


def fmt_num(value: float) -> str:
    """A number as a decision's reason shows it: six significant digits, no trailing zeros."""
    return f"{value:.6g}"


def round_up(value: float) -> int:
    """Round up, ignoring float noise (2.0000000000000004 is 2, not 3)."""
    return math.ceil(value - EPS * builtins.max(1.0, abs(value)))


def round_down(value: float) -> int:
    """Round down, ignoring float noise (1.9999999999999998 is 2, not 1)."""
    return math.floor(value + EPS * builtins.max(1.0, abs(value)))


def check_bounds(lo: int, hi: int) -> None:
    """Refuse a config whose bounds no fleet size can meet (checked once, at construction)."""
    if lo < 0 or hi < lo:
        raise ValueError(f"expected 0 <= min_agents <= max_agents, got {lo} and {hi}")


def hold(obs: FleetObservation, reason: str, policy: str) -> ScaleDecision:
    """Change nothing, saying why: every "no" names its rule, so a timeline explains itself."""
    return ScaleDecision(0, obs.agents, reason, policy)


def move(obs: FleetObservation, target: int, reason: str, policy: str) -> ScaleDecision:
    """Go to *target*; the delta is derived, so ``target == agents + delta`` always holds."""
    return ScaleDecision(target - obs.agents, target, reason, policy)


def bound_correction(obs: FleetObservation, lo: int, hi: int, policy: str) -> ScaleDecision | None:
    """Bring a fleet outside [lo, hi] straight back to the nearer bound, or None if inside."""
    if obs.agents < lo:
        return move(obs, lo, f"below min_agents: {obs.agents} < {lo}", policy)
    if obs.agents > hi:
        return move(obs, hi, f"above max_agents: {obs.agents} > {hi}", policy)
    return None
