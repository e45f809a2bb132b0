"""Autoscalers: how many specialists the fleet should hold next, and what a bigger one costs.

Three horizontal policies answer the same question so that a scenario can
compare them: :class:`StepPolicy` is the spec's scaling block (section 4.1)
exactly, :class:`HpaPolicy` is Kubernetes' Horizontal Pod Autoscaler and
:class:`KedaQueuePolicy` is KEDA's queue-length scaler. :func:`size_options`
lists the vertical alternatives (section 4.2) with their speed and price.

The autoscaler never sees a clock, spawns nothing and averages nothing. A
*shell* (the SimPy model or the live adapter) owns the loop, and the contract
between the two is:

* The shell calls ``decide(obs, now)`` once per *evaluation interval* (its own
  setting: the spec names none; Kubernetes' HPA syncs every 15 s, KEDA polls
  every 30 s). It averages every metric of :class:`FleetObservation` over its
  own *metric window* before handing it in. Both are the shell's business.
* Every decision with ``delta != 0`` is carried out at once: ``+n`` asks for
  *n* agents, which count in ``agents`` (and ``starting``) from the next
  observation on, so a scale-up is not repeated while agents spawn; ``-n``
  drains *n* agents, which leave ``agents`` at once while they finish their
  tasks. The policies remember their own decisions (cooldowns, histories)
  on that assumption.
* Every returned ``target`` lies in ``[min_agents, max_agents]`` and equals
  ``agents + delta``. A decision that would cross a bound is cut at it; at the
  bound it is ``delta == 0`` with the reason. When ``agents`` is outside the
  bounds (failures took agents away, or a start outside them) the decision is
  a *bound correction* straight back to the bound, whatever the cooldowns.
* ``force_scale_up(now, reason)`` is how the alert action
  ``scale_up_immediate`` reaches the autoscaler: the next ``decide`` scales
  up by at least one step (the step policy's increment, ``force_increment``
  for the others), past whatever would delay it (the up-cooldown, the HPA's
  rate limits, KEDA's polling interval). One force is consumed by one
  ``decide``; forces do not accumulate.
* A metric that is NaN or infinite (no task finished in the window, nobody
  ready) counts as missing: it triggers nothing.
* With ``enabled=False`` (``scaling.auto_scale.enabled: false``) a policy
  answers "autoscaling disabled" and changes nothing, bounds included.

Every decision is a deterministic function of the call sequence.
"""

from __future__ import annotations

import builtins
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, Protocol, TypeVar

__all__ = [
    "AUTOSCALERS",
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "STEP_METRICS",
    "Autoscaler",
    "FleetObservation",
    "HpaConfig",
    "HpaPolicy",
    "KedaConfig",
    "KedaQueuePolicy",
    "ScaleDecision",
    "ScalingPolicy",
    "ScalingRules",
    "SizeOption",
    "StepConfig",
    "StepPolicy",
    "configure",
    "size_options",
]

#: Kinds of autoscaler (``scaling.policy``); sim.world.policy_set builds them.
AUTOSCALERS: tuple[str, ...] = ("step", "hpa", "keda")

#: Metrics the spec's step policy may list under ``auto_scale.metrics``.
STEP_METRICS: tuple[str, ...] = ("queue_depth", "avg_response_time", "cpu_utilization")

_EPS = 1e-9


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


class Autoscaler(Protocol):
    """What the fleet shell needs from an autoscaling policy (see the module docstring)."""

    def decide(self, obs: FleetObservation, now: float) -> ScaleDecision:
        """Decide the fleet size at time *now* (seconds) from *obs*."""
        ...

    def force_scale_up(self, now: float, reason: str) -> None:
        """Make the next :meth:`decide` scale up past any delay (alert ``scale_up_immediate``)."""
        ...


# --------------------------------------------------------------------------- shared helpers


def _num(value: float) -> str:
    return f"{value:.6g}"


def _ceil(value: float) -> int:
    """Round up, ignoring float noise (2.0000000000000004 is 2, not 3)."""
    return math.ceil(value - _EPS * builtins.max(1.0, abs(value)))


def _floor(value: float) -> int:
    return math.floor(value + _EPS * builtins.max(1.0, abs(value)))


