"""The control loop in the model: the spec's autoscaler and alert rules acting on a run."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest
from support import short_baseline

from sim.model.engine import Simulation, run_scenario


def _scale_events(events: pd.DataFrame) -> pd.DataFrame:
    scale = events[events["kind"] == "scale"].copy()
    details = scale["detail"].map(json.loads)
    scale["delta"] = details.map(lambda d: d["delta"])
    scale["target"] = details.map(lambda d: d["target"])
    return scale


def test_a_step_load_scales_up_within_cooldown_and_spawn_delay_per_step() -> None:
    """A 3x surge from 30 min: the fleet grows by +10 per cooldown until the max (250 agents)."""
    scenario = short_baseline(
        "workload.arrivals.bursts=[{at: 30m, duration: 3h, factor: 3}]",
        "scaling.spawn_delay=90s",
        hours=3.0,
        autoscale=True,
    )
    result = run_scenario(scenario)
    control = scenario.control_agents()
    scale = _scale_events(result.events)
    ups = scale[(scale["delta"] > 0) & (scale["time_s"] >= 1800)]
    scheduled = ups[~ups["detail"].str.contains("forced by alert")]
    assert len(scheduled) >= 2
    # Never two scheduled scale-ups within the 300 s cooldown (the queue_overflow alert's
    # scale_up_immediate may cut in between, which is what it is for).
    assert (scheduled["time_s"].diff().dropna() >= 300 - 1e-9).all()
    # From the surge, reaching +77 specialists (173 -> 250 - 27 = 223 max) takes at most
    # ceil(77 / 10) = 8 steps, each within cooldown + spawn delay + one evaluation.
    steps = -(-(250 - control - 173) // 10)
    global_rows = result.metrics[result.metrics["level"] == "global"]
    at_max = global_rows[global_rows["total_agents"] + control >= 250]
    assert not at_max.empty
    assert at_max["time_s"].iloc[0] <= 1800 + steps * (300 + 90 + 60) + 60
    assert (global_rows["total_agents"] + control <= 250).all()
    assert result.counts["lost"] == 0


def test_scale_down_drains_and_never_goes_below_min() -> None:
    """A quiet fleet shrinks by -5 per 600 s, gracefully, never below min_agents."""
    scenario = short_baseline(
        "workload.arrivals.rate_per_min=20",
        "workload.dags.rate_per_min=0",
        "scaling.min_agents=170",
        hours=3.0,
        autoscale=True,
    )
    result = run_scenario(scenario)
    scale = _scale_events(result.events)
    downs = scale[scale["delta"] < 0]
    assert len(downs) >= 2
    assert (downs["delta"] == -5).all() or downs["target"].iloc[-1] == 170 - 27
    assert (downs["time_s"].diff().dropna() >= 600 - 1e-9).all()
    global_rows = result.metrics[result.metrics["level"] == "global"]
    assert (global_rows["total_agents"] + 27 >= 170 - 1e-9).all()
    drained = result.tasks[
        result.tasks["agent"].isin(
            result.agents.query("left_s < @result.scenario.duration")["agent"]
        )
    ]
    assert set(drained["outcome"]) <= {"completed"}  # draining kills nothing
    assert result.counts["lost"] == 0


@pytest.mark.parametrize("policy", ["step", "hpa", "keda"])
def test_every_policy_stays_within_bounds(policy: str) -> None:
    scenario = short_baseline(
        f"scaling.policy={policy}",
        "workload.arrivals.bursts=[{at: 20m, duration: 40m, factor: 4}]",
        hours=2.0,
        autoscale=True,
    )
    result = run_scenario(scenario)
    rows = result.metrics[result.metrics["level"] == "global"]
    total = rows["total_agents"] + scenario.control_agents()
    assert total.max() <= scenario.scaling.max_agents
    assert total.min() >= scenario.scaling.min_agents
    assert len(_scale_events(result.events)) > 0
    assert result.counts["lost"] == 0


def test_queue_overflow_alert_scales_up_immediately() -> None:
    """queue_depth > 500 fires the critical alert, whose action overrides the cooldown."""
    sim = Simulation(
        short_baseline(
            "workload.arrivals.bursts=[{at: 20m, duration: 20m, factor: 8}]",
            "scaling.scale_up.cooldown_seconds=2h",
            hours=1.0,
            autoscale=True,
        )
    )
    result = sim.run()
    events = result.events
    alerts = events[events["kind"] == "alert"]
    overflow = alerts[
        (alerts["subject"] == "queue_overflow") & alerts["detail"].str.contains("firing")
    ]
    assert not overflow.empty
    fired_at = overflow["time_s"].iloc[0]
    scale = _scale_events(events)
    forced = scale[(scale["time_s"] == fired_at) & (scale["delta"] > 0)]
    assert len(forced) == 1  # at the very sample the alert fired, despite the 2 h cooldown
    assert result.counts["lost"] == 0


def test_alerts_fire_and_resolve_on_the_timeline() -> None:
    """A roomy fleet (utilisation ~0.4) answers fast until a 3x surge pushes p99 wait past 10 s."""
    result = run_scenario(
        short_baseline(
            "topology.specialists=260",
            "workload.arrivals.bursts=[{at: 20m, duration: 20m, factor: 3}]",
            hours=1.5,
        )
    )
    alerts = result.events[result.events["kind"] == "alert"]
    latency = alerts[alerts["subject"] == "high_latency"]
    states = [json.loads(d)["state"] for d in latency["detail"]]
    assert states[:2] == ["firing", "resolved"]
    assert all(a != b for a, b in itertools.pairwise(states))  # strictly alternating
    assert latency["time_s"].iloc[0] >= 1200


def test_the_metric_window_spans_several_evaluations() -> None:
    """metric_window 180 s with decisions every 60 s: each decision averages the last 3 minutes."""
    sim = Simulation(
        short_baseline(
            "scaling.metric_window=3m", "scaling.evaluation_interval=1m", hours=0.25, autoscale=True
        )
    )
    sim.start()
    sim.env.run(until=600.5)
    start, busy0, *_ = sim.control.loop.window.start(sim.env.now)
    assert start == 420.0  # the evaluation 3 minutes before the last one at 600 s
    observed = sim.control.observe()
    slots = sum(z.slots for z in sim.zones.values())
    expected = (sim.slots.busy_area(sim.env.now) - busy0) / ((sim.env.now - start) * slots)
    assert observed.cpu_utilization == pytest.approx(expected)
    assert 0.3 < observed.cpu_utilization < 0.9


def test_no_leader_no_evaluation_and_the_next_leaders_window_starts_at_its_election() -> None:
    """The leader runs the autoscaler: a tick that falls while the chiefs have no leader
    decides nothing (live has no primary to run one), and the new leader averages only what
    it saw, from its election on (live's new primary restarts its window at its takeover)."""
    sim = Simulation(
        short_baseline(
            "chaos=[{at: 170s, coordinator_crash: leader}]",
            "topology.control_plane.election_timeout=[25s, 30s]",
            "scaling.metric_window=1m",
            "scaling.evaluation_interval=1m",
            hours=0.25,
            autoscale=True,
        )
    )
    loop = sim.control.loop
    window_from: dict[float, float] = {}  # evaluation time -> start of the window it read
    evaluate = loop.evaluate

    def spy(now: float, *args: object) -> object:
        window_from[now] = loop.window.start(now)[0]
        return evaluate(now, *args)  # type: ignore[arg-type]

    loop.evaluate = spy  # type: ignore[assignment,method-assign]
    result = sim.run()
    elected = result.events[result.events["kind"] == "leader_elected"]["time_s"].tolist()
    assert len(elected) == 1 and 180.0 < elected[0] < 240.0  # the tick at 180 s falls in it
    assert 180.0 not in window_from and {120.0, 240.0, 300.0} <= set(window_from)
    assert window_from[120.0] == 60.0 and window_from[300.0] == 240.0  # a minute each
    assert window_from[240.0] == elected[0]  # from the election on (not from 120 s)
