"""Resilience patterns: the circuit breaker and the bulkhead.

Scenario: a zone coordinator sends work to a zone (or an agent) that has
started failing. A circuit breaker per target stops the sends after enough
failures, waits, lets a few probe calls through and closes again when they
succeed — so a sick target is not buried under retries and the caller fails
fast. A bulkhead caps how many tasks an agent (and its team) hold at once, so
one slow dependency cannot take every slot.

Both are pure bookkeeping: the shell asks before a call (``allow``,
``try_acquire``), reports how it went, and reads the transitions the breaker
recorded. Time is *now* in float seconds, passed in, never read.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum


class BreakerState(Enum):
    """The three states of Nygard's circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """A breaker moved from *from_state* to *to_state* at *time* (seconds), and why."""

    time: float
    from_state: BreakerState
    to_state: BreakerState
    reason: str


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """How a breaker trips and heals; see :class:`CircuitBreaker` for the meaning."""

    failure_threshold: int = 5
    failure_rate: float | None = None
    window_s: float = 60.0
    min_calls: int = 10
    open_s: float = 30.0
    half_open_max_calls: int = 1
    success_threshold: int = 1

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {self.failure_threshold}")
        if self.failure_rate is not None and not 0.0 < self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate must lie in (0, 1], got {self.failure_rate}")
        if not (self.window_s > 0.0 and math.isfinite(self.window_s)):
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        if self.min_calls < 1:
            raise ValueError(f"min_calls must be >= 1, got {self.min_calls}")
        if not (self.open_s >= 0.0 and math.isfinite(self.open_s)):
            raise ValueError(f"open_s must be >= 0, got {self.open_s}")
        if self.half_open_max_calls < 1 or self.success_threshold < 1:
            raise ValueError("half_open_max_calls and success_threshold must be >= 1")