def _finite(value: float) -> bool:
    return math.isfinite(value)


def _check_bounds(lo: int, hi: int) -> None:
    if lo < 0 or hi < lo:
        raise ValueError(f"expected 0 <= min_agents <= max_agents, got {lo} and {hi}")


def _hold(obs: FleetObservation, reason: str, policy: str) -> ScaleDecision:
    return ScaleDecision(0, obs.agents, reason, policy)


def _move(obs: FleetObservation, target: int, reason: str, policy: str) -> ScaleDecision:
    return ScaleDecision(target - obs.agents, target, reason, policy)


def _bound_correction(obs: FleetObservation, lo: int, hi: int, policy: str) -> ScaleDecision | None:
    """Bring a fleet outside [lo, hi] straight back to the nearer bound, or None if inside."""
    if obs.agents < lo:
        return _move(obs, lo, f"below min_agents: {obs.agents} < {lo}", policy)
    if obs.agents > hi:
        return _move(obs, hi, f"above max_agents: {obs.agents} > {hi}", policy)
    return None


# --------------------------------------------------------------------------- the spec's step policy


@dataclass(frozen=True, slots=True)
class StepConfig:
    """The spec's scaling block in canonical units (seconds, fractions).

    ``metrics`` lists the scale-up triggers that count, as the spec's
    ``auto_scale.metrics`` does. The spec lists ``cpu_utilization`` but gives
    it no threshold: ``up_cpu_utilization`` (a fraction) supplies one, and
    ``None`` leaves CPU out. The scale-down rule uses its own two thresholds,
    whatever ``metrics`` says. ``up_resets_down_cooldown`` makes a scale-up
    restart the scale-down cooldown (the spec's "previous scale event").
    """

    min_agents: int = 50
    max_agents: int = 250
    metrics: tuple[str, ...] = STEP_METRICS
    up_queue_depth: float = 100.0
    up_response_time_s: float = 5.0
    up_cpu_utilization: float | None = None
    increment: int = 10
    up_cooldown_s: float = 300.0
    down_queue_depth: float = 10.0
    down_idle_fraction: float = 0.30
    decrement: int = 5
    down_cooldown_s: float = 600.0
    up_resets_down_cooldown: bool = True
    enabled: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))  # a list from YAML stays hashable
        _check_bounds(self.min_agents, self.max_agents)
        unknown = [m for m in self.metrics if m not in STEP_METRICS]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}; expected one of {STEP_METRICS}")
        if self.increment < 1 or self.decrement < 1:
            raise ValueError("expected a positive increment and decrement")
        if self.up_cooldown_s < 0 or self.down_cooldown_s < 0:
            raise ValueError("expected non-negative cooldowns")


