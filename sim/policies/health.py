"""Failure detection: consecutive failed health checks, and φ accrual.

Scenario: a specialist stops answering. The spec's failover (§7.1) starts
when its health check fails three times in a row: the agent is marked
unhealthy, its tasks are redistributed and a replacement is spawned. How long
that takes is decided here.

Every detector has two faces that agree:

* **Per-message** (fidelity): the shell feeds each check result or heartbeat
  to :meth:`FailureDetector.observe` and gets a transition back when one
  happens.
* **Analytic** (the default): the shell simulates no healthy heartbeat at all.
  When an agent goes down it calls :meth:`FailureDetector.detection_time` and
  schedules one event at the answer; when the agent comes back it calls
  :meth:`FailureDetector.recovered` and schedules the transitions returned.

The analytic face is a small state machine of up/down changes, one per agent;
its contract with the shell:

1. Changes are reported in time order, one agent's ``detection_time`` (down)
   and ``recovered`` (up) alternating.
2. Each answer is the detector's prediction from ``now`` on, assuming the
   agent stays in its new state. It replaces every earlier prediction timed at
   or after ``now``; earlier predictions timed before ``now`` have happened.
   A change therefore takes precedence over a predicted transition at the very
   same instant: the shell should process changes before detector timers of
   the same time (otherwise it sees a blip of zero length).
3. ``detection_time`` returns the time of the unhealthy declaration covering
   the outage. A value before ``failed_at`` means the agent is still declared
   unhealthy from an earlier outage (it failed again before it was declared
   healthy): there is nothing new to schedule.

A shell uses one face per agent; the two keep separate state.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol, TypeAlias

#: Where each agent's check (or heartbeat) grid starts, in [0, interval): a
#: function of the agent id (drawn by the shell from a seeded stream, say), a
#: mapping, or None for 0 everywhere. Each agent's phase is read once and kept.
PhaseSource: TypeAlias = Callable[[str], float] | Mapping[str, float] | None

#: How φ reads the normal tail: exactly (erfc), or Akka's logistic approximation.
Cdf: TypeAlias = Literal["normal", "logistic"]


class HealthState(Enum):
    """What a detector declares an agent to be."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class HealthTransition:
    """A detector changed its verdict on *agent_id* at *time* (seconds)."""

    agent_id: str
    time: float
    from_state: HealthState
    to_state: HealthState
    reason: str


class FailureDetector(Protocol):
    """What the shell needs from a detector, whichever algorithm it runs."""

    def observe(self, agent_id: str, now: float, ok: bool) -> HealthTransition | None:
        """Per-message face: one check result or heartbeat slot at *now*."""
        ...

    def detection_time(self, agent_id: str, failed_at: float) -> float:
        """Analytic face: the agent is down from *failed_at*; when is it declared?"""
        ...

    def recovered(self, agent_id: str, now: float) -> tuple[HealthTransition, ...]:
        """Analytic face: the agent is up again from *now*; the transitions to come."""
        ...

    def forget(self, agent_id: str) -> None:
        """Drop all state kept for *agent_id* (it left the fleet)."""
        ...


class _Grid:
    """The instants ``phase(agent) + k * interval_s`` for every integer *k*."""

    def __init__(self, interval_s: float, phase: PhaseSource) -> None:
        if not (interval_s > 0.0 and math.isfinite(interval_s)):
            raise ValueError(f"interval_s must be positive and finite, got {interval_s!r}")
        self.interval_s = interval_s
        self._source = phase
        self._phases: dict[str, float] = {}

    def phase_of(self, agent_id: str) -> float:
        phase = self._phases.get(agent_id)
        if phase is None:
            source = self._source
            if source is None:
                phase = 0.0
            elif isinstance(source, Mapping):
                phase = float(source[agent_id])
            else:
                phase = float(source(agent_id))
            if not 0.0 <= phase < self.interval_s:
                raise ValueError(
                    f"phase of {agent_id!r} must lie in [0, {self.interval_s}), got {phase!r}"
                )
            self._phases[agent_id] = phase
        return phase

    def at(self, agent_id: str, k: int) -> float:
        return self.phase_of(agent_id) + k * self.interval_s

    def first_at_or_after(self, agent_id: str, t: float) -> int:
        """The smallest *k* with ``at(agent_id, k) >= t``, exact in floating point."""
        if not math.isfinite(t):
            raise ValueError(f"time must be finite, got {t!r}")
        phase, interval = self.phase_of(agent_id), self.interval_s
        k = math.ceil((t - phase) / interval)
        # The division rounds; settle on the grid as at() computes it, so both
        # faces of a detector see the very same floats.
        while phase + k * interval < t:
            k += 1
        while phase + (k - 1) * interval >= t:
            k -= 1
        return k


