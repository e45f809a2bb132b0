"""Failures in the model: detection, redistribution, replacement, zone outage — nothing lost."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import assert_conserved, short_baseline

from sim.model.engine import run_scenario


def _details(events: pd.DataFrame, kind: str) -> pd.DataFrame:
    rows = events[events["kind"] == kind]
    return pd.concat(
        [rows.reset_index(drop=True), pd.DataFrame(list(rows["detail"].map(json.loads)))], axis=1
    )


def test_detection_takes_threshold_checks_of_the_interval() -> None:
    """3 consecutive failed checks, 10 s apart, each known 2 s after it is sent."""
    result = run_scenario(
        short_baseline("chaos=[{at: 20m, kill: {zone: A, fraction: 0.5}}]", hours=0.75)
    )
    detected = _details(result.events, "agent_detected")
    assert len(detected) == 22  # half of zone A's 44 specialists
    # The first failed check is within one interval of the crash; the third two later.
    assert detected["detect_s"].between(2 * 10 + 2, 3 * 10 + 2).all()
    assert detected["detect_s"].max() - detected["detect_s"].min() > 5  # phases are spread
    assert_conserved(result)


def test_per_message_checks_agree_with_the_analytic_detector() -> None:
    chaos = "chaos=[{at: 15m, kill: {category: Test, fraction: 0.3}, restart_after: 20m}]"
    analytic = run_scenario(short_baseline(chaos, hours=0.75))
    simulated = run_scenario(short_baseline(chaos, "health.per_message=true", hours=0.75))
    a = _details(analytic.events, "agent_detected")[["subject", "time_s"]]
    b = _details(simulated.events, "agent_detected")[["subject", "time_s"]]
    pd.testing.assert_frame_equal(
        a.sort_values("subject").reset_index(drop=True),
        b.sort_values("subject").reset_index(drop=True),
    )
    assert len(a) > 0


def _busy_at(tasks: pd.DataFrame, t: float, zones: tuple[str, ...]) -> list[str]:
    """One agent per zone serving a task at *t* (the first by name)."""
    serving = tasks[(tasks["start_s"] < t) & (tasks["end_s"] > t)]
    return [sorted(serving[serving["zone"] == zone]["agent"])[0] for zone in zones]


def test_a_killed_agents_tasks_are_retried_elsewhere_and_it_is_replaced() -> None:
    # Two agents busy at 20 min, found in the same run without the kill: both runs are the
    # same event for event until then (the chaos draws from its own streams).
    queue = "topology.specialist.queue_limit=2"
    victims = _busy_at(run_scenario(short_baseline(queue, hours=0.75)).tasks, 1200.0, ("A", "B"))
    result = run_scenario(
        short_baseline(queue, f"chaos=[{{at: 20m, kill: {{agents: {victims}}}}}]", hours=0.75)
    )
    tasks = result.tasks
    retried = tasks[tasks["outcome"] == "retried"]
    assert set(retried["reason"]) == {"agent_failed"}
    assert set(retried["agent"]) == set(victims)  # what each was serving, at least
    # Every retried task ran again on another agent (or is still in flight) as attempt 2.
    later = tasks[tasks["task_id"].isin(retried["task_id"]) & (tasks["attempt"] == 2)]
    assert set(later["task_id"]) == set(retried["task_id"])
    assert not later["agent"].isin(victims).any()
    replaced = _details(result.events, "agent_replaced")
    assert sorted(replaced["subject"]) == sorted(victims)
    joined = result.agents[result.agents["agent"].isin(replaced["replacement"])]
    assert (joined["joined_s"] > 1200 + 60).all()  # after detection plus the spawn delay
    assert result.counts["retried"] == len(retried)
    assert_conserved(result)


def test_a_spent_retry_budget_fails_tasks_for_good_with_a_reason() -> None:
    result = run_scenario(
        short_baseline(
            "retry.budget=0",
            "topology.specialist.queue_limit=3",
            "chaos=[{at: 20m, kill: {zone: C, fraction: 1.0}}]",
            hours=0.5,
        )
    )
    failed = result.tasks[result.tasks["outcome"] == "failed"]
    assert len(failed) > 0
    assert set(failed["reason"]) <= {"retries_exhausted", "upstream_failed"}
    assert result.counts["failed"] == len(failed)
    assert_conserved(result)


def test_restart_before_detection_reconciles_instead() -> None:
    result = run_scenario(
        short_baseline(
            "chaos=[{at: 20m, kill: {agents: [D-Support-001]}, restart_after: 5s}]",
            "scaling.spawn_delay=0s",  # its process serves the moment its host is back
            hours=0.5,
        )
    )
    kinds = result.events["kind"]
    assert (kinds == "agent_reconciled").sum() == 1
    assert (kinds == "agent_detected").sum() == 0
    assert (kinds == "agent_restarted").sum() == 1
    later = result.tasks[
        (result.tasks["agent"] == "D-Support-001") & (result.tasks["start_s"] > 1205)
    ]
    assert len(later) > 0  # it serves again
    assert_conserved(result)


def test_a_restarted_agent_serves_one_start_up_after_its_host_is_back() -> None:
    """A restart is a process start, as live restarts a killed agent's process: the agent
    is back ``restart_after`` later and serves ``scaling.spawn_delay`` after that."""
    result = run_scenario(
        short_baseline(
            "chaos=[{at: 20m, kill: {agents: [D-Support-001]}, restart_after: 3m}]",
            "scaling.spawn_delay=45s",
            hours=0.5,
        )
    )
    events = result.events
    [back] = events.loc[events["kind"] == "agent_restarted", "time_s"]
    assert back == pytest.approx(20 * 60 + 180 + 45)
    tasks = result.tasks
    served = tasks[(tasks["agent"] == "D-Support-001") & (tasks["start_s"] > 20 * 60)]
    assert len(served) > 0 and served["start_s"].min() >= back
    assert_conserved(result)


def test_zone_outage_routes_around_the_zone_and_back() -> None:
    result = run_scenario(
        short_baseline("chaos=[{at: 20m, zone_outage: B, duration: 20m}]", hours=1.25)
    )
    events = result.events
    redistributed = _details(events, "zone_redistributed")
    assert len(redistributed) == 1
    detected_at = redistributed["time_s"].iloc[0]
    assert 1200 + 22 <= detected_at <= 1200 + 32
    tasks = result.tasks
    served = tasks[tasks["outcome"] == "completed"]
    during = served[(served["start_s"] > detected_at + 1) & (served["start_s"] < 2400)]
    assert (during["zone"] != "B").all()  # nothing runs in the dark zone
    from_b = during[during["home_zone"] == "B"]
    assert len(from_b) > 50  # B's own work was served elsewhere
    assert (from_b["latency_s"] > 0).all()
    after = served[served["start_s"] > 2400 + 120]
    assert (after["zone"] == "B").any()  # traffic returns once the zone is back
    rows = result.metrics[(result.metrics["level"] == "zone") & (result.metrics["id"] == "B")]
    assert rows[(rows["time_s"] > 1260) & (rows["time_s"] < 2400)]["active_agents"].max() == 0
    assert_conserved(result)


def test_outage_alerts_fire() -> None:
    result = run_scenario(
        short_baseline("chaos=[{at: 20m, zone_outage: A, duration: 10m}]", hours=0.75)
    )
    alerts = _details(result.events, "alert")
    fired = set(alerts.loc[alerts["state"] == "firing", "subject"])
    assert "agent_offline_threshold" in fired  # 44 agents offline > 20


def test_gray_agents_serve_slower_and_message_loss_resends() -> None:
    result = run_scenario(
        short_baseline(
            "topology.specialist.speed_cv=0",
            "chaos=[{at: 10m, slow: {zone: D, fraction: 1.0, factor: 3}, duration: 20m},"
            " {at: 10m, message_loss: {rate: 0.3}, duration: 10m}]",
            hours=0.75,
        )
    )
    tasks = result.tasks
    done = tasks[tasks["outcome"] == "completed"]
    slow = done[(done["zone"] == "D") & (done["start_s"] > 600) & (done["end_s"] < 1800)]
    ratio = slow["service_s"] / slow["work_s"]
    assert ratio.round(9).eq(3.0).all() and len(slow) > 20
    assert result.counts["resent_messages"] > 0
    assert_conserved(result)


CHAOS_EVENT = st.one_of(
    st.builds(
        lambda at, zone, fraction, restart: (
            f"{{at: {at}, kill: {{zone: {zone}, fraction: {fraction}}}"
            + (f", restart_after: {restart}}}" if restart else "}")
        ),
        st.integers(60, 1500),
        st.sampled_from("ABCD"),
        st.sampled_from([0.1, 0.5, 1.0]),
        st.sampled_from([0, 5, 60, 400]),
    ),
    st.builds(
        lambda at, zone, duration: f"{{at: {at}, zone_outage: {zone}, duration: {duration}}}",
        st.integers(60, 1500),
        st.sampled_from("ABCD"),
        st.integers(5, 900),
    ),
    st.builds(
        lambda at, rate: f"{{at: {at}, message_loss: {{rate: {rate}}}, duration: 300}}",
        st.integers(60, 1500),
        st.sampled_from([0.1, 0.5]),
    ),
    # The failure matrix's modes (issue 18): a dead team lead, a one-way cut of
    # the leader, a stalled WAL.
    st.builds(
        lambda at, zone, team: f"{{at: {at}, team_lead_crash: {zone}-T0{team}-lead}}",
        st.integers(60, 1500),
        st.sampled_from("ABCD"),
        st.integers(1, 5),
    ),
    st.builds(
        lambda at, way, duration: (
            f"{{at: {at}, one_way_partition: {{chief: leader, direction: {way}}}, "
            f"duration: {duration}}}"
        ),
        st.integers(60, 1500),
        st.sampled_from(["inbound", "outbound"]),
        st.integers(1, 300),
    ),
    st.builds(
        lambda at, fsync, duration: (
            f"{{at: {at}, wal_stall: {{chief: leader, fsync: {fsync}}}, duration: {duration}}}"
        ),
        st.integers(60, 1500),
        st.sampled_from([0.05, 2.0, 5.0]),
        st.integers(1, 60),
    ),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(CHAOS_EVENT, min_size=1, max_size=5),
    budget=st.integers(0, 2),
    team_limit=st.sampled_from(["null", "4"]),
)
def test_conservation_under_random_chaos(events: list[str], budget: int, team_limit: str) -> None:
    """Whatever breaks, and in whatever order, no task is ever lost."""
    scenario = short_baseline(
        f"chaos=[{', '.join(events)}]",
        f"retry.budget={budget}",
        f"policies.team_limit={team_limit}",
        "topology.specialist.queue_limit=1",
        hours=0.5,
        autoscale=True,
    )
    result = run_scenario(scenario)
    assert_conserved(result)
    tasks = result.tasks
    assert tasks["task_id"][tasks["outcome"] != "retried"].is_unique


@pytest.mark.parametrize("budget", [0, 1])
def test_retry_budget_caps_attempts(budget: int) -> None:
    result = run_scenario(
        short_baseline(
            f"retry.budget={budget}",
            "chaos=[{at: 10m, kill: {zone: A, fraction: 1.0}},"
            " {at: 11m, kill: {zone: B, fraction: 1.0}}]",
            hours=0.4,
        )
    )
    assert result.tasks["attempt"].max() <= budget + 1
    assert_conserved(result)


RR = "policies.load_balancing=round_robin"


def test_circuit_breaker_stops_calls_to_dead_agents_before_detection() -> None:
    """Calls to crashed agents fail; after 3 in a row a breaker opens and the agent leaves the pool.

    All of zone A's CodeGen agents die and health checks are slow (a minute
    apart, so about three minutes to declare them). Round robin keeps offering
    them work — unlike least connections, which avoids an agent whose load
    never drops — so without breakers that work waits on dead agents until
    the checks catch up; with them it is placed elsewhere within seconds.
    """
    common = [
        "chaos=[{at: 20m, kill: {zone: A, category: CodeGen}}]",
        "health.interval=60s",
        "topology.specialist.queue_limit=2",
        RR,
    ]
    with_breaker = run_scenario(short_baseline(*common, hours=0.5))
    without = run_scenario(
        short_baseline(*common, "policies.circuit_breaker.enabled=false", hours=0.5)
    )
    assert with_breaker.counts["failed_calls"] >= 3
    breaker = _details(with_breaker.events, "breaker")
    opened = breaker[breaker["state"] == "open"]
    assert opened["subject"].str.startswith("A-CodeGen").all()
    assert len(opened) >= 1
    detected = _details(with_breaker.events, "agent_detected")["time_s"].min()
    assert opened["time_s"].min() < detected  # the breaker reacts before the health checks
    assert without.counts["failed_calls"] == 0
    assert (without.events["kind"] == "breaker").sum() == 0

    def waited_on_the_dead(result) -> int:
        return int((result.tasks["reason"] == "agent_failed").sum())

    assert waited_on_the_dead(with_breaker) < waited_on_the_dead(without)
    assert_conserved(with_breaker)
    assert_conserved(without)


def test_phi_accrual_detects_sooner_than_three_missed_checks() -> None:
    """Heartbeats every 10 s: phi reaches 8 about 10 s + 5.6 sd after the last one."""
    chaos = "chaos=[{at: 20m, kill: {zone: B, fraction: 0.5}}]"
    phi = run_scenario(short_baseline(chaos, "health.detector=phi_accrual", hours=0.5))
    spec = run_scenario(short_baseline(chaos, hours=0.5))
    phi_detect = _details(phi.events, "agent_detected")["detect_s"]
    spec_detect = _details(spec.events, "agent_detected")["detect_s"]
    assert len(phi_detect) == len(spec_detect) > 0
    # Last heartbeat within 10 s before the crash; suspicion 10 s + 5.612 x 0.5 s after it.
    assert phi_detect.between(10 + 5.6 * 0.5 - 10, 10 + 5.7 * 0.5).all()
    assert phi_detect.mean() < spec_detect.mean()
    assert_conserved(phi)


def test_a_zone_breaker_routes_around_a_silent_zone_before_detection() -> None:
    """Slow zone checks (a minute apart): the chief's failed calls open the zone's breaker first."""
    chaos = "chaos=[{at: 20m, zone_outage: D, duration: 15m}]"
    result = run_scenario(short_baseline(chaos, "health.interval=60s", hours=0.75))
    breaker = _details(result.events, "breaker")
    opened = breaker[(breaker["subject"] == "zone:D") & (breaker["state"] == "open")]
    assert len(opened) >= 1
    detected = _details(result.events, "zone_redistributed")["time_s"].iloc[0]
    assert opened["time_s"].iloc[0] < detected
    tasks = result.tasks
    home_d = tasks[
        (tasks["home_zone"] == "D") & (tasks["arrival_s"] > opened["time_s"].iloc[0] + 1)
    ]
    before = home_d[home_d["arrival_s"] < detected]
    assert len(before) > 0 and (before["zone"] != "D").all()  # served elsewhere already
    assert_conserved(result)


def test_team_bulkhead_caps_the_work_a_team_holds() -> None:
    """policies.team_limit=2: never more than two tasks in service across one team's agents."""
    result = run_scenario(short_baseline("policies.team_limit=2", hours=0.5))
    tasks = result.tasks[result.tasks["start_s"].notna()]
    teams = result.agents.set_index("agent")["team"]
    tasks = tasks.assign(team=tasks["agent"].astype(str).map(teams))
    worst = 0
    for _, team in tasks.groupby("team"):
        ends = team["end_s"].fillna(result.scenario.duration)
        points = sorted(
            [(t, 1) for t in team["start_s"]] + [(t, -1) for t in ends], key=lambda p: (p[0], p[1])
        )
        running = 0
        for _, step in points:
            running += step
            worst = max(worst, running)
    assert worst == 2  # reached, never exceeded
    unlimited = run_scenario(short_baseline(hours=0.5))
    assert result.counts["lost"] == 0
    # Capping teams costs waiting time against the same arrivals without a cap.
    waited = result.tasks["queue_s"].mean()
    assert waited > unlimited.tasks["queue_s"].mean()