class StepPolicy:
    """The spec's threshold policy: fixed steps, separate cooldowns (section 4.1).

    *Scale up* by ``increment`` when any listed metric reaches its threshold
    (``queue_depth >= 100`` or ``avg_response_time >= 5000 ms`` in the spec),
    unless a scale-up happened less than ``up_cooldown_s`` ago. *Scale down*
    by ``decrement`` when ``queue_depth <= 10`` and at least 30 % of the ready
    agents are idle, unless the previous scale event of either direction is
    less than ``down_cooldown_s`` ago. The scale-up rule is checked first and
    wins when both hold (a slow fleet with a short queue is not shrunk).

    Cooldown interplay. A scale-up restarts the scale-down cooldown, as the
    spec's "previous scale event" says and as Kubernetes practice does (the
    HPA's scale-down stabilisation window remembers recent scale-up
    recommendations): capacity just added is not drained before the queue it
    was added for has been served, so the fleet does not flap. A scale-down
    does *not* delay a scale-up: being short of agents costs latency, being
    long only money, so the policy stays quick to react upward. Set
    ``up_resets_down_cooldown=False`` to time scale-downs from scale-downs only.

    Decisions cut at a bound still count as scale events; decisions held at a
    bound and bound corrections do not start cooldowns.
    """

    name = "step"

    def __init__(self, config: StepConfig | None = None) -> None:
        self.config = config if config is not None else StepConfig()
        self._last_up: float | None = None
        self._last_down: float | None = None
        self._forced: str | None = None

    def force_scale_up(self, now: float, reason: str) -> None:
        self._forced = reason

    def decide(self, obs: FleetObservation, now: float) -> ScaleDecision:
        cfg = self.config
        if not cfg.enabled:
            return _hold(obs, "autoscaling disabled", self.name)
        fixed = _bound_correction(obs, cfg.min_agents, cfg.max_agents, self.name)
        if fixed is not None:
            return fixed
        current = obs.agents
        if self._forced is not None:
            forced, self._forced = self._forced, None
            if current >= cfg.max_agents:
                return _hold(obs, f"forced scale-up ({forced}) ignored: at max", self.name)
            return self._scale_up(obs, now, f"forced by alert: {forced}")

        trigger = self._up_trigger(obs)
        if trigger is not None:
            if current >= cfg.max_agents:
                return _hold(obs, f"at max ({cfg.max_agents}): {trigger}", self.name)
            if self._last_up is not None and now - self._last_up < cfg.up_cooldown_s:
                left = cfg.up_cooldown_s - (now - self._last_up)
                return _hold(obs, f"scale-up cooldown ({_num(left)} s left): {trigger}", self.name)
            return self._scale_up(obs, now, trigger)

        trigger = self._down_trigger(obs)
        if trigger is not None:
            if current <= cfg.min_agents:
                return _hold(obs, f"at min ({cfg.min_agents}): {trigger}", self.name)
            last = self._last_down
            if cfg.up_resets_down_cooldown and self._last_up is not None:
                last = self._last_up if last is None else builtins.max(last, self._last_up)
            if last is not None and now - last < cfg.down_cooldown_s:
                left = cfg.down_cooldown_s - (now - last)
                return _hold(
                    obs, f"scale-down cooldown ({_num(left)} s left): {trigger}", self.name
                )
            target = builtins.max(cfg.min_agents, current - cfg.decrement)
            self._last_down = now
            return _move(obs, target, f"scale down: {trigger}", self.name)
        return _hold(obs, "within thresholds", self.name)

    def _scale_up(self, obs: FleetObservation, now: float, why: str) -> ScaleDecision:
        target = builtins.min(self.config.max_agents, obs.agents + self.config.increment)
        self._last_up = now
        return _move(obs, target, f"scale up: {why}", self.name)

    def _up_trigger(self, obs: FleetObservation) -> str | None:
        """The first listed metric at or over its threshold, described, or None."""
        cfg = self.config
        checks: list[tuple[str, float, float | None]] = [
            ("queue_depth", obs.queue_depth, cfg.up_queue_depth),
            ("avg_response_time", obs.avg_response_time_s, cfg.up_response_time_s),
            ("cpu_utilization", obs.cpu_utilization, cfg.up_cpu_utilization),
        ]
        for metric, value, threshold in checks:
            counted = metric in cfg.metrics and threshold is not None and _finite(value)
            if counted and threshold is not None and value >= threshold:
                return f"{metric} {_num(value)} >= {_num(threshold)}"
        return None

    def _down_trigger(self, obs: FleetObservation) -> str | None:
        cfg = self.config
        queue, idle = obs.queue_depth, obs.idle_fraction
        if not (_finite(queue) and _finite(idle)):
            return None
        if queue <= cfg.down_queue_depth and idle >= cfg.down_idle_fraction:
            return (
                f"queue_depth {_num(queue)} <= {_num(cfg.down_queue_depth)} and idle "
                f"{_num(idle)} >= {_num(cfg.down_idle_fraction)}"
            )
        return None


# --------------------------------------------------------------------------- Kubernetes HPA


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