@dataclass(slots=True)
class _Counters:
    """One agent's check history as far as it matters: its verdict and current runs."""

    healthy: bool = True
    fails: int = 0  # consecutive failed checks ending at the last one seen
    oks: int = 0  # consecutive ok checks while unhealthy


@dataclass(slots=True)
class _Track:
    """An agent in the analytic face: checks before ``k_next`` are folded into counters."""

    counters: _Counters = field(default_factory=_Counters)
    k_next: int | None = None  # None: nothing reported yet; every earlier check was ok
    last_change: float = -math.inf
    down_since: float | None = None
    declared_at: float = math.nan  # the latest unhealthy declaration, made or predicted


class ConsecutiveFailureDetector:
    """The spec's health check: *threshold* failed checks in a row mark an agent unhealthy.

    Agent *a* is checked at ``phase(a) + k * interval_s`` for every integer
    *k*; phases spread the checks of a fleet over the interval. A down agent
    is one that failed at some ``failed_at`` and has not recovered: a check at
    time *t* fails exactly when the agent is down at *t*, so **a check at the
    very instant of the failure fails** and one at the very instant of the
    recovery succeeds (outages are half-open intervals ``[failed_at,
    recovered_at)``). A failed probe is known when it times out, at
    ``t + timeout_s``; an ok one at *t* (its round trip is taken as negligible
    next to the interval). ``timeout_s < interval_s``, so results arrive in
    the order the checks were sent.

    The verdict turns unhealthy at the result of the *threshold*-th
    consecutive failed check, and healthy again at the *recovery_threshold*-th
    consecutive ok check. In the analytic face an agent that failed at
    ``failed_at`` after a clean history is declared at::

        check(k + threshold - 1) + timeout_s,  k = first check index with check(k) >= failed_at

    — the time per-message mode reports when fed every check, to the last bit,
    since both read the same grid (:meth:`check_time`).
    """

    def __init__(
        self,
        interval_s: float,
        threshold: int = 3,
        timeout_s: float = 0.0,
        phase: PhaseSource = None,
        *,
        recovery_threshold: int = 1,
    ) -> None:
        if threshold < 1 or recovery_threshold < 1:
            raise ValueError("threshold and recovery_threshold must be at least 1")
        if not 0.0 <= timeout_s < interval_s:
            raise ValueError(
                f"timeout_s must lie in [0, interval_s={interval_s}), got {timeout_s!r}"
            )
        self._grid = _Grid(interval_s, phase)
        self.interval_s = interval_s
        self.threshold = threshold
        self.timeout_s = timeout_s
        self.recovery_threshold = recovery_threshold
        self._counters: dict[str, _Counters] = {}
        self._tracks: dict[str, _Track] = {}

    # -- the check grid, for a shell that sends checks -------------------------------------

    def phase_of(self, agent_id: str) -> float:
        """Offset of *agent_id*'s checks within the interval (seconds)."""
        return self._grid.phase_of(agent_id)

    def check_time(self, agent_id: str, k: int) -> float:
        """When *agent_id*'s *k*-th check is sent."""
        return self._grid.at(agent_id, k)

    def first_check_index(self, agent_id: str, at_or_after: float) -> int:
        """Index of *agent_id*'s first check sent at or after *at_or_after*."""
        return self._grid.first_at_or_after(agent_id, at_or_after)

    def next_check(self, agent_id: str, at_or_after: float) -> float:
        """When *agent_id*'s first check at or after *at_or_after* is sent."""
        return self.check_time(agent_id, self.first_check_index(agent_id, at_or_after))

    def state(self, agent_id: str) -> HealthState:
        """The per-message verdict on *agent_id* (healthy until proven otherwise)."""
        counters = self._counters.get(agent_id)
        return (
            HealthState.HEALTHY if counters is None or counters.healthy else HealthState.UNHEALTHY
        )

    # -- per-message face -----------------------------------------------------------------

    def observe(self, agent_id: str, now: float, ok: bool) -> HealthTransition | None:
        """Take one check result, known at *now*; results must come in check order."""
        counters = self._counters.setdefault(agent_id, _Counters())
        if ok:
            counters.fails = 0
            if counters.healthy:
                return None
            counters.oks += 1
            if counters.oks < self.recovery_threshold:
                return None
            counters.healthy, counters.oks = True, 0
            return self._became_healthy(agent_id, now)
        counters.oks = 0
        counters.fails += 1
        if counters.healthy and counters.fails >= self.threshold:
            counters.healthy = False
            return self._became_unhealthy(agent_id, now)
        return None

    # -- analytic face ----------------------------------------------------------------------

    def detection_time(self, agent_id: str, failed_at: float) -> float:
        """When *agent_id*, down from *failed_at* on, is declared unhealthy.

        Also notes the outage (see the module docstring for the contract).
        Asking again for the same outage returns the same answer.
        """
        track = self._tracks.setdefault(agent_id, _Track())
        if track.down_since is not None:
            if failed_at == track.down_since:
                return track.declared_at
            raise ValueError(f"{agent_id!r} is already down since {track.down_since}")
        self._note_change(agent_id, track, failed_at)
        k = self._grid.first_at_or_after(agent_id, failed_at)
        if track.k_next is None:
            track.k_next = k
        else:
            self._fold(agent_id, track, k, ok=True)  # a healthy verdict here was predicted before
        track.down_since = failed_at
        counters = track.counters
        if counters.healthy:
            last = k + self.threshold - counters.fails - 1
            track.declared_at = self.check_time(agent_id, last) + self.timeout_s
        return track.declared_at

    def recovered(self, agent_id: str, now: float) -> tuple[HealthTransition, ...]:
        """*agent_id* is up again from *now*: the transitions still to come, in order.

        Empty when the outage went unnoticed. Otherwise the healthy verdict at
        the *recovery_threshold*-th ok check from *now*, preceded by the
        unhealthy one when that is still due (a probe sent before *now* has
        not timed out yet).
        """
        track = self._tracks.get(agent_id)
        if track is None or track.down_since is None:
            raise ValueError(f"{agent_id!r} is not down; call detection_time() first")
        self._note_change(agent_id, track, now)
        k = self._grid.first_at_or_after(agent_id, now)
        self._fold(agent_id, track, k, ok=False)
        track.down_since = None
        counters = track.counters
        if counters.healthy:
            return ()
        upcoming: list[HealthTransition] = []
        if track.declared_at >= now:  # the last failed probe has not timed out yet
            upcoming.append(self._became_unhealthy(agent_id, track.declared_at))
        last = k + self.recovery_threshold - counters.oks - 1
        upcoming.append(self._became_healthy(agent_id, self.check_time(agent_id, last)))
        return tuple(upcoming)

    def forget(self, agent_id: str) -> None:
        """Drop every piece of state kept for *agent_id*."""
        self._counters.pop(agent_id, None)
        self._tracks.pop(agent_id, None)

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _note_change(agent_id: str, track: _Track, now: float) -> None:
        if now < track.last_change:
            raise ValueError(f"{agent_id!r}: change at {now} before one at {track.last_change}")
        track.last_change = now

    def _fold(
        self, agent_id: str, track: _Track, k_end: int, *, ok: bool
    ) -> HealthTransition | None:
        """Run checks ``k_next .. k_end - 1``, all with the same result, through the counters.

        The arithmetic twin of calling :meth:`observe` once per check; returns
        the transition that run produced, if any (there is at most one).
        """
        assert track.k_next is not None
        k0, counters = track.k_next, track.counters
        n = k_end - k0
        if n <= 0:
            return None
        track.k_next = k_end
        if ok:
            counters.fails = 0
            if counters.healthy:
                return None
            need = self.recovery_threshold - counters.oks
            if n < need:
                counters.oks += n
                return None
            counters.healthy, counters.oks = True, 0
            return self._became_healthy(agent_id, self.check_time(agent_id, k0 + need - 1))
        counters.oks = 0
        need = self.threshold - counters.fails
        counters.fails += n
        if not counters.healthy or n < need:
            return None
        counters.healthy = False
        time = self.check_time(agent_id, k0 + need - 1) + self.timeout_s
        track.declared_at = time
        return self._became_unhealthy(agent_id, time)

    def _became_unhealthy(self, agent_id: str, time: float) -> HealthTransition:
        reason = f"{self.threshold} consecutive failed checks"
        return HealthTransition(agent_id, time, HealthState.HEALTHY, HealthState.UNHEALTHY, reason)

    def _became_healthy(self, agent_id: str, time: float) -> HealthTransition:
        n = self.recovery_threshold
        reason = f"{n} consecutive ok check{'s' if n > 1 else ''}"
        return HealthTransition(agent_id, time, HealthState.UNHEALTHY, HealthState.HEALTHY, reason)


