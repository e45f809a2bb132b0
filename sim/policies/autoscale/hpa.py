"""Kubernetes' Horizontal Pod Autoscaler: the replica calculator per metric, then the behaviour."""

from __future__ import annotations

import builtins
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from sim.policies.autoscale.base import (
    FleetObservation,
    ScaleDecision,
    ScaleRecord,
    bound_correction,
    check_bounds,
    fmt_num,
    hold,
    move,
    round_up,
)
from sim.policies.autoscale.behavior import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    ScalingRules,
    down_limit,
    record_change,
    up_limit,
)

__all__ = ["HpaConfig", "HpaPolicy"]


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
        check_bounds(self.min_agents, self.max_agents)
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

    def restore(self, history: Sequence[ScaleRecord]) -> None:
        """The rate limits count the predecessor's changes; each change's target stands for
        the recommendations of its time in the stabilisation windows (the recommendations
        themselves are the predecessor's memory, not in the event log)."""
        for record in history:
            self._record_scale(record.time_s, record.before, record.after)
            self._recommendations.append((record.time_s, record.after))
        self._seeded = self._seeded or bool(history)

    def force_scale_up(self, now: float, reason: str) -> None:
        self._forced = reason

    def decide(self, obs: FleetObservation, now: float) -> ScaleDecision:
        cfg = self.config
        if not cfg.enabled:
            return hold(obs, "autoscaling disabled", self.name)
        current = obs.agents
        fixed = bound_correction(obs, cfg.min_agents, cfg.max_agents, self.name)
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
            return hold(obs, "no metric available", self.name)
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
            return hold(obs, f"no change: {reason}", self.name)
        return move(
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
            if obs.ready <= 0 or not math.isfinite(value):
                out.append(("avg_response_time missing", None))
            else:
                ratio = value / cfg.target_response_time_s
                n = obs.agents if abs(1.0 - ratio) <= cfg.tolerance else round_up(ratio * obs.ready)
                label = (
                    f"avg_response_time {fmt_num(value)}/{fmt_num(cfg.target_response_time_s)} s"
                )
                out.append((f"{label} -> {n}", n))
        return out

    def _cpu(self, obs: FleetObservation, target: float) -> tuple[str, int | None]:
        """GetResourceReplicas: utilisation of ready agents; starting ones at 0 % on a scale-up."""
        cpu, ready, current = obs.cpu_utilization, obs.ready, obs.agents
        if ready <= 0 or not math.isfinite(cpu):
            return "cpu_utilization missing", None
        label = f"cpu_utilization {fmt_num(cpu)}/{fmt_num(target)}"
        ratio = cpu / target
        unready = builtins.max(current - ready, 0)
        if unready == 0 or ratio <= 1.0:
            if abs(1.0 - ratio) <= self.config.tolerance:
                return f"{label} within tolerance", current
            n = round_up(ratio * ready)
            return f"{label} -> {n}", n
        counted = ready + unready
        new_ratio = cpu * ready / (target * counted)
        if abs(1.0 - new_ratio) <= self.config.tolerance or new_ratio < 1.0:
            return f"{label}, starting agents at 0 %: {fmt_num(new_ratio)} no change", current
        n = builtins.max(round_up(new_ratio * counted), current)
        return f"{label}, starting agents at 0 % -> {n}", n

    def _queue(self, obs: FleetObservation, target: float) -> tuple[str, int | None]:
        """GetExternalPerPodMetricReplicas: an AverageValue target on the queue."""
        usage = obs.queue_depth + (obs.in_flight if self.config.queue_includes_in_flight else 0.0)
        if not math.isfinite(usage):
            return "queue_depth missing", None
        current = obs.agents
        label = f"queue {fmt_num(usage)}/({fmt_num(target)} per agent)"
        if current > 0 and abs(1.0 - usage / (target * current)) <= self.config.tolerance:
            return f"{label} within tolerance", current
        n = round_up(usage / target)
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
            limit = up_limit(now, current, self._up_events, self._down_events, cfg.scale_up)
            allowed = cfg.max_agents if limit is None else builtins.min(cfg.max_agents, limit)
            return builtins.min(desired, builtins.max(allowed, current))
        if desired < current:
            limit = down_limit(now, current, self._up_events, self._down_events, cfg.scale_down)
            allowed = cfg.min_agents if limit is None else builtins.max(cfg.min_agents, limit)
            return builtins.max(desired, builtins.min(allowed, current))
        return desired

    def _record_scale(self, now: float, before: int, after: int) -> None:
        periods = [
            p.period_s for p in (*self.config.scale_up.policies, *self.config.scale_down.policies)
        ]
        record_change(now, before, after, self._up_events, self._down_events, periods)