@dataclass(frozen=True, slots=True)
class HpaConfig:
    """An HPA over the specialists, in canonical units.

    Metrics (at least one must be set; the largest recommendation wins):

    * ``target_cpu_utilization``: a Resource metric with a Utilization target
      (0.7 means 70 % of the slots busy on average over the ready agents).
    * ``target_queue_per_agent``: an External metric with an AverageValue
      target: tasks waiting (plus in flight if ``queue_includes_in_flight``)
      per agent.
    * ``target_response_time_s``: an Object metric with a Value target on the
      mean response time.

    ``tolerance`` is ``--horizontal-pod-autoscaler-tolerance``;
    ``force_increment`` is the least a forced scale-up adds.
    """

    min_agents: int = 50
    max_agents: int = 250
    target_cpu_utilization: float | None = 0.7
    target_queue_per_agent: float | None = None
    queue_includes_in_flight: bool = False
    target_response_time_s: float | None = None
    tolerance: float = 0.1
    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN
    force_increment: int = 4
    enabled: bool = True

    def __post_init__(self) -> None:
        _check_bounds(self.min_agents, self.max_agents)
        targets = (self.target_cpu_utilization, self.target_queue_per_agent)
        if all(t is None for t in (*targets, self.target_response_time_s)):
            raise ValueError("expected at least one HPA metric target")
        if any(t is not None and t <= 0 for t in (*targets, self.target_response_time_s)):
            raise ValueError("expected positive HPA metric targets")
        if self.tolerance < 0 or self.force_increment < 1:
            raise ValueError("expected tolerance >= 0 and force_increment >= 1")