# -- φ accrual ----------------------------------------------------------------------------------

_SQRT2 = math.sqrt(2.0)
_LN10 = math.log(10.0)


def phi_value(elapsed_s: float, mean_s: float, std_s: float, cdf: Cdf = "normal") -> float:
    """φ = −log10(1 − F(elapsed)) for F the normal CDF with *mean_s*, *std_s*.

    ``cdf="normal"`` evaluates the tail exactly, ``1 − F = erfc(y / √2) / 2``
    with ``y = (elapsed − mean) / std`` (``math.erfc`` keeps its relative
    accuracy deep in the tail, where ``1 − F`` by subtraction would be 0).
    ``cdf="logistic"`` is Akka's ``PhiAccrualFailureDetector.phi``: the
    logistic approximation of Bowling et al. (2009),
    ``F(y) ≈ 1 / (1 + exp(−1.5976·y − 0.070566·y³))`` (absolute error below
    1.4e-4), which makes ``φ = log10(1 + exp(g))`` with
    ``g = 1.5976·y + 0.070566·y³``, computed here without overflow. Its tail
    is lighter than the normal's beyond y ≈ 3, so it suspects somewhat sooner
    (φ = 8 at y ≈ 5.23 instead of 5.61).
    """
    y = (elapsed_s - mean_s) / std_s
    if cdf == "normal":
        tail = 0.5 * math.erfc(y / _SQRT2)
        return math.inf if tail <= 0.0 else max(0.0, -math.log10(tail))
    g = y * (1.5976 + 0.070566 * y * y)
    softplus = g + math.log1p(math.exp(-g)) if g > 0.0 else math.log1p(math.exp(g))
    return softplus / _LN10