@pytest.mark.parametrize("kind", ["consecutive", "phi_accrual"])
def test_both_shells_build_the_agent_detector_with_the_shared_factory(kind: str) -> None:
    """The simulator's agent detector is the factory's (live builds its own there too).

    Zone coordinators and team leads are judged by the spec's rule whatever
    ``health.detector`` says; agents by the scenario's detector, built by
    ``failure_detector`` with the same settings the live coordinator's gets.
    """
    from sim.model.engine import Simulation
    from sim.policies.health import ConsecutiveFailureDetector, PhiAccrualDetector
    from sim.world.policy_set import failure_detector

    scenario = short_baseline(f"health.detector={kind}", "health.threshold=4", hours=0.5)
    failover = Simulation(scenario).failover
    live = failure_detector(scenario.health)
    assert type(failover.agent_detector) is type(live)
    assert isinstance(failover.detector, ConsecutiveFailureDetector)
    assert failover.detector is not failover.agent_detector  # each keeps its own books
    assert failover.detector.threshold == 4
    if kind == "consecutive":
        agents = failover.agent_detector
        assert isinstance(agents, ConsecutiveFailureDetector)
        assert isinstance(live, ConsecutiveFailureDetector)
        assert (agents.interval_s, agents.threshold, agents.timeout_s) == (
            live.interval_s,
            live.threshold,
            live.timeout_s,
        )
    else:
        assert isinstance(failover.agent_detector, PhiAccrualDetector)
