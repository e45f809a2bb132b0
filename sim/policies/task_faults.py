"""Whether a task attempt ends in an error or a timeout, and when.

Real agents fail tasks far more often than they crash: a model call errors,
a tool times out, a result fails validation. Each attempt fails with a
probability per category (raised for a while by an error burst on the chaos
timeline), independently of every other attempt; an attempt that would run
past its deadline is cut off at the deadline. An error shows up part-way
through the work, at a uniform point of it, because that is when a real
agent finds out.

Pure: the shell passes the uniform draws in (``keyed_draws.attempt_draws``),
so both shells (and the tests) decide identically from the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "AttemptFaults",
    "Burst",
    "Fault",
    "attempt_fate",
    "probability_at",
]


@dataclass(frozen=True, slots=True)
class Fault:
    """An attempt that will fail: why, and how many seconds after its service starts."""

    reason: str  # "error" | "timeout"
    after_s: float


@dataclass(frozen=True, slots=True)
class Burst:
    """A spell of raised error probability for some categories and zones (empty: all)."""

    probability: float
    categories: frozenset[str] = frozenset()
    zones: frozenset[str] = frozenset()

    def covers(self, category: str, zone: str) -> bool:
        return (not self.categories or category in self.categories) and (
            not self.zones or zone in self.zones
        )


class AttemptFaults:
    """Per-category error probabilities and deadlines, plus any bursts under way."""

    def __init__(
        self,
        probability: float = 0.0,
        by_category: Mapping[str, float] | None = None,
        deadline_s: float | None = None,
        deadline_by_category: Mapping[str, float] | None = None,
    ) -> None:
        for p in (probability, *(by_category or {}).values()):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"error probability must be in [0, 1), got {p}")
        for d in (deadline_s, *(deadline_by_category or {}).values()):
            if d is not None and d <= 0:
                raise ValueError(f"deadline must be positive, got {d}")
        self._default = probability
        self._by_category = dict(by_category or {})
        self._deadline = deadline_s
        self._deadline_by_category = dict(deadline_by_category or {})
        self._bursts: dict[str, Burst] = {}

    @property
    def active(self) -> bool:
        """Whether any attempt can fail at all (the shell skips the draws when not)."""
        return bool(
            self._default
            or any(self._by_category.values())
            or self._deadline is not None
            or self._deadline_by_category
            or self._bursts
        )

    def start_burst(self, name: str, burst: Burst) -> None:
        self._bursts[name] = burst

    def end_burst(self, name: str) -> None:
        self._bursts.pop(name, None)

    def base_probability(self, category: str) -> float:
        """The chance that one attempt of *category* errors outside any burst."""
        return self._by_category.get(category, self._default)

    def probability(self, category: str, zone: str) -> float:
        """The chance that one attempt of *category* in *zone* errors, bursts included."""
        p = self.base_probability(category)
        for burst in self._bursts.values():
            if burst.covers(category, zone):
                p = max(p, burst.probability)
        return p

    def deadline(self, category: str, task_deadline_s: float | None = None) -> float | None:
        """The attempt's deadline: the task's own, else its category's, else the default."""
        if task_deadline_s is not None:
            return task_deadline_s
        return self._deadline_by_category.get(category, self._deadline)

    def fault(
        self,
        category: str,
        zone: str,
        service_s: float,
        draws: Iterable[float],
        task_deadline_s: float | None = None,
    ) -> Fault | None:
        """The attempt's fate from two uniform draws: None if it completes.

        An error that would come after the deadline loses to the timeout.
        """
        u_error, u_when = draws
        deadline = self.deadline(category, task_deadline_s)
        return attempt_fate(self.probability(category, zone), deadline, service_s, u_error, u_when)


def attempt_fate(
    probability: float, deadline_s: float | None, service_s: float, u_error: float, u_when: float
) -> Fault | None:
    """One attempt's fate once its error probability and deadline are known: None if it
    completes. The live agent calls this with the draws its coordinator sent, knowing its
    own service time (speed and slowdown included), as the simulator's agent does.

    An error that would come after the deadline loses to the timeout.
    """
    if probability > 0 and u_error < probability:
        after = u_when * service_s
        if deadline_s is None or after < deadline_s:
            return Fault("error", after)
    if deadline_s is not None and service_s > deadline_s:
        return Fault("timeout", deadline_s)
    return None


def probability_at(base: float, windows: Iterable[Sequence[float]], at_s: float) -> float:
    """The error probability of an attempt whose service starts at *at_s*: *base*, raised by
    any burst window ``(start, end, probability)`` that covers that instant.

    The simulator's agent reads the bursts under way when it starts an attempt
    (``AttemptFaults.probability``), not when the attempt was assigned: work
    queued at an agent during a burst and started after it errors at the base
    rate. The live agent, which alone knows when it starts, decides with this.
    """
    p = base
    for start, end, raised in windows:
        if start <= at_s < end:
            p = max(p, raised)
    return p
