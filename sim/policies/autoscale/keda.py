"""KEDA's queue-length scaler: polled, activated, cooled down, with the created HPA's window."""

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
from sim.policies.autoscale.behavior import ScalingRules, down_limit, record_change, up_limit

__all__ = ["KedaConfig", "KedaQueuePolicy"]


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
        check_bounds(self.min_agents, self.max_agents)
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

    def restore(self, history: Sequence[ScaleRecord]) -> None:
        """The created HPA's rate limits count the predecessor's changes (its window's
        recommendations and last activity are its own memory, not in the event log)."""
        for record in history:
            record_change(
                record.time_s,
                record.before,
                record.after,
                self._up_events,
                self._down_events,
                self._periods,
            )

    def force_scale_up(self, now: float, reason: str) -> None:
        self._forced = reason

    def decide(self, obs: FleetObservation, now: float) -> ScaleDecision:
        decision = self._decide(obs, now)
        if self.config.scale_up is not None or self.config.scale_down is not None:
            record_change(
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
            return hold(obs, "autoscaling disabled", self.name)
        fixed = bound_correction(obs, cfg.min_agents, cfg.max_agents, self.name)
        if fixed is not None:
            return fixed
        forced = self._forced
        if forced is None and self._last_poll is not None:
            due = self._last_poll + cfg.polling_interval_s
            if now < due:
                return hold(obs, f"not polled (next poll at {fmt_num(due)} s)", self.name)
        self._last_poll, self._forced = now, None
        current = obs.agents
        length = obs.queue_depth + (obs.in_flight if cfg.include_in_flight else 0.0)
        if not math.isfinite(length):
            return hold(obs, "queue length missing", self.name)
        label = f"queue length {fmt_num(length)}"
        active = length > cfg.activation_threshold
        if active:
            self._last_active = now
            wanted = round_up(length / cfg.target_per_agent)
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
                why = f"inactive ({label}); cooldown until {fmt_num(since + cfg.cooldown_s)} s"
            else:
                target, why = cfg.min_agents, f"inactive ({label}); cooldown over"
        if forced is not None:
            target = builtins.max(target, current + cfg.force_increment)
            why = f"forced by alert: {forced}; {why}"
        target = builtins.min(cfg.max_agents, builtins.max(cfg.min_agents, target))
        if target == current:
            return hold(obs, f"no change: {why}", self.name)
        return move(obs, target, f"scale {'up' if target > current else 'down'}: {why}", self.name)

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
            limit = up_limit(now, current, self._up_events, self._down_events, cfg.scale_up)
            if limit is not None and limit < desired:
                return builtins.max(current, limit), f"{why}, limited to {limit}"
        elif desired < current and cfg.scale_down is not None:
            limit = down_limit(now, current, self._up_events, self._down_events, cfg.scale_down)
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