class CircuitBreaker:
    """A circuit breaker on calls to one target.

    Lifecycle:

    * **closed** — every call is allowed. It opens after *failure_threshold*
      consecutive failures, or, when *failure_rate* is set, as soon as the
      failures among the results of the last *window_s* seconds (the window
      ``(now - window_s, now]``) reach that share with at least *min_calls*
      results in it.
    * **open** — no call is allowed for *open_s* seconds; then it is
      half-open. The move happens lazily, on the first :meth:`allow` or
      result after the timer ran out, and is recorded at the instant the
      timer ran out; :meth:`state_at` reports it without changing anything.
    * **half_open** — at most *half_open_max_calls* probes are in flight at
      once. *success_threshold* successful probes close it (with a fresh
      window); any failed probe opens it again and restarts the timer.

    Results are not matched to calls: the shell reports results only for
    calls it was allowed. A result that arrives while open (a call let
    through before the breaker tripped) is ignored, as is one in half_open
    when no probe is in flight. Every transition is kept as a frozen
    :class:`BreakerTransition` until :meth:`drain_transitions`. Times passed
    to the mutating methods must not go backwards.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        failure_rate: float | None = None,
        window_s: float = 60.0,
        min_calls: int = 10,
        open_s: float = 30.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
    ) -> None:
        self.config = BreakerConfig(
            failure_threshold,
            failure_rate,
            window_s,
            min_calls,
            open_s,
            half_open_max_calls,
            success_threshold,
        )
        self._state = BreakerState.CLOSED
        self._now = -math.inf
        self._opened_at = -math.inf
        self._consecutive_failures = 0
        self._results: deque[tuple[float, bool]] = deque()  # (time, failed), closed state only
        self._failures_in_window = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
        self._transitions: list[BreakerTransition] = []

    @classmethod
    def from_config(cls, config: BreakerConfig) -> CircuitBreaker:
        """A closed breaker with *config*."""
        return cls(
            config.failure_threshold,
            config.failure_rate,
            config.window_s,
            config.min_calls,
            config.open_s,
            config.half_open_max_calls,
            config.success_threshold,
        )

    # -- reads --------------------------------------------------------------------------------

    def state_at(self, now: float) -> BreakerState:
        """The state at *now*, counting an expired open timer as half-open; changes nothing."""
        if self._state is BreakerState.OPEN and now >= self._opened_at + self.config.open_s:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def probes_in_flight(self) -> int:
        """Probes allowed in half-open whose result has not come back."""
        return self._probes_in_flight

    def drain_transitions(self) -> tuple[BreakerTransition, ...]:
        """The transitions recorded since the last drain, oldest first; forgets them."""
        drained = tuple(self._transitions)
        self._transitions.clear()
        return drained

    # -- the calls ----------------------------------------------------------------------------

    def allow(self, now: float) -> bool:
        """May a call go out at *now*? In half-open a True reserves a probe slot."""
        self._advance(now)
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            return False
        if self._probes_in_flight < self.config.half_open_max_calls:
            self._probes_in_flight += 1
            return True
        return False

    def record_success(self, now: float) -> None:
        """An allowed call succeeded; its result is known at *now*."""
        self._advance(now)
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures = 0
            self._remember(now, failed=False)
        elif self._state is BreakerState.HALF_OPEN and self._probes_in_flight > 0:
            self._probes_in_flight -= 1
            self._probe_successes += 1
            if self._probe_successes >= self.config.success_threshold:
                n = self._probe_successes
                self._become(now, BreakerState.CLOSED, f"{n} successful probe{'s' * (n > 1)}")

    def record_failure(self, now: float) -> None:
        """An allowed call failed (or timed out); its result is known at *now*."""
        self._advance(now)
        config = self.config
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures += 1
            self._remember(now, failed=True)
            if self._consecutive_failures >= config.failure_threshold:
                n = self._consecutive_failures
                self._become(now, BreakerState.OPEN, f"{n} consecutive failures")
                return
            calls = len(self._results)
            if config.failure_rate is not None and calls >= config.min_calls:
                share = self._failures_in_window / calls
                if share >= config.failure_rate:
                    reason = (
                        f"failure rate {share:.3f} >= {config.failure_rate} "
                        f"over {calls} calls in {config.window_s}s"
                    )
                    self._become(now, BreakerState.OPEN, reason)
        elif self._state is BreakerState.HALF_OPEN and self._probes_in_flight > 0:
            self._become(now, BreakerState.OPEN, "probe failed")

    # -- internals ----------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        if now < self._now:
            raise ValueError(f"time went backwards: {now} after {self._now}")
        self._now = now
        if self._state is BreakerState.OPEN:
            expires = self._opened_at + self.config.open_s
            if now >= expires:
                self._become(expires, BreakerState.HALF_OPEN, f"open for {self.config.open_s}s")

    def _remember(self, now: float, *, failed: bool) -> None:
        """Add a closed-state result to the rate window and drop those that left it."""
        if self.config.failure_rate is None:
            return  # no rate rule: keep no window
        results = self._results
        results.append((now, failed))
        self._failures_in_window += failed
        horizon = now - self.config.window_s
        while results[0][0] <= horizon:
            _, old_failed = results.popleft()
            self._failures_in_window -= old_failed

    def _become(self, time: float, state: BreakerState, reason: str) -> None:
        """The only place the state changes; resets what the new state starts from."""
        self._transitions.append(BreakerTransition(time, self._state, state, reason))
        self._state = state
        self._consecutive_failures = 0
        self._results.clear()
        self._failures_in_window = 0
        self._probes_in_flight = 0
        self._probe_successes = 0
        if state is BreakerState.OPEN:
            self._opened_at = time


class BreakerBoard:
    """One breaker per target (an agent id or a zone name), all with one config.

    Breakers are made on first use; asking about a target never seen reads
    as closed and creates nothing.
    """

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = BreakerConfig() if config is None else config
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, target: str) -> CircuitBreaker:
        """The breaker on *target*, made closed if it is new."""
        breaker = self._breakers.get(target)
        if breaker is None:
            breaker = self._breakers[target] = CircuitBreaker.from_config(self.config)
        return breaker

    def allow(self, target: str, now: float) -> bool:
        """May a call to *target* go out at *now*?"""
        return self.breaker(target).allow(now)

    def record_success(self, target: str, now: float) -> None:
        """A call to *target* succeeded at *now*."""
        self.breaker(target).record_success(now)

    def record_failure(self, target: str, now: float) -> None:
        """A call to *target* failed at *now*."""
        self.breaker(target).record_failure(now)

    def state_at(self, target: str, now: float) -> BreakerState:
        """The state of *target*'s breaker at *now*; pure."""
        breaker = self._breakers.get(target)
        return BreakerState.CLOSED if breaker is None else breaker.state_at(now)

    def open_targets(self, now: float) -> tuple[str, ...]:
        """Targets whose breaker is open at *now* (half-open ones not included), sorted."""
        return tuple(
            sorted(t for t, b in self._breakers.items() if b.state_at(now) is BreakerState.OPEN)
        )

    def drain_transitions(self) -> tuple[tuple[str, BreakerTransition], ...]:
        """(target, transition) pairs since the last drain, by time (ties: first-made target)."""
        drained = [
            (target, transition)
            for target, breaker in self._breakers.items()
            for transition in breaker.drain_transitions()
        ]
        drained.sort(key=lambda pair: pair[1].time)
        return tuple(drained)

    def __contains__(self, target: object) -> bool:
        return target in self._breakers

    def __iter__(self) -> Iterator[str]:
        return iter(self._breakers)

    def __len__(self) -> int:
        return len(self._breakers)


