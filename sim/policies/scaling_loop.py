"""The autoscaling loop's decisions, written once for both shells.

An autoscaler (``sim.policies.autoscale``) decides from one averaged
observation; around it sit decisions that used to be written twice, once in
the SimPy shell's control loop and once in the live coordinator's scaling
loop, and drifted there: which metric window the observation averages, where
added agents go and which pools give agents up, what the ``scale`` record
says, and what an alert's action does to the autoscaler. They live here.

A shell counts running totals (:class:`FleetTotals`) — busy slot-seconds,
the sum of waits, services started, tasks submitted — and current levels;
this module turns the difference between now and the reading one metric
window ago into the :class:`~sim.policies.autoscale.FleetObservation`, so
both shells average over exactly the same window.

A real cluster does not see the fleet as it is now: the metrics pipeline
scrapes at a resolution and delivers with a delay (Kubernetes' metrics-server
scrapes every 15 s; a Prometheus adapter adds its own lag). With
``metric_resolution_s``/``metric_delay_s`` set, a decision at *now* sees the
observation as it stood at the latest scrape no later than ``now - delay``,
which is how a simulated HPA reproduces a real one's reaction time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.policies.alerts import AlertEvent
from sim.policies.autoscale import Autoscaler, FleetObservation, ScaleDecision
from sim.policies.autoscale.base import ScaleRecord
from sim.policies.placement import PoolLoad, pick_drains, place_agents

__all__ = [
    "AlertReaction",
    "FleetTotals",
    "MetricWindow",
    "ScalePlan",
    "ScalingLoop",
    "alert_fields",
    "react_to_alert",
    "scale_record",
]


@dataclass(frozen=True, slots=True)
class FleetTotals:
    """What a shell counts at one instant: levels now and running totals since the start.

    ``busy_area`` is busy slot-seconds so far; ``wait_sum`` the sum of the
    waits of the ``started`` services; ``submitted`` tasks so far. ``idle`` is
    the serving agents that hold nothing.
    """

    serving: int
    starting: int
    slots: int
    idle: int
    queue_depth: float
    in_flight: float
    busy_area: float
    wait_sum: float
    started: int
    submitted: int


_Reading = tuple[float, float, float, int, int]  # time, busy area, wait sum, started, submitted


class MetricWindow:
    """Averages over the last ``window_s`` seconds, from readings taken at each evaluation."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._readings: deque[_Reading] = deque([(0.0, 0.0, 0.0, 0, 0)])

    def start(self, now: float) -> _Reading:
        """The latest reading at least one window old (the oldest kept, early on)."""
        readings = self._readings
        while len(readings) > 1 and readings[1][0] <= now - self.window_s + 1e-9:
            readings.popleft()
        return readings[0]

    def observe(self, now: float, totals: FleetTotals) -> FleetObservation:
        start, busy0, waits0, started0, submitted0 = self.start(now)
        span = max(now - start, 1e-9)
        slots = totals.slots
        busy = totals.busy_area - busy0
        serving = totals.serving
        wait_count = totals.started - started0
        return FleetObservation(
            agents=serving + totals.starting,
            ready=serving,
            starting=totals.starting,
            queue_depth=float(totals.queue_depth),
            avg_response_time_s=(totals.wait_sum - waits0) / wait_count if wait_count else 0.0,
            cpu_utilization=min(1.0, busy / (span * slots)) if slots else 0.0,
            idle_fraction=totals.idle / serving if serving else 0.0,
            in_flight=float(totals.in_flight),
            arrival_rate=(totals.submitted - submitted0) / span,
        )

    def restart(self, now: float, totals: FleetTotals) -> None:
        """Windows start from *now* (a new primary: the totals are its own from here)."""
        self._readings = deque([_reading(now, totals)])

    def close(self, now: float, totals: FleetTotals) -> None:
        """Take the reading that later windows start from."""
        self._readings.append(_reading(now, totals))


def _reading(now: float, totals: FleetTotals) -> _Reading:
    return (now, totals.busy_area, totals.wait_sum, totals.started, totals.submitted)


@dataclass(frozen=True, slots=True)
class ScalePlan:
    """One evaluation's outcome: the decision, and the pools to add to or drain from.

    ``spawn`` lists a pool per agent to add, most pressed first; ``drain`` a
    pool per agent to drain, least pressed first. The shell carries them out
    in order (a spawn that fails stops the rest; a pool without a drainable
    agent is skipped) and reports how many it did to :meth:`record`.
    ``observation`` is what the autoscaler decided on (``scaling.parquet``).
    """

    decision: ScaleDecision
    spawn: tuple[tuple[str, str], ...] = ()
    drain: tuple[tuple[str, str], ...] = ()
    observation: FleetObservation | None = None

    def record(self, done: int) -> dict[str, Any]:
        """The ``scale`` event's fields: what was asked, what was done, and why."""
        d = self.decision
        return {"delta": done, "asked": d.delta, "target": d.target, "reason": d.reason}


def scale_record(time_s: float, fields: Mapping[str, Any]) -> ScaleRecord:
    """The change a ``scale`` event's *fields* (:meth:`ScalePlan.record`) made at *time_s*."""
    before = int(fields["target"]) - int(fields["asked"])
    return ScaleRecord(time_s, before, before + int(fields["delta"]))