class HpaPolicy:
    """Kubernetes' Horizontal Pod Autoscaler, as its documentation and controller define it.

    Per metric, the documented formula (kubernetes.io, "Horizontal Pod
    Autoscaling", Algorithm details)::

        desiredReplicas = ceil[currentReplicas * (currentMetricValue / desiredMetricValue)]

    with no change while the ratio is within ``tolerance`` of 1 (default 0.1).
    As the controller computes it (``replica_calculator.go``): for CPU the
    average is over ready agents and the result is ``ceil(ratio x ready)``;
    when the ratio asks for more and some agents are still starting, those
    count as 0 % busy and the ratio is recomputed; if that reverses the
    direction or falls within tolerance, nothing changes. For the queue
    (AverageValue) the result is ``ceil(queue / target)``. The largest
    recommendation over the metrics wins; when a metric is missing and the
    others ask for fewer agents, nothing shrinks.

    Then the behaviour (``horizontal.go``): the recommendation is *stabilised*
    (the max over the scale-down window's recommendations, default 300 s, the
    min over the scale-up window's, default 0 s), then *rate limited*: the
    change since the start of each policy's period may not exceed the policy
    (up: +100 % or +4 pods per 15 s, whichever is more; down: -100 % per 15 s),
    and finally clamped to ``[min_agents, max_agents]``. Like a new HPA, the
    policy seeds its window with the size it first sees, so it does not shrink
    the fleet during its first scale-down window.
    """

    name = "hpa"

    def __init__(self, config: HpaConfig | None = None) -> None:
        self.config = config if config is not None else HpaConfig()
        self._recommendations: deque[tuple[float, int]] = deque()
        self._up_events: deque[tuple[float, int]] = deque()
        self._down_events: deque[tuple[float, int]] = deque()
        self._forced: str | None = None
        self._seeded = False

    def force_scale_up(self, now: float, reason: str) -> None:
        self._forced = reason

    def decide(self, obs: FleetObservation, now: float) -> ScaleDecision:
        cfg = self.config
        if not cfg.enabled:
            return _hold(obs, "autoscaling disabled", self.name)
        current = obs.agents
        fixed = _bound_correction(obs, cfg.min_agents, cfg.max_agents, self.name)
        if fixed is not None:
            self._record_scale(now, current, fixed.target)
            return fixed
        forced, self._forced = self._forced, None
        if not self._seeded:
            # maybeInitScaleDownStabilizationWindow: a new HPA remembers the current size as a
            # recommendation, so it does not shrink the fleet during its first window.
            self._recommendations.append((now, current))
            self._seeded = True

        proposals = self._proposals(obs)
        valid = [(text, n) for text, n in proposals if n is not None]
        if not valid and forced is None:
            return _hold(obs, "no metric available", self.name)
        desired, notes = current, [text for text, _ in proposals]
        if valid:
            desired = builtins.max(n for _, n in valid)
            if len(valid) < len(proposals) and desired < current:
                desired = current
                notes.append("a metric is missing: no scale-down")
        stabilised = self._stabilise(now, current, desired)
        if stabilised != desired:
            notes.append(f"stabilised {desired} -> {stabilised}")

        if forced is not None:
            target = builtins.max(stabilised, current + cfg.force_increment)
            target = builtins.min(cfg.max_agents, target)
            notes.insert(0, f"forced by alert: {forced}")
        else:
            target = self._rate_limit(now, current, stabilised)
            if target != stabilised:
                notes.append(f"limited to {target}")
        self._record_scale(now, current, target)
        reason = "; ".join(notes)
        if target == current:
            return _hold(obs, f"no change: {reason}", self.name)
        return _move(
            obs, target, f"scale {'up' if target > current else 'down'}: {reason}", self.name
        )

    # -- the replica calculator, per metric ------------------------------------------------

    def _proposals(self, obs: FleetObservation) -> list[tuple[str, int | None]]:
        cfg = self.config
        out: list[tuple[str, int | None]] = []
        if cfg.target_cpu_utilization is not None:
            out.append(self._cpu(obs, cfg.target_cpu_utilization))
        if cfg.target_queue_per_agent is not None:
            out.append(self._queue(obs, cfg.target_queue_per_agent))
        if cfg.target_response_time_s is not None:
            value = obs.avg_response_time_s
            if obs.ready <= 0 or not _finite(value):
                out.append(("avg_response_time missing", None))
            else:
                ratio = value / cfg.target_response_time_s
                n = obs.agents if abs(1.0 - ratio) <= cfg.tolerance else _ceil(ratio * obs.ready)
                label = f"avg_response_time {_num(value)}/{_num(cfg.target_response_time_s)} s"
                out.append((f"{label} -> {n}", n))
        return out

    def _cpu(self, obs: FleetObservation, target: float) -> tuple[str, int | None]:
        """GetResourceReplicas: utilisation of ready agents; starting ones at 0 % on a scale-up."""
        cpu, ready, current = obs.cpu_utilization, obs.ready, obs.agents
        if ready <= 0 or not _finite(cpu):
            return "cpu_utilization missing", None
        label = f"cpu_utilization {_num(cpu)}/{_num(target)}"
        ratio = cpu / target
        unready = builtins.max(current - ready, 0)
        if unready == 0 or ratio <= 1.0:
            if abs(1.0 - ratio) <= self.config.tolerance:
                return f"{label} within tolerance", current
            n = _ceil(ratio * ready)
            return f"{label} -> {n}", n
        counted = ready + unready
        new_ratio = cpu * ready / (target * counted)
        if abs(1.0 - new_ratio) <= self.config.tolerance or new_ratio < 1.0:
            return f"{label}, starting agents at 0 %: {_num(new_ratio)} no change", current
        n = builtins.max(_ceil(new_ratio * counted), current)
        return f"{label}, starting agents at 0 % -> {n}", n

    def _queue(self, obs: FleetObservation, target: float) -> tuple[str, int | None]:
        """GetExternalPerPodMetricReplicas: an AverageValue target on the queue."""
        usage = obs.queue_depth + (obs.in_flight if self.config.queue_includes_in_flight else 0.0)
        if not _finite(usage):
            return "queue_depth missing", None
        current = obs.agents
        label = f"queue {_num(usage)}/({_num(target)} per agent)"
        if current > 0 and abs(1.0 - usage / (target * current)) <= self.config.tolerance:
            return f"{label} within tolerance", current
        n = _ceil(usage / target)
        return f"{label} -> {n}", n

    # -- the behaviour: stabilisation, rate limits -----------------------------------------

    def _stabilise(self, now: float, current: int, desired: int) -> int:
        """stabilizeRecommendationWithBehaviors: clamp *current* into the windows' [min, max]."""
        up_cut = now - self.config.scale_up.stabilization_window_s
        down_cut = now - self.config.scale_down.stabilization_window_s
        up_rec = down_rec = desired
        for when, rec in self._recommendations:
            if when > up_cut:
                up_rec = builtins.min(up_rec, rec)
            if when > down_cut:
                down_rec = builtins.max(down_rec, rec)
        self._recommendations.append((now, desired))
        oldest = builtins.min(up_cut, down_cut)
        while self._recommendations and self._recommendations[0][0] <= oldest:
            self._recommendations.popleft()
        return builtins.min(builtins.max(current, up_rec), down_rec)

    def _rate_limit(self, now: float, current: int, desired: int) -> int:
        """convertDesiredReplicasWithBehaviorRate: bound the change per period, then min/max."""
        cfg = self.config
        if desired > current:
            limit = _up_limit(now, current, self._up_events, self._down_events, cfg.scale_up)
            allowed = cfg.max_agents if limit is None else builtins.min(cfg.max_agents, limit)
            return builtins.min(desired, builtins.max(allowed, current))
        if desired < current:
            limit = _down_limit(now, current, self._up_events, self._down_events, cfg.scale_down)
            allowed = cfg.min_agents if limit is None else builtins.max(cfg.min_agents, limit)
            return builtins.max(desired, builtins.min(allowed, current))
        return desired

    def _record_scale(self, now: float, before: int, after: int) -> None:
        periods = [
            p.period_s for p in (*self.config.scale_up.policies, *self.config.scale_down.policies)
        ]
        _record_change(now, before, after, self._up_events, self._down_events, periods)


