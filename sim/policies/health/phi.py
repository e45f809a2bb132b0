"""φ accrual failure detection (Hayashibara et al., 2004), as Akka runs it."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal, TypeAlias

from sim.policies.health.contract import HealthState, HealthTransition
from sim.policies.health.grid import CheckGrid, PhaseSource

__all__ = ["Cdf", "PhiAccrualDetector", "phi_value"]

#: How φ reads the normal tail: exactly (erfc), or Akka's logistic approximation.
Cdf: TypeAlias = Literal["normal", "logistic"]

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
        self._grid = CheckGrid(first_interval_s, phase)
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