class ScalingLoop:
    """The autoscaler with its metric window, staleness, placement and forcing."""

    def __init__(
        self,
        autoscaler: Autoscaler,
        window_s: float,
        *,
        metric_resolution_s: float = 0.0,
        metric_delay_s: float = 0.0,
    ) -> None:
        self.autoscaler = autoscaler
        self.window = MetricWindow(window_s)
        self.metric_resolution_s = metric_resolution_s
        self.metric_delay_s = metric_delay_s
        #: Observations by the time they were taken, when the pipeline is stale.
        self._seen: deque[tuple[float, FleetObservation]] = deque()

    def observe(self, now: float, totals: FleetTotals) -> FleetObservation:
        """What the autoscaler sees at *now*: the window's averages, as old as the pipeline."""
        fresh = self.window.observe(now, totals)
        resolution, delay = self.metric_resolution_s, self.metric_delay_s
        if resolution <= 0 and delay <= 0:
            return fresh
        self._seen.append((now, fresh))
        seen_at = now - delay
        if resolution > 0:
            seen_at = math.floor(seen_at / resolution + 1e-9) * resolution
        seen = self._seen
        while len(seen) > 1 and seen[1][0] <= seen_at + 1e-9:
            seen.popleft()
        taken, observation = seen[0]
        if taken > seen_at + 1e-9:
            # Nothing scraped that early yet: the controller has no metric, so it holds.
            return _no_metric(fresh)
        # Counts of agents are the controller's own (it knows what it asked for).
        return FleetObservation(
            agents=fresh.agents,
            ready=fresh.ready,
            starting=fresh.starting,
            queue_depth=observation.queue_depth,
            avg_response_time_s=observation.avg_response_time_s,
            cpu_utilization=observation.cpu_utilization,
            idle_fraction=observation.idle_fraction,
            in_flight=observation.in_flight,
            arrival_rate=observation.arrival_rate,
        )

    def evaluate(
        self, now: float, totals: FleetTotals, pools: Callable[[], Sequence[PoolLoad]]
    ) -> ScalePlan:
        """Decide on the window just ended, start the next one, and place the change.

        *pools* is called only when the decision changes the fleet: counting
        pools is the most expensive part of an evaluation in a large fleet.
        """
        observation = self.observe(now, totals)
        decision = self.autoscaler.decide(observation, now)
        self.window.close(now, totals)
        if decision.delta > 0:
            spawn = tuple(place_agents(decision.delta, pools()))
            return ScalePlan(decision, spawn=spawn, observation=observation)
        if decision.delta < 0:
            drain = tuple(pick_drains(-decision.delta, pools()))
            return ScalePlan(decision, drain=drain, observation=observation)
        return ScalePlan(decision, observation=observation)

    def resume(self, now: float, totals: FleetTotals, history: Sequence[ScaleRecord]) -> None:
        """A new primary takes over at *now*: its predecessor's changes (*history*, oldest
        first: cooldowns and rate limits run on), and its metric windows from now."""
        self.autoscaler.restore(history)
        self.new_leader(now, totals)

    def new_leader(self, now: float, totals: FleetTotals) -> None:
        """A new leader's metric windows start at its election (*now*): what it averages
        is what it saw. Both shells: live's new primary, the simulator's Raft leader.
        (No leader, no evaluation: live has no primary to run one; the simulator's
        control loop skips the ticks of a leaderless spell.)"""
        self.window.restart(now, totals)

    def force(self, now: float, reason: str) -> None:
        """Make the next evaluation scale up past any delay (alert ``scale_up_immediate``)."""
        self.autoscaler.force_scale_up(now, reason)


def _no_metric(fresh: FleetObservation) -> FleetObservation:
    nan = math.nan
    return FleetObservation(
        agents=fresh.agents,
        ready=fresh.ready,
        starting=fresh.starting,
        queue_depth=nan,
        avg_response_time_s=nan,
        cpu_utilization=nan,
        idle_fraction=nan,
        in_flight=nan,
        arrival_rate=nan,
    )


@dataclass(frozen=True, slots=True)
class AlertReaction:
    """What one alert transition asks the shell to do.

    ``force_scale_up`` is the reason to force the autoscaler up now (the shell
    then evaluates at once); ``notify`` is true for a firing page or chat
    message (the live shell posts it to its webhook; the simulator records it
    on the timeline only).
    """

    force_scale_up: str | None = None
    notify: bool = False


_NOTIFY_ACTIONS = frozenset({"page_oncall", "notify_slack"})


def react_to_alert(event: AlertEvent, autoscale: bool) -> AlertReaction:
    """The action of one transition: only firing alerts act, and forcing needs the autoscaler."""
    if event.state != "firing":
        return AlertReaction()
    if event.action == "scale_up_immediate":
        return AlertReaction(force_scale_up=f"alert {event.name}" if autoscale else None)
    return AlertReaction(notify=event.action in _NOTIFY_ACTIONS)


def alert_fields(event: AlertEvent) -> dict[str, Any]:
    """The ``alert`` event's fields, the same in both shells' records."""
    return {
        "state": event.state,
        "severity": event.severity,
        "action": event.action,
        "value": event.value,
        "metric": event.metric,
    }