def _record_change(
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


def _up_limit(
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
            proposals.append(_ceil(start * (1.0 + policy.value / 100.0)))
    return builtins.max(proposals) if rules.select == "max" else builtins.min(proposals)


def _down_limit(
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
            proposals.append(_floor(start * (1.0 - policy.value / 100.0)))
    # "max" selects the policy allowing the biggest change: the lowest floor.
    return builtins.min(proposals) if rules.select == "max" else builtins.max(proposals)


# --------------------------------------------------------------------------- KEDA queue scaler


@dataclass(frozen=True, slots=True)
class KedaConfig:
    """A KEDA ScaledObject with one queue-length trigger, in canonical units.

    ``target_per_agent`` is the trigger's target value (tasks per agent);
    the measured length is ``queue_depth`` plus, with ``include_in_flight``,
    the tasks agents hold (like RabbitMQ's message count, which includes
    unacknowledged messages). ``activation_threshold`` is the trigger's
    activation value: the trigger is *active* while the length exceeds it.
    ``polling_interval_s`` and ``cooldown_s`` are the ScaledObject's
    ``pollingInterval`` and ``cooldownPeriod``; ``stabilization_window_s`` and
    ``tolerance`` belong to the HPA that KEDA creates (Kubernetes defaults).
    """

    min_agents: int = 50
    max_agents: int = 250
    target_per_agent: float = 1.0
    include_in_flight: bool = True
    activation_threshold: float = 0.0
    polling_interval_s: float = 30.0
    cooldown_s: float = 300.0
    stabilization_window_s: float = 300.0
    tolerance: float = 0.1
    force_increment: int = 4
    enabled: bool = True
    #: The behaviour of the HPA KEDA creates, when the ScaledObject states one: its
    #: scale-up window and both directions' rate limits then apply between 1 and N.
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None

    def __post_init__(self) -> None:
        _check_bounds(self.min_agents, self.max_agents)
        if self.target_per_agent <= 0:
            raise ValueError("expected a positive target_per_agent")
        if self.polling_interval_s < 0 or self.cooldown_s < 0 or self.stabilization_window_s < 0:
            raise ValueError("expected non-negative polling interval, cooldown and window")
        if self.tolerance < 0 or self.force_increment < 1:
            raise ValueError("expected tolerance >= 0 and force_increment >= 1")


class KedaQueuePolicy:
    """KEDA's queue-length scaling: ``desired = ceil(length / target_per_agent)``.

    In reality KEDA splits the work. Its operator polls the trigger every
    ``pollingInterval`` (30 s) and alone handles activation: 0 -> 1 when the
    length exceeds the activation value, and 1 -> 0 once no trigger has been
    active for ``cooldownPeriod`` (300 s). Between 1 and N it hands over to an
    HPA it creates, fed through KEDA's metrics server with an External metric
    and an AverageValue target, so the HPA's formula, tolerance, 300 s
    scale-down stabilisation and rate limits apply, at the HPA's own 15 s sync.

    What is modelled, all at the polling interval (a ``decide`` before the
    next poll is due returns "not polled"):

    * scale up at once to ``ceil(length / target_per_agent)`` (no HPA rate
      limit: use :class:`HpaPolicy` with ``target_queue_per_agent`` for that),
      and from 0 to at least 1 when the trigger activates;
    * while active, scale down only to the max recommendation of the last
      ``stabilization_window_s``, and never within ``tolerance``;
    * once inactive, hold until ``cooldown_s`` after the last active poll, then
      go to ``min_agents``. KEDA's cooldown governs only the step to zero; here
      it governs the step to the minimum, whatever the minimum is.
    """

    name = "keda"

    def __init__(self, config: KedaConfig | None = None) -> None:
        self.config = config if config is not None else KedaConfig()
        self._last_poll: float | None = None
        self._last_active: float | None = None
        self._recommendations: deque[tuple[float, int]] = deque()
        self._forced: str | None = None
        self._up_events: deque[tuple[float, int]] = deque()
        self._down_events: deque[tuple[float, int]] = deque()

    def force_scale_up(self, now: float, reason: str) -> None:
        self._forced = reason

    def decide(self, obs: FleetObservation, now: float) -> ScaleDecision:
        decision = self._decide(obs, now)
        if self.config.scale_up is not None or self.config.scale_down is not None:
            _record_change(
                now, obs.agents, decision.target, self._up_events, self._down_events, self._periods
            )
        return decision

    @property
    def _periods(self) -> list[float]:
        rules = [r for r in (self.config.scale_up, self.config.scale_down) if r is not None]
        return [p.period_s for r in rules for p in r.policies]

    def _decide(self, obs: FleetObservation, now: float) -> ScaleDecision:
        cfg = self.config
        if not cfg.enabled:
            return _hold(obs, "autoscaling disabled", self.name)
        fixed = _bound_correction(obs, cfg.min_agents, cfg.max_agents, self.name)
        if fixed is not None:
            return fixed
        forced = self._forced
        if forced is None and self._last_poll is not None:
            due = self._last_poll + cfg.polling_interval_s
            if now < due:
                return _hold(obs, f"not polled (next poll at {_num(due)} s)", self.name)
        self._last_poll, self._forced = now, None
        current = obs.agents
        length = obs.queue_depth + (obs.in_flight if cfg.include_in_flight else 0.0)
        if not _finite(length):
            return _hold(obs, "queue length missing", self.name)
        label = f"queue length {_num(length)}"
        active = length > cfg.activation_threshold
        if active:
            self._last_active = now
            wanted = _ceil(length / cfg.target_per_agent)
            if current == 0:
                target, why = builtins.max(1, wanted), f"activated: {label} -> {wanted}"
            elif abs(1.0 - length / (cfg.target_per_agent * current)) <= cfg.tolerance:
                target, why = current, f"{label} within tolerance"
                wanted = current
            elif wanted > current:
                target, why = self._limited(now, current, wanted, f"{label} -> {wanted}")
            else:
                target = builtins.min(current, self._window_max(now, wanted))
                why = f"{label} -> {wanted}, stabilised to {target}"
                if target < current:
                    target, why = self._limited(now, current, target, why)
            self._remember(now, wanted)
        else:
            self._remember(now, cfg.min_agents)
            since = self._last_active
            if since is not None and now - since < cfg.cooldown_s:
                target = current
                why = f"inactive ({label}); cooldown until {_num(since + cfg.cooldown_s)} s"
            else:
                target, why = cfg.min_agents, f"inactive ({label}); cooldown over"
        if forced is not None:
            target = builtins.max(target, current + cfg.force_increment)
            why = f"forced by alert: {forced}; {why}"
        target = builtins.min(cfg.max_agents, builtins.max(cfg.min_agents, target))
        if target == current:
            return _hold(obs, f"no change: {why}", self.name)
        return _move(obs, target, f"scale {'up' if target > current else 'down'}: {why}", self.name)

    def _limited(self, now: float, current: int, desired: int, why: str) -> tuple[int, str]:
        """The created HPA's behaviour between 1 and N: scale-up window, then rate limits.

        Without a behaviour in the ScaledObject, nothing limits the change
        here (the model KEDA has always had; see the class docstring).
        """
        cfg = self.config
        if desired > current and cfg.scale_up is not None:
            cut = now - cfg.scale_up.stabilization_window_s
            floor = builtins.min(
                [desired, *(rec for when, rec in self._recommendations if when > cut)]
            )
            if floor < desired:
                desired, why = builtins.max(current, floor), f"{why}, stabilised to {floor}"
            limit = _up_limit(now, current, self._up_events, self._down_events, cfg.scale_up)
            if limit is not None and limit < desired:
                return builtins.max(current, limit), f"{why}, limited to {limit}"
        elif desired < current and cfg.scale_down is not None:
            limit = _down_limit(now, current, self._up_events, self._down_events, cfg.scale_down)
            if limit is not None and limit > desired:
                return builtins.min(current, limit), f"{why}, limited to {limit}"
        return desired, why

    def _window_max(self, now: float, wanted: int) -> int:
        cut = now - self.config.stabilization_window_s
        return builtins.max([wanted, *(rec for when, rec in self._recommendations if when > cut)])

    def _remember(self, now: float, recommendation: int) -> None:
        self._recommendations.append((now, recommendation))
        cut = now - self.config.stabilization_window_s
        while self._recommendations and self._recommendations[0][0] <= cut:
            self._recommendations.popleft()


# --------------------------------------------------------------------------- configuration


_Config = TypeVar("_Config", StepConfig, HpaConfig, KedaConfig)


def configure(config: _Config, overrides: dict[str, Any], kind: str) -> _Config:
    """``dataclasses.replace`` with an error that lists the settings a kind accepts."""
    names = [f.name for f in fields(config)]
    unknown = [key for key in overrides if key not in names]
    if unknown:
        raise ValueError(
            f"unknown {kind} autoscaler setting {unknown[0]!r}; expected one of {', '.join(names)}"
        )
    return replace(config, **overrides)


# --------------------------------------------------------------------------- vertical sizes


@dataclass(frozen=True, slots=True)
class SizeOption:
    """One vertical size of an agent (section 4.2) with its speed and price.

    ``speed`` is work per second relative to the base size, by Amdahl's law;
    ``usd_per_hour`` is what the size costs running; ``usd_per_work_hour`` is
    ``usd_per_hour / speed``: the price of the work a base agent does in an hour.
    """

    vcpu: float
    mem_gb: float
    speed: float
    usd_per_hour: float
    usd_per_work_hour: float


def _amdahl_speed(vcpu: float, base_vcpu: float, parallel_fraction: float) -> float:
    # The same law as sim.world.topology.amdahl_speed (a test checks they agree). Not imported:
    # world imports the scenario schema, which imports this package, so the import would be
    # circular as soon as sim.policies re-exports this module.
    return 1.0 / ((1.0 - parallel_fraction) + parallel_fraction * base_vcpu / vcpu)


def size_options(
    base: tuple[float, float],
    max: tuple[float, float],  # the spec's column name; builtins.max is used below
    parallel_fraction: float,
    price_vcpu_h: float,
    price_gb_h: float,
) -> list[SizeOption]:
    """Sizes from *base* to *max* ``(vcpu, mem_gb)`` in steps of *base*, smallest first.

    Step *k* is ``k x base`` with each resource capped at its max; the last
    option is *max* itself, on the grid or not. Prices are US dollars per vCPU
    hour and per GB hour.
    """
    base_vcpu, base_mem = float(base[0]), float(base[1])
    max_vcpu, max_mem = float(max[0]), float(max[1])
    if base_vcpu <= 0 or base_mem <= 0 or max_vcpu < base_vcpu or max_mem < base_mem:
        raise ValueError(f"expected 0 < base <= max per resource, got {base} and {max}")
    if not 0.0 <= parallel_fraction <= 1.0:
        raise ValueError(f"expected a parallel fraction in [0, 1], got {parallel_fraction}")
    options: list[SizeOption] = []
    k = 1
    while True:
        vcpu = builtins.min(k * base_vcpu, max_vcpu)
        mem = builtins.min(k * base_mem, max_mem)
        if vcpu >= max_vcpu * (1 - _EPS) and mem >= max_mem * (1 - _EPS):
            vcpu, mem = max_vcpu, max_mem
        speed = _amdahl_speed(vcpu, base_vcpu, parallel_fraction)
        usd = vcpu * price_vcpu_h + mem * price_gb_h
        options.append(SizeOption(vcpu, mem, speed, usd, usd / speed))
        if (vcpu, mem) == (max_vcpu, max_mem):
            return options
        k += 1
