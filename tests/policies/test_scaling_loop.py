"""The scaling loop both shells drive: its metric window, pipeline staleness, plans and alerts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.alerts import AlertEvent
from sim.policies.autoscale import FleetObservation, ScaleDecision
from sim.policies.placement import PoolLoad
from sim.policies.scaling_loop import (
    FleetTotals,
    MetricWindow,
    ScalingLoop,
    alert_fields,
    react_to_alert,
)


@dataclass
class Recorder:
    """An autoscaler that records what it saw and answers a fixed delta."""

    delta: int = 0
    seen: list[tuple[float, FleetObservation]] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)

    def decide(self, obs: FleetObservation, now: float) -> ScaleDecision:
        self.seen.append((now, obs))
        return ScaleDecision(self.delta, obs.agents + self.delta, "fixed", "recorder")

    def force_scale_up(self, now: float, reason: str) -> None:
        self.forced.append(reason)


def totals(
    t: float, *, busy_rate: float = 5.0, serving: int = 10, queue: float = 0.0
) -> FleetTotals:
    """A fleet busy at *busy_rate* slots since 0, one task submitted and started per second."""
    return FleetTotals(
        serving=serving,
        starting=0,
        slots=serving,
        idle=2,
        queue_depth=queue,
        in_flight=3.0,
        busy_area=busy_rate * t,
        wait_sum=0.5 * t,
        started=int(t),
        submitted=int(t),
    )


def test_the_window_averages_between_now_and_the_reading_one_window_ago() -> None:
    window = MetricWindow(120.0)
    for t in (60.0, 120.0, 180.0):
        window.close(t, totals(t, busy_rate=2.0 if t <= 120 else 8.0))
    # At 240 s the window starts at the reading taken at 120 s.
    obs = window.observe(240.0, totals(240.0, busy_rate=2.0))
    assert window.start(240.0)[0] == 120.0
    assert obs.cpu_utilization == pytest.approx((2.0 * 240 - 2.0 * 120) / (120 * 10))
    assert obs.arrival_rate == pytest.approx(1.0)
    assert obs.avg_response_time_s == pytest.approx(0.5)
    assert obs.idle_fraction == pytest.approx(0.2)


def test_an_empty_window_reads_zero_not_nan() -> None:
    obs = MetricWindow(60.0).observe(0.0, FleetTotals(0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0))
    assert (obs.cpu_utilization, obs.idle_fraction, obs.avg_response_time_s) == (0.0, 0.0, 0.0)


def test_plans_place_scale_ups_on_the_most_pressed_pools_and_drain_the_least() -> None:
    pools = [
        PoolLoad("z1", "a", agents=4, starting=0, busy=4, queued=6),
        PoolLoad("z1", "b", agents=4, starting=0, busy=0, queued=0),
    ]
    up = ScalingLoop(Recorder(delta=2), 60.0).evaluate(60.0, totals(60.0), lambda: pools)
    assert up.spawn == (("z1", "a"), ("z1", "a")) and up.drain == ()
    down = ScalingLoop(Recorder(delta=-1), 60.0).evaluate(60.0, totals(60.0), lambda: pools)
    assert down.drain == (("z1", "b"),) and down.spawn == ()
    assert down.record(-1) == {"delta": -1, "asked": -1, "target": 9, "reason": "fixed"}


def test_pools_are_not_counted_when_nothing_changes() -> None:
    def boom() -> list[PoolLoad]:
        raise AssertionError("pools counted for a hold")

    plan = ScalingLoop(Recorder(delta=0), 60.0).evaluate(60.0, totals(60.0), boom)
    assert plan.spawn == plan.drain == ()


def test_an_ideal_pipeline_shows_the_fresh_window() -> None:
    recorder = Recorder()
    loop = ScalingLoop(recorder, 60.0)
    for t in (60.0, 120.0):
        loop.evaluate(t, totals(t, busy_rate=t / 20), list)
    assert recorder.seen[-1][1].cpu_utilization == pytest.approx((6.0 * 120 - 3.0 * 60) / 600)


def test_a_delayed_pipeline_shows_the_scrape_one_delay_old() -> None:
    """delay 30 s, resolution 15 s, decisions every 15 s: each decision sees the one 2 back."""
    fresh, stale = Recorder(), Recorder()
    ideal = ScalingLoop(fresh, 60.0)
    late = ScalingLoop(stale, 60.0, metric_resolution_s=15.0, metric_delay_s=30.0)
    for k in range(1, 12):
        t = 15.0 * k
        for loop in (ideal, late):
            loop.evaluate(t, totals(t, busy_rate=float(k), queue=float(k)), list)
    # Nothing scraped 30 s before the first two decisions: the controller has no metric.
    assert math.isnan(stale.seen[0][1].queue_depth) and math.isnan(stale.seen[1][1].queue_depth)
    for i in range(2, 11):
        assert stale.seen[i][1].queue_depth == fresh.seen[i - 2][1].queue_depth
        assert stale.seen[i][1].cpu_utilization == fresh.seen[i - 2][1].cpu_utilization
        # Agent counts are the controller's own, never stale.
        assert stale.seen[i][1].agents == fresh.seen[i][1].agents


@given(
    resolution=st.sampled_from([0.0, 10.0, 15.0, 60.0]),
    delay=st.floats(0.0, 300.0),
    every=st.sampled_from([5.0, 15.0, 60.0]),
)
def test_the_metric_seen_is_never_younger_than_the_delay(
    resolution: float, delay: float, every: float
) -> None:
    fresh, stale = Recorder(), Recorder()
    ideal = ScalingLoop(fresh, 60.0)
    late = ScalingLoop(stale, 60.0, metric_resolution_s=resolution, metric_delay_s=delay)
    for k in range(1, 40):
        t = every * k
        for loop in (ideal, late):
            loop.evaluate(t, totals(t, queue=t), list)
    for now, obs in stale.seen:
        if math.isnan(obs.queue_depth):
            assert now - delay < every + 1e-6 or resolution > 0
            continue
        age = now - obs.queue_depth  # queue_depth encodes when the scrape was taken
        assert age >= delay - 1e-6
        assert age < delay + max(resolution, every) + every + 1e-6


def event(state: str, action: str) -> AlertEvent:
    return AlertEvent(1.0, "high_latency", "critical", action, state, 12.0, "p99")  # type: ignore[arg-type]


def test_alerts_act_only_when_firing() -> None:
    assert react_to_alert(event("firing", "scale_up_immediate"), True).force_scale_up == (
        "alert high_latency"
    )
    assert react_to_alert(event("firing", "scale_up_immediate"), False).force_scale_up is None
    assert react_to_alert(event("resolved", "scale_up_immediate"), True).force_scale_up is None
    assert react_to_alert(event("firing", "page_oncall"), True).notify
    assert react_to_alert(event("firing", "notify_slack"), True).notify
    assert not react_to_alert(event("resolved", "page_oncall"), True).notify
    assert not react_to_alert(event("firing", "log_only"), True).notify
    assert alert_fields(event("firing", "page_oncall")) == {
        "state": "firing",
        "severity": "critical",
        "action": "page_oncall",
        "value": 12.0,
        "metric": "p99",
    }


def test_force_reaches_the_autoscaler() -> None:
    recorder = Recorder()
    ScalingLoop(recorder, 60.0).force(5.0, "alert x")
    assert recorder.forced == ["alert x"]
