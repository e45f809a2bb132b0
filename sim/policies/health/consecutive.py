"""The spec's health check (section 7.1): *threshold* failed checks in a row."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.policies.health.contract import HealthState, HealthTransition
from sim.policies.health.grid import CheckGrid, PhaseSource

__all__ = ["ConsecutiveFailureDetector"]


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
        self._grid = CheckGrid(interval_s, phase)
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