class Bulkhead:
    """Counting permits per key (an agent, a team): at most ``limit_of(key)`` held at once.

    *limit* applies to every key not listed in *limits*. Counts never go
    negative: releasing a permit that is not held raises. Keys with no permit
    held take no memory.
    """

    def __init__(self, limit: int, limits: Mapping[str, int] | None = None) -> None:
        self.limit = limit
        self.limits = dict(limits or {})
        for key, value in (("<default>", limit), *self.limits.items()):
            if value < 0:
                raise ValueError(f"limit for {key} must be >= 0, got {value}")
        self._held: dict[str, int] = {}

    def limit_of(self, key: str) -> int:
        """The most permits *key* may hold."""
        return self.limits.get(key, self.limit)

    def in_use(self, key: str) -> int:
        """Permits *key* holds now."""
        return self._held.get(key, 0)

    def available(self, key: str) -> int:
        """Permits *key* could still take."""
        return self.limit_of(key) - self.in_use(key)

    def try_acquire(self, key: str) -> bool:
        """Take a permit for *key* if one is free; report whether it was taken."""
        held = self._held.get(key, 0)
        if held >= self.limit_of(key):
            return False
        self._held[key] = held + 1
        return True

    def release(self, key: str) -> None:
        """Give back a permit *key* holds; raises ValueError if it holds none."""
        held = self._held.get(key, 0)
        if held <= 0:
            raise ValueError(f"release of {key!r} without a permit held")
        if held == 1:
            del self._held[key]
        else:
            self._held[key] = held - 1

    @property
    def total_in_use(self) -> int:
        """Permits held over all keys."""
        return sum(self._held.values())


class TeamBulkhead:
    """Two levels of permits: a task needs one from its agent and one from its team.

    :meth:`try_acquire` takes both or neither — a full team leaves the
    agent's permit untouched, and the other way round. A release must name
    the same (agent, team) pair as an acquire still held.
    """

    def __init__(
        self,
        agent_limit: int,
        team_limit: int,
        *,
        agent_limits: Mapping[str, int] | None = None,
        team_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.agents = Bulkhead(agent_limit, agent_limits)
        self.teams = Bulkhead(team_limit, team_limits)
        self._pairs: dict[tuple[str, str], int] = {}

    def try_acquire(self, agent_id: str, team: str) -> bool:
        """Take a permit from both *agent_id* and *team*, or from neither."""
        if self.agents.available(agent_id) <= 0 or self.teams.available(team) <= 0:
            return False
        self.agents.try_acquire(agent_id)
        self.teams.try_acquire(team)
        pair = (agent_id, team)
        self._pairs[pair] = self._pairs.get(pair, 0) + 1
        return True

    def release(self, agent_id: str, team: str) -> None:
        """Give back a pair of permits; raises ValueError if the pair holds none."""
        pair = (agent_id, team)
        held = self._pairs.get(pair, 0)
        if held <= 0:
            raise ValueError(f"release of {pair!r} without a permit held")
        if held == 1:
            del self._pairs[pair]
        else:
            self._pairs[pair] = held - 1
        self.agents.release(agent_id)
        self.teams.release(team)

    def in_use(self, agent_id: str) -> int:
        """Permits *agent_id* holds."""
        return self.agents.in_use(agent_id)

    def team_in_use(self, team: str) -> int:
        """Permits *team* holds over all its agents."""
        return self.teams.in_use(team)
