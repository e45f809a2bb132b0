"""The spec's step policy (section 4.1): fixed steps on thresholds, separate cooldowns."""

from __future__ import annotations

import builtins
import math
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
)

__all__ = ["STEP_METRICS", "StepConfig", "StepPolicy"]

#: Metrics the spec's step policy may list under ``auto_scale.metrics``.
STEP_METRICS: tuple[str, ...] = ("queue_depth", "avg_response_time", "cpu_utilization")


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
        check_bounds(self.min_agents, self.max_agents)
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

    def restore(self, history: Sequence[ScaleRecord]) -> None:
        """The cooldowns run from the predecessor's last scale-up and scale-down."""
        for record in history:
            if record.after > record.before:
                self._last_up = record.time_s
            elif record.after < record.before:
                self._last_down = record.time_s

    def force_scale_up(self, now: float, reason: str) -> None:
        self._forced = reason

    def decide(self, obs: FleetObservation, now: float) -> ScaleDecision:
        cfg = self.config
        if not cfg.enabled:
            return hold(obs, "autoscaling disabled", self.name)
        fixed = bound_correction(obs, cfg.min_agents, cfg.max_agents, self.name)
        if fixed is not None:
            return fixed
        current = obs.agents
        if self._forced is not None:
            forced, self._forced = self._forced, None
            if current >= cfg.max_agents:
                return hold(obs, f"forced scale-up ({forced}) ignored: at max", self.name)
            return self._scale_up(obs, now, f"forced by alert: {forced}")

        trigger = self._up_trigger(obs)
        if trigger is not None:
            if current >= cfg.max_agents:
                return hold(obs, f"at max ({cfg.max_agents}): {trigger}", self.name)
            if self._last_up is not None and now - self._last_up < cfg.up_cooldown_s:
                left = cfg.up_cooldown_s - (now - self._last_up)
                return hold(
                    obs, f"scale-up cooldown ({fmt_num(left)} s left): {trigger}", self.name
                )
            return self._scale_up(obs, now, trigger)

        trigger = self._down_trigger(obs)
        if trigger is not None:
            if current <= cfg.min_agents:
                return hold(obs, f"at min ({cfg.min_agents}): {trigger}", self.name)
            last = self._last_down
            if cfg.up_resets_down_cooldown and self._last_up is not None:
                last = self._last_up if last is None else builtins.max(last, self._last_up)
            if last is not None and now - last < cfg.down_cooldown_s:
                left = cfg.down_cooldown_s - (now - last)
                return hold(
                    obs, f"scale-down cooldown ({fmt_num(left)} s left): {trigger}", self.name
                )
            target = builtins.max(cfg.min_agents, current - cfg.decrement)
            self._last_down = now
            return move(obs, target, f"scale down: {trigger}", self.name)
        return hold(obs, "within thresholds", self.name)

    def _scale_up(self, obs: FleetObservation, now: float, why: str) -> ScaleDecision:
        target = builtins.min(self.config.max_agents, obs.agents + self.config.increment)
        self._last_up = now
        return move(obs, target, f"scale up: {why}", self.name)

    def _up_trigger(self, obs: FleetObservation) -> str | None:
        """The first listed metric at or over its threshold, described, or None."""
        cfg = self.config
        checks: list[tuple[str, float, float | None]] = [
            ("queue_depth", obs.queue_depth, cfg.up_queue_depth),
            ("avg_response_time", obs.avg_response_time_s, cfg.up_response_time_s),
            ("cpu_utilization", obs.cpu_utilization, cfg.up_cpu_utilization),
        ]
        for metric, value, threshold in checks:
            counted = metric in cfg.metrics and threshold is not None and math.isfinite(value)
            if counted and threshold is not None and value >= threshold:
                return f"{metric} {fmt_num(value)} >= {fmt_num(threshold)}"
        return None

    def _down_trigger(self, obs: FleetObservation) -> str | None:
        cfg = self.config
        queue, idle = obs.queue_depth, obs.idle_fraction
        if not (math.isfinite(queue) and math.isfinite(idle)):
            return None
        if queue <= cfg.down_queue_depth and idle >= cfg.down_idle_fraction:
            return (
                f"queue_depth {fmt_num(queue)} <= {fmt_num(cfg.down_queue_depth)} and idle "
                f"{fmt_num(idle)} >= {fmt_num(cfg.down_idle_fraction)}"
            )
        return None
