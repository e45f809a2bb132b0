"""Whether a task attempt ends in an error or a timeout, and when.

Real agents fail tasks far more often than they crash: a model call errors,
a tool times out, a result fails validation. Each attempt fails with a
probability per category (raised for a while by an error burst on the chaos
timeline), independently of every other attempt; an attempt that would run
past its deadline is cut off at the deadline. An error shows up part-way
through the work, at a uniform point of it, because that is when a real
agent finds out.

Pure: the shell passes the uniform draws in, so both shells (and the tests)
decide identically from the same numbers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "AttemptFaults",
    "Burst",
    "Fault",
    "attempt_draws",
    "attempt_fate",
    "backoff_draw",
    "probability_at",
    "task_key",
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


_MASK64 = (1 << 64) - 1
_UNIT = 2.0**-53
_FLOAT_BITS = struct.Struct("<d")


def _mix(x: int) -> int:
    """splitmix64's finaliser: a 64-bit integer to a well-spread 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def task_key(seed: int, arrival_s: float, job_id: int, node: int) -> int:
    """A task's key for its attempts' fault draws: what both shells know of it alike.

    An independent task's arrival (the same float in both: the same stream
    drew it); a DAG node's job and node, and not its arrival, which is its
    release — when a predecessor's completion reached each shell's
    coordinator, a different float in each (keyed by it, live's and its
    replay's DAG nodes had erred on different attempts). Not its id: ids part between a live run and
    its replay at the first DAG release, and not the order draws are taken
    in, which differs between the coordinator's assignments and the
    simulator's starts (the two had drawn from one stream each in their own
    order, so live and its replay erred on different attempts: at the full
    fleet under an error burst, 14 % of the tasks made a different number of
    attempts in the two).
    """
    (bits,) = struct.unpack("<Q", _FLOAT_BITS.pack(arrival_s)) if job_id < 0 else (0,)
    return _mix(
        _mix(seed & _MASK64) ^ bits ^ _mix(((job_id & 0xFFFFFFFF) << 32) | (node & 0xFFFFFFFF))
    )


def attempt_draws(key: int, attempt: int) -> tuple[float, float]:
    """The two uniform draws of attempt number *attempt* of the task *key*: whether it errs
    and when (``attempt_fate``); the same numbers in both shells, in any order."""
    first = _mix(key ^ attempt)
    return (first >> 11) * _UNIT, (_mix(first) >> 11) * _UNIT


#: Sets a throttled call's backoff draws apart from the same task's other draws.
_BACKOFF_SALT = 0x2545F4914F6CDD1D
#: Sets a message's loss draws apart from the same task's fault draws.
_LOSS_SALT = 0x5DEECE66DA5A5A5A


def loss_draw(key: int, number: int) -> float:
    """The uniform draw deciding whether the *number*-th assignment of the task *key* sent
    in a loss window is lost (chaos ``message_loss``): the same in both shells, in any
    order. Live's coordinator and the simulator's chief had drawn from streams of their
    own, so different tasks waited a TTL in live and in its replay."""
    return (_mix(key ^ _LOSS_SALT ^ _mix(number)) >> 11) * _UNIT


def backoff_draw(key: int, attempt: int, call: int, retry: int) -> float:
    """The uniform draw of the backoff after the *retry*-th refusal of call *call* (0-based)
    of attempt *attempt* of the task *key* (``RetryRule.next``'s jitter): the same in both
    shells. Live's agents drew from a generator seeded by the wall clock and the simulator
    from one stream in its own order, so under a binding provider limit the same refusal
    backed off differently in live and in its replay (at the spec's fleet, the replay's
    p99 wait moved 108-132 s with the stream's seed alone, live's 126 s)."""
    mixed = _mix(key ^ _BACKOFF_SALT ^ _mix((attempt << 40) ^ (call << 20) ^ retry))
    return (mixed >> 11) * _UNIT