@dataclass(slots=True)
class _History:
    """One agent's inter-arrival window (Akka's ``HeartbeatHistory``)."""

    intervals: deque[float]
    last: float
    stats: tuple[float, float] | None = None  # (mean, population std), cached until a heartbeat


@dataclass(slots=True)
class _PhiTrack:
    """An agent in the analytic φ face, on its regular heartbeat grid."""

    last: float = math.nan  # last heartbeat sent before the current outage
    up_since: float | None = None  # None: up (and beating) since forever
    down_since: float | None = None
    suspect_at: float = math.nan
    last_change: float = -math.inf


class PhiAccrualDetector:
    """Hayashibara et al.'s φ accrual failure detector (SRDS 2004), as Akka runs it.

    One object for the fleet, its state keyed by agent id. Each agent keeps
    the last *window* heartbeat inter-arrival times; φ at *now* is
    `phi_value` of the time since its last heartbeat, with mean = window mean
    + *acceptable_pause_s* and std = max(window std, *min_std_s*) (population
    std, as Akka). The first heartbeat seeds the window with Akka's
    bootstrap, the two intervals ``first_interval_s ± first_interval_s / 4``.
    The agent is suspected while φ ≥ *threshold*; an agent never heard from
    has φ = 0.

    **Per-message face.** ``observe(agent, now, ok)`` records a heartbeat at
    *now* when *ok* (a missed heartbeat slot passes ``ok=False``), then
    evaluates φ at *now*; a changed verdict is returned as a transition.

    **Analytic face.** Without per-heartbeat events the detector assumes each
    agent beats regularly at ``phase(agent) + k * first_interval_s`` and that
    its window is in steady state: every interval equal, so mean =
    first_interval_s + acceptable_pause_s and std = min_std_s. The shell's
    heartbeat jitter is not seen in this mode. A down agent sends no heartbeat
    at or after ``failed_at``, and a recovered one resumes at its first grid
    slot at or after ``now``. A shell that wants jitter to count can report
    real heartbeats through :meth:`heartbeat` (all of them, or just the last
    *window* before a failure it has drawn in advance); for such an agent the
    analytic face uses its recorded window and last heartbeat instead, and
    ``recovered(agent, now)`` records the first heartbeat back at *now*.
    """

    def __init__(
        self,
        *,
        first_interval_s: float,
        threshold: float = 8.0,
        window: int = 100,
        min_std_s: float = 0.1,
        acceptable_pause_s: float = 0.0,
        cdf: Cdf = "normal",
        phase: PhaseSource = None,
    ) -> None:
        if not threshold > 0.0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        if window < 1:
            raise ValueError(f"window must hold at least one interval, got {window!r}")
        if not (min_std_s > 0.0 and math.isfinite(min_std_s)):
            raise ValueError(f"min_std_s must be positive, got {min_std_s!r}")
        if not acceptable_pause_s >= 0.0:
            raise ValueError(f"acceptable_pause_s must be >= 0, got {acceptable_pause_s!r}")
        if cdf not in ("normal", "logistic"):
            raise ValueError(f"cdf must be 'normal' or 'logistic', got {cdf!r}")
        self._grid = _Grid(first_interval_s, phase)
        self.first_interval_s = first_interval_s
        self.threshold = threshold
        self.window = window
        self.min_std_s = min_std_s
        self.acceptable_pause_s = acceptable_pause_s
        self.cdf = cdf
        self._histories: dict[str, _History] = {}
        self._suspected: set[str] = set()
        self._tracks: dict[str, _PhiTrack] = {}
        #: (mean, std) of the steady-state window the analytic face assumes.
        self.steady_stats = (first_interval_s + acceptable_pause_s, min_std_s)
        self._steady_delay = self._crossing(0.0, self.steady_stats)

    # -- heartbeats and φ ---------------------------------------------------------------------

    def heartbeat(self, agent_id: str, now: float) -> None:
        """A heartbeat from *agent_id* arrived at *now*."""
        history = self._histories.get(agent_id)
        if history is None:
            first, spread = self.first_interval_s, self.first_interval_s / 4.0
            intervals = deque((first - spread, first + spread), maxlen=self.window)
            self._histories[agent_id] = _History(intervals, now)
            return
        if now < history.last:
            raise ValueError(f"{agent_id!r}: heartbeat at {now} before one at {history.last}")
        history.intervals.append(now - history.last)
        history.last = now
        history.stats = None

    def last_heartbeat(self, agent_id: str) -> float | None:
        """When *agent_id*'s last recorded heartbeat arrived, or None."""
        history = self._histories.get(agent_id)
        return None if history is None else history.last

    def stats(self, agent_id: str) -> tuple[float, float]:
        """(mean, std) φ uses for *agent_id*: pause and floor applied; steady state if unheard."""
        history = self._histories.get(agent_id)
        if history is None:
            return self.steady_stats
        if history.stats is None:
            values = history.intervals
            mean = math.fsum(values) / len(values)
            std = math.sqrt(math.fsum((x - mean) ** 2 for x in values) / len(values))
            history.stats = (mean + self.acceptable_pause_s, max(std, self.min_std_s))
        return history.stats

    def phi(self, agent_id: str, now: float) -> float:
        """φ of *agent_id* at *now*; 0 for an agent never heard from."""
        history = self._histories.get(agent_id)
        if history is None:
            return 0.0
        mean, std = self.stats(agent_id)
        return phi_value(now - history.last, mean, std, self.cdf)

    def suspect(self, agent_id: str, now: float) -> bool:
        """Whether φ of *agent_id* at *now* has reached the threshold."""
        return self.phi(agent_id, now) >= self.threshold

    def suspect_at(self, agent_id: str) -> float:
        """The first instant, if no heartbeat comes, at which :meth:`suspect` turns True.

        Found by bisection on :meth:`suspect`'s own arithmetic down to
        adjacent floats: ``suspect(t)`` is False at the float just below the
        answer and True at it and after.
        """
        history = self._histories.get(agent_id)
        if history is None:
            raise ValueError(f"no heartbeat recorded for {agent_id!r}")
        return self._crossing(history.last, self.stats(agent_id))

    def time_to_suspect(self, agent_id: str | None = None) -> float:
        """How long after its last heartbeat *agent_id* becomes suspected (seconds).

        For an agent with recorded heartbeats this uses its window; for any
        other (or None) the steady-state window the analytic face assumes.
        """
        history = None if agent_id is None else self._histories.get(agent_id)
        if history is None or agent_id is None:
            return self._steady_delay
        return self.suspect_at(agent_id) - history.last

    # -- per-message face ---------------------------------------------------------------------

    def observe(self, agent_id: str, now: float, ok: bool) -> HealthTransition | None:
        """A heartbeat slot at *now*: record the heartbeat if *ok*, then evaluate φ."""
        if ok:
            self.heartbeat(agent_id, now)
        suspected = self.suspect(agent_id, now)
        if suspected == (agent_id in self._suspected):
            return None
        if suspected:
            self._suspected.add(agent_id)
            reason = f"phi {self.phi(agent_id, now):.3f} >= {self.threshold}"
            return HealthTransition(
                agent_id, now, HealthState.HEALTHY, HealthState.UNHEALTHY, reason
            )
        self._suspected.discard(agent_id)
        return HealthTransition(
            agent_id, now, HealthState.UNHEALTHY, HealthState.HEALTHY, "heartbeat"
        )

    # -- analytic face ------------------------------------------------------------------------

    def detection_time(self, agent_id: str, failed_at: float) -> float:
        """When *agent_id*, silent from *failed_at* on, is suspected; notes the outage.

        That is its last heartbeat before *failed_at* plus the time to
        suspect; on the grid, the last slot strictly before *failed_at* (or an
        earlier one, when the agent came back and failed again before its
        first slot back).
        """
        track = self._tracks.setdefault(agent_id, _PhiTrack())
        if track.down_since is not None:
            if failed_at == track.down_since:
                return track.suspect_at
            raise ValueError(f"{agent_id!r} is already down since {track.down_since}")
        _check_order(agent_id, track, failed_at)
        history = self._histories.get(agent_id)
        if history is not None:
            if history.last > failed_at:
                raise ValueError(f"{agent_id!r}: heartbeat at {history.last} after its failure")
            track.suspect_at = self.suspect_at(agent_id)
        else:
            k = self._grid.first_at_or_after(agent_id, failed_at) - 1
            beat = self._grid.at(agent_id, k)
            if track.up_since is None or beat >= track.up_since:
                track.last = beat
            track.suspect_at = self._crossing(track.last, self.steady_stats)
        track.down_since = failed_at
        return track.suspect_at

    def recovered(self, agent_id: str, now: float) -> tuple[HealthTransition, ...]:
        """*agent_id* is up again from *now*: the transitions still to come, in order.

        Its first heartbeat back (its next grid slot, or *now* for an agent
        with recorded heartbeats) clears a suspicion; if that heartbeat comes
        before φ reached the threshold the outage goes unnoticed.
        """
        track = self._tracks.get(agent_id)
        if track is None or track.down_since is None:
            raise ValueError(f"{agent_id!r} is not down; call detection_time() first")
        _check_order(agent_id, track, now)
        track.down_since, track.up_since = None, now
        suspect_at = track.suspect_at
        if agent_id in self._histories:
            self.heartbeat(agent_id, now)
            back = now
        else:
            back = self._grid.at(agent_id, self._grid.first_at_or_after(agent_id, now))
        if suspect_at >= back:  # the heartbeat back comes first: φ never reached the threshold
            return ()
        upcoming: list[HealthTransition] = []
        if suspect_at >= now:
            reason = f"phi reached {self.threshold}"
            upcoming.append(
                HealthTransition(
                    agent_id, suspect_at, HealthState.HEALTHY, HealthState.UNHEALTHY, reason
                )
            )
        upcoming.append(
            HealthTransition(
                agent_id, back, HealthState.UNHEALTHY, HealthState.HEALTHY, "heartbeat"
            )
        )
        return tuple(upcoming)

    def forget(self, agent_id: str) -> None:
        """Drop every piece of state kept for *agent_id*."""
        self._histories.pop(agent_id, None)
        self._suspected.discard(agent_id)
        self._tracks.pop(agent_id, None)

    # -- internals ----------------------------------------------------------------------------

    def _crossing(self, last: float, stats: tuple[float, float]) -> float:
        """The smallest float *t* with φ(t − last) >= threshold (bisection on floats)."""
        mean, std = stats

        def crossed(t: float) -> bool:
            return phi_value(t - last, mean, std, self.cdf) >= self.threshold

        if crossed(last):
            return last
        lo, step = last, mean + std
        hi = last + step
        while not crossed(hi):  # φ grows without bound, so this ends
            lo, step = hi, step * 2.0
            hi = last + step
        while True:
            mid = lo + (hi - lo) / 2.0
            if mid <= lo or mid >= hi:
                return hi
            if crossed(mid):
                hi = mid
            else:
                lo = mid


def _check_order(agent_id: str, track: _PhiTrack, now: float) -> None:
    if now < track.last_change:
        raise ValueError(f"{agent_id!r}: change at {now} before one at {track.last_change}")
    track.last_change = now
