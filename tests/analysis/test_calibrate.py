"""``orchestra calibrate``: the fits on hand-made tables, and bad input in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.analysis.calibrate import (
    Fit,
    dispatch_delay,
    mean_and_count,
    overlay,
    service_factor,
    spawn_delay,
    start_gap_s,
    startup_gaps,
    write_overlay,
)
from sim.analysis.calibrate_calls import call_overhead
from sim.analysis.calibrate_dispatch import (
    Stalls,
    forecast_overlay,
    free_delays,
    live_stalls,
    overhead_spread,
)
from sim.analysis.calibrate_handoff import handoff_gaps
from sim.analysis.calibrate_takeover import election_timeout, takeover_gaps
from sim.cli import main
from sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_spawn_delay_pairs_each_request_with_the_same_agents_join() -> None:
    events = pd.DataFrame(
        {
            "time_s": [10.0, 12.0, 25.0, 40.0, 90.0],
            "kind": ["agent_requested", "agent_requested", "agent_joined", "agent_joined", "x"],
            "subject": ["a", "b", "b", "a", "a"],
            "detail": ["{}"] * 5,
        }
    )
    assert spawn_delay(events) == (pytest.approx((30.0 + 13.0) / 2), 2)
    assert math.isnan(spawn_delay(events[events["kind"] != "agent_requested"])[0])


def test_paced_starts_are_fitted_from_their_turns_and_the_pace_goes_in_the_overlay(
    tmp_path: Path,
) -> None:
    """Live started a burst 2 s apart: each start-up is measured from its turn, not its request.

    Three agents asked for at 100 s, one at 120 s: their turns are 100, 102,
    104 and 120 s; they joined 5, 6, 5 and 5 s after them. Measured from the
    requests, the burst's start-ups would be 5, 8 and 9 s, and the replay,
    which takes the same turns (``scaling.spawn_gap``), would pay the waits twice.
    """
    events = pd.DataFrame(
        {
            "time_s": [100.0, 100.0, 100.0, 105.0, 108.0, 109.0, 120.0, 125.0],
            "kind": ["agent_requested"] * 3
            + ["agent_joined"] * 3
            + ["agent_requested"]
            + ["agent_joined"],
            "subject": ["a", "b", "c", "a", "b", "c", "d", "d"],
            "detail": ["{}"] * 8,
        }
    )
    assert startup_gaps(events) == [5.0, 8.0, 9.0, 5.0]
    assert startup_gaps(events, 2.0) == [5.0, 6.0, 5.0, 5.0]
    assert start_gap_s({"live": {"spawn_gap_s": 2.0}}) == 2.0
    assert start_gap_s({"live": {}}) == 0.0  # a run recorded before live said its pace
    recorded = ROOT / "scenarios" / "baseline_200.yaml"
    scenario = load_scenario(recorded)
    paced = Fit(5.25, 4, 0.30, 0.05, 100, 1.0, 100, (5.0, 6.0, 5.0, 5.0), start_gap_s=2.0)
    out = tmp_path / "out"
    out.mkdir()
    made = overlay(recorded, out, scenario, paced)
    assert made["document"]["scaling"]["spawn_gap"] == 2.0
    write_overlay(out / "calibrated.yaml", made["document"], made["notes"])
    assert load_scenario(out / "calibrated.yaml").scaling.spawn_gap == 2.0


def test_the_overhead_spread_added_to_the_replays_delays_gives_lives() -> None:
    """Live = the replay's own delays + a long-tailed overhead: the fitted spread, drawn
    independently on top of the replay's delays, has live's quantiles back.

    Each quantile is held to its binomial band: live's sample quantile at q is known to
    within the sample quantiles at q +- 4 sqrt(q (1 - q) / n) (the rank's standard error).
    """
    rng = np.random.default_rng(11)
    n = 4_000
    own = rng.uniform(0.01, 0.09, n)  # the model's network: zones near and far
    live = rng.uniform(0.01, 0.09, n) + 0.04 + rng.lognormal(math.log(0.05), 1.2, n)
    spread = np.array(overhead_spread(live, own))
    assert len(spread) == 100 and spread.min() >= 0 and list(spread) == sorted(spread)
    replayed = rng.choice(own, 200_000) + rng.choice(spread, 200_000)
    for q in (0.25, 0.5, 0.9, 0.99):
        band = 4 * math.sqrt(q * (1 - q) / n)
        low, high = np.quantile(live, [max(q - band, 0.0), min(q + band, 1.0)])
        assert low <= np.quantile(replayed, q) <= high, (q, low, high)
    # The run's median task, at another level of the free tasks, is matched exactly.
    level = 0.625
    shifted = np.array(overhead_spread(live, own, level))
    replayed = rng.choice(own, 200_000) + rng.choice(shifted, 200_000)
    band = 4 * math.sqrt(level * (1 - level) / n)
    low, high = np.quantile(live, [level - band, level + band])
    assert low <= np.quantile(replayed, level) <= high
    assert overhead_spread(live, own[:0]) == () == overhead_spread(live[:0], own)
    # Fewer free tasks than points: one point per task.
    assert len(overhead_spread(live[:40], own)) == 40


def test_dispatch_delay_is_taken_where_the_median_task_sits() -> None:
    """Eight free tasks (delays 1..8) and two that queued: the median task is the 5/8 quantile."""
    free = pd.DataFrame(
        {
            "outcome": "completed",
            "attempt": 1,
            "queue_s": 0.0,
            "arrival_s": 0.0,
            "start_s": [float(d) for d in range(1, 9)],
        }
    )
    queued = free.head(2).assign(queue_s=50.0, start_s=60.0)
    retried = free.head(1).assign(attempt=2, start_s=99.0)  # later attempts do not count
    delay, count = dispatch_delay(pd.concat([free, queued, retried], ignore_index=True))
    assert count == 8
    assert delay == pytest.approx(pd.Series(range(1, 9), dtype=float).quantile(0.5 / 0.8))
    assert math.isnan(dispatch_delay(queued)[0])  # nobody found an agent free: nothing to fit


def test_service_factor_is_observed_service_over_work_at_the_agents_speed() -> None:
    tasks = pd.DataFrame(
        {
            "outcome": ["completed", "completed", "in_flight"],
            "agent": ["fast", "slow", "slow"],
            "work_s": [10.0, 10.0, 10.0],
            "service_s": [5.5, 22.0, 3.0],
        }
    )
    agents = pd.DataFrame({"agent": ["fast", "slow"], "speed": [2.0, 0.5]})
    factor, count = service_factor(tasks, agents)
    assert count == 2 and factor == pytest.approx((5.5 + 22.0) / (5.0 + 20.0))
    # A category served as model calls takes as long as its calls: not an overhead.
    tasks["category"] = ["Code", "Agentic", "Agentic"]
    assert service_factor(tasks, agents, by_calls=frozenset({"Agentic"})) == (
        pytest.approx(5.5 / 5.0),
        1,
    )
    assert math.isnan(service_factor(tasks, agents, by_calls=frozenset({"Code", "Agentic"}))[0])


def test_a_chaos_slowdown_is_the_models_and_not_fitted_as_an_overhead() -> None:
    """Attempts started on a gray agent inside its ``slow`` window are expected to take the
    factor times as long: the replay plays the same chaos (it is not a service overhead)."""
    tasks = pd.DataFrame(
        {
            "outcome": ["completed"] * 4,
            "agent": ["a1", "a1", "a1", "a2"],
            "start_s": [50.0, 100.0, 250.0, 150.0],
            "work_s": [10.0, 10.0, 10.0, 10.0],
            "service_s": [10.0, 30.0, 10.0, 10.0],  # a1's attempt inside the window: 3x
        }
    )
    agents = pd.DataFrame({"agent": ["a1", "a2"], "speed": [1.0, 1.0]})
    slow = {"at": 100.0, "duration": 120.0, "slow": {"agents": ["a1"], "factor": 3.0}}
    events = pd.DataFrame(
        {"kind": ["chaos"], "subject": ["slow"], "detail": [json.dumps({"event": slow})]}
    )
    assert service_factor(tasks, agents, events) == (pytest.approx(1.0), 4)
    assert service_factor(tasks, agents)[0] == pytest.approx(60.0 / 40.0)  # as fitted before


def test_overlay_extends_the_recording_and_sets_only_what_was_fitted(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "baseline_200.yaml")
    fitted = Fit(12.0, 3, 0.30, 0.05, 100, 1.02, 100, handoff_live_s=0.02, handoff_sim_s=0.02)
    made = overlay(tmp_path / "live" / "scenario.yaml", tmp_path / "out", scenario, fitted)
    document = made["document"]
    assert document["extends"] == "../live/scenario.yaml"
    assert document["scaling"] == {"spawn_delay": 12.0}
    # No spread fitted (a hand-made Fit): live's typical overhead, the same for every task.
    drawn = document["coordination"]["dispatch_overhead"]
    assert drawn == {"dist": "deterministic", "mean": pytest.approx(0.25)}
    assert "topology" not in document  # the chiefs' WAL time is the model's own
    mean = scenario.workload.service.mean * 1.02
    assert document["workload"]["service"]["mean"] == pytest.approx(mean)
    assert made["notes"] == []
    quiet = overlay(
        tmp_path / "s.yaml", tmp_path, scenario, Fit(math.nan, 0, 0.1, 0.2, 5, 1.001, 9)
    )
    assert set(quiet["document"]) == {"extends", "name"}  # nothing to apply: notes say why
    assert len(quiet["notes"]) == 3
    spread = Fit(12.0, 3, 0.30, 0.05, 100, 1.0, 100, dispatch_spread_s=(0.0, 0.1, 0.9))
    made = overlay(tmp_path / "s.yaml", tmp_path, scenario, spread)
    assert made["document"]["coordination"] == {
        "dispatch_overhead": {"dist": "empirical", "samples": [0.0, 0.1, 0.9]}
    }
    loaded = tmp_path / "calibrated.yaml"
    write_overlay(loaded, made["document"], made["notes"])
    (tmp_path / "s.yaml").write_text((ROOT / "scenarios" / "baseline_200.yaml").read_text())
    assert load_scenario(loaded).coordination.dispatch_overhead.samples == [0.0, 0.1, 0.9]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing", "not a directory"),
        (lambda d: d, "summary.json: file not found"),
        (lambda d: _simulation_dir(d), "live: expected a live run's summary"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, expected: str
) -> None:
    directory = make(tmp_path)  # type: ignore[operator]
    assert main(["calibrate", str(directory), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err


def _simulation_dir(directory: Path) -> Path:
    """A directory with every file a live run writes, but a simulation's summary."""
    for name in ("tasks", "events", "agents", "metrics"):
        pd.DataFrame({"x": [1]}).to_parquet(directory / f"{name}.parquet")
    (directory / "scenario.yaml").write_text("{}\n")
    (directory / "summary.json").write_text(json.dumps({"scenario": "x"}))
    return directory


def test_a_spread_of_start_ups_is_fitted_as_their_shape_and_the_overlay_loads(
    tmp_path: Path,
) -> None:
    """Live's burst joined over a minute: the replay draws its start-ups from the very same."""
    recorded = ROOT / "scenarios" / "baseline_200.yaml"
    scenario = load_scenario(recorded)
    gaps = (2.0, 14.5, 30.25, 61.0)
    fitted = Fit(sum(gaps) / 4, 4, 0.30, 0.05, 100, 1.0, 100, gaps)
    out = tmp_path / "out"
    out.mkdir()
    made = overlay(recorded, out, scenario, fitted)
    assert made["document"]["scaling"] == {
        "spawn_delay": 26.9375,
        "spawn_delay_dist": {"dist": "sequence", "samples": [2.0, 14.5, 30.25, 61.0]},
    }
    write_overlay(out / "calibrated.yaml", made["document"], made["notes"])
    scaling = load_scenario(out / "calibrated.yaml").scaling
    assert scaling.spawn_delay == 26.9375 and scaling.spawn_delay_dist.samples == list(gaps)
    # One start-up, or all alike: nothing to draw, the mean says it all.
    alike = Fit(5.0, 2, 0.30, 0.05, 100, 1.0, 100, (5.0, 5.0))
    assert overlay(recorded, out, scenario, alike)["document"]["scaling"] == {"spawn_delay": 5.0}


def test_each_takeover_is_charged_to_the_chiefs_chaos_that_ended_its_primary() -> None:
    """A follower's crash moves no lease, nor does a zone coordinator's: the takeovers
    that follow a partition and a one-way cut of the leader are theirs (live plays both
    by fencing the primary), each charged once."""
    chaos = ["coordinator_crash", "coordinator_crash", "partition", "one_way_partition"]
    details = [
        '{"event": {"coordinator_crash": "follower"}}',
        '{"event": {"coordinator_crash": "B-coord"}}',
        '{"event": {"partition": {"groups": [["chief-1", "B"]]}}}',
        '{"event": {"one_way_partition": {"chief": "leader"}}}',
    ]
    events = pd.DataFrame(
        {
            "kind": [
                "coordinator_primary",
                *(["chaos"] * 3),
                "coordinator_primary",
                "chaos",
                "coordinator_primary",
            ],
            "subject": ["c1", *chaos[:3], "c2", chaos[3], "c3"],
            "time_s": [0.0, 60.0, 90.0, 180.0, 192.5, 300.0, 313.0],
            "detail": ["{}", *details[:3], "{}", details[3], "{}"],
        }
    )
    assert takeover_gaps(events) == [pytest.approx(12.5), pytest.approx(13.0)]
    # A takeover that no chaos ending a primary preceded is not chaos's doing.
    crash_only = events[events["subject"] != "partition"]
    assert takeover_gaps(crash_only) == [pytest.approx(13.0)]


def test_a_coordinator_takeover_is_fitted_as_the_chiefs_election_timeout(tmp_path: Path) -> None:
    """Live's standby takes the lease seconds after the primary crashed; the spec's Raft
    group elects in a fraction of one. The replay is leaderless as long as live was: the
    first of the followers to time out wins, on average at the takeover."""
    events = pd.DataFrame(
        {
            "kind": ["coordinator_primary", "chaos", "coordinator_primary", "chaos"],
            "subject": ["c1", "coordinator_crash", "c2", "coordinator_crash"],
            "time_s": [0.0, 180.0, 191.4, 400.0],  # the second crash: nobody took over
            "detail": ["{}"] * 4,
        }
    )
    assert takeover_gaps(events) == [pytest.approx(11.4)]
    # It dispatches again once it has rebuilt its books from the streams: what arrived while
    # nobody led goes out over a second as it catches up (the median stands for it).
    tasks = pd.DataFrame(
        {
            "arrival_s": [178.0, 181.0, 185.0, 190.0, 197.0, 199.0],
            "dispatch_s": [179.0, 195.6, 196.0, 196.9, 197.1, math.nan],
        }
    )
    assert takeover_gaps(events, tasks) == [pytest.approx(16.0)]
    # No backlog: the first dispatch after the takeover.
    quiet = tasks[~tasks["arrival_s"].between(180.0, 191.4)]
    assert takeover_gaps(events, quiet) == [pytest.approx(17.1)]
    scenario = load_scenario(ROOT / "scenarios" / "baseline_200.yaml")
    low, high = election_timeout(11.4, scenario)
    chiefs = scenario.topology.control_plane.chiefs
    assert low + (high - low) / chiefs == pytest.approx(11.4) and high > low
    fitted = Fit(math.nan, 0, 0.1, 0.1, 5, 1.0, 9, (), 11.4, 1)
    made = overlay(tmp_path / "s.yaml", tmp_path, scenario, fitted)
    assert made["document"]["topology"]["control_plane"]["election_timeout"] == [low, high]
    write_overlay(tmp_path / "c.yaml", made["document"], made["notes"])
    (tmp_path / "s.yaml").write_text((ROOT / "scenarios" / "baseline_200.yaml").read_text())
    assert load_scenario(tmp_path / "c.yaml").topology.control_plane.election_timeout == (low, high)


def test_a_hand_off_is_an_end_to_the_next_start_of_work_that_was_waiting() -> None:
    tasks = pd.DataFrame(
        {
            "agent": ["a", "a", "a", "b", "b", "c", "c"],
            "outcome": ["completed"] * 3 + ["retried", "completed", "completed", "completed"],
            "arrival_s": [0.0, 5.0, 30.0, 0.0, 1.0, 0.0, 2.0],
            "queue_s": [0.0, 5.3, 0.0, 0.0, 9.0, 0.0, 8.2],
            "start_s": [0.0, 10.3, 30.0, 0.0, 12.0, 0.0, 10.2],
            "end_s": [10.0, 20.0, 40.0, 10.0, 20.0, 10.0, 20.0],
        }
    )
    # a: 10.3 after an end at 10 (it waited since 5); 30 arrived after the slot was free.
    # b: the previous attempt failed (a restart, not a hand-off). c: 0.2 after its end.
    assert handoff_gaps(tasks).tolist() == pytest.approx([0.3, 0.2])
    assert mean_and_count(handoff_gaps(tasks).tolist()) == (pytest.approx(0.25), 2)
    assert math.isnan(mean_and_count(handoff_gaps(tasks.iloc[:0]).tolist())[0])
    # c's agent was killed idle and came back in between: not a hand-off. a's events are
    # outside its gap, and another agent's event is not a's.
    events = pd.DataFrame(
        {
            "kind": ["agent_failed", "agent_restarted", "agent_joined", "agent_failed", "scale"],
            "subject": ["c", "c", "a", "b", "a"],
            "time_s": [10.05, 10.1, 0.0, 10.1, 10.1],
        }
    )
    assert handoff_gaps(tasks, events).tolist() == pytest.approx([0.3])


def test_the_hand_off_overhead_goes_in_the_overlay_and_loads(tmp_path: Path) -> None:
    recorded = ROOT / "scenarios" / "baseline_200.yaml"
    scenario = load_scenario(recorded)
    fitted = Fit(math.nan, 0, 0.1, 0.1, 5, 1.0, 9, handoff_live_s=0.3, handoff_sim_s=0.05)
    assert fitted.handoff_overhead_s == pytest.approx(0.25)
    out = tmp_path / "out"
    out.mkdir()
    made = overlay(recorded, out, scenario, fitted)
    assert made["document"]["coordination"] == {"handoff_overhead": 0.25}
    write_overlay(out / "calibrated.yaml", made["document"], made["notes"])
    assert load_scenario(out / "calibrated.yaml").coordination.handoff_overhead == 0.25
    # Live handing off faster than the model is no overhead: nothing applied.
    faster = Fit(math.nan, 0, 0.1, 0.1, 5, 1.0, 9, handoff_live_s=0.01, handoff_sim_s=0.05)
    assert "coordination" not in overlay(recorded, out, scenario, faster)["document"]


def _attempts(services: list[float], calls: list[int], throttled: list[int]) -> tuple[Any, Any]:
    """A run's tasks and llm tables: independent Code tasks, one first attempt each."""
    n = len(services)
    tasks = pd.DataFrame(
        {
            "task_id": range(1, n + 1),
            "attempt": [1] * n,
            "outcome": ["completed"] * n,
            "job_id": [-1] * n,
            "node": [-1] * n,
            "category": ["Code"] * n,
            "arrival_s": [float(i) for i in range(n)],
            "service_s": services,
        }
    )
    llm = pd.DataFrame(
        {
            "task_id": range(1, n + 1),
            "attempt": [1] * n,
            "outcome": ["completed"] * n,
            "calls": calls,
            "throttled": throttled,
        }
    )
    return tasks, llm


def test_a_calls_overhead_is_lives_extra_service_per_call_of_the_same_tasks() -> None:
    live = _attempts([10.2, 20.4, 30.0, 5.0], [2, 4, 3, 1], [0, 0, 1, 0])
    replay = _attempts([10.0, 20.0, 29.0, 4.0], [2, 4, 3, 2], [0, 0, 0, 0])
    # Tasks 1 and 2 count: 0.6 s over 6 calls. Task 3 was throttled live (the provider's
    # backoff, not a call's cost); task 4 made different calls in the two.
    per_call, calls = call_overhead(live[0], live[1], replay[0], replay[1])
    assert calls == 6 and per_call == pytest.approx(0.1)
    assert call_overhead(live[0], None, replay[0], replay[1]) == (
        pytest.approx(math.nan, nan_ok=True),
        0,
    )


def test_the_call_overhead_raises_every_models_ttft_in_the_overlay(tmp_path: Path) -> None:
    recorded = ROOT / "scenarios" / "llm_rate_limits.yaml"
    scenario = load_scenario(recorded)
    fitted = Fit(math.nan, 0, 0.1, 0.1, 5, math.nan, 0, call_overhead_s=0.1, call_samples=40)
    out = tmp_path / "out"
    out.mkdir()
    made = overlay(recorded, out, scenario, fitted)
    assert scenario.llm is not None
    assert made["document"]["llm"] == {
        "models": {name: {"ttft": model.ttft + 0.1} for name, model in scenario.llm.models.items()}
    }
    write_overlay(out / "calibrated.yaml", made["document"], made["notes"])
    calibrated = load_scenario(out / "calibrated.yaml").llm
    assert calibrated is not None
    assert calibrated.models["frontier"].ttft == pytest.approx(
        scenario.llm.models["frontier"].ttft + 0.1
    )
    assert calibrated.models["frontier"].provider == scenario.llm.models["frontier"].provider


def test_a_stall_of_lives_host_is_left_out_of_the_cost_per_call() -> None:
    """Twenty attempts paid about 0.1 s a call; one was caught in a 10 s stall of live's
    host. The stall is not a call's cost: left out, it no longer multiplies the fit."""
    rng = np.random.default_rng(3)
    extra = [*(0.1 + rng.uniform(-0.01, 0.01, 20)).tolist(), 5.0]
    replay = _attempts([10.0] * 21, [2] * 21, [0] * 21)
    live = _attempts([10.0 + 2 * e for e in extra], [2] * 21, [0] * 21)
    per_call, calls = call_overhead(live[0], live[1], replay[0], replay[1])
    assert calls == 40 and per_call == pytest.approx(float(np.mean(extra[:20])))


def _free_tasks(arrivals: list[float], lags: list[float]) -> pd.DataFrame:
    """First attempts that found an agent free: dispatched *lag* after arrival, started 0.01 s
    later."""
    arrival = np.asarray(arrivals)
    dispatch = arrival + np.asarray(lags)
    return pd.DataFrame(
        {
            "outcome": "completed",
            "attempt": 1,
            "queue_s": 0.0,
            "arrival_s": arrival,
            "dispatch_s": dispatch,
            "start_s": dispatch + 0.01,
        }
    )


def test_lives_stalls_are_found_where_late_tasks_were_dispatched_together() -> None:
    rng = np.random.default_rng(5)
    arrivals = [2.0 * i for i in range(60)]
    lags = list(0.1 + rng.uniform(-0.02, 0.02, 60))
    # Tasks arriving at 50, 52 and 54 all went out at 60.0: a stall. The one at 90 went out
    # 3 s late on its own: a stall in which only it arrived.
    for i in (25, 26, 27):
        lags[i] = 60.0 - arrivals[i]
    lags[45] = 3.0
    tasks = _free_tasks(arrivals, lags)
    stalls = live_stalls(tasks)
    typical = float(np.median(lags))
    assert len(stalls.pauses) == 2
    assert stalls.pauses[0] == (pytest.approx(50.0), pytest.approx(60.0 - typical, abs=1e-6))
    assert stalls.pauses[1] == (pytest.approx(90.0), pytest.approx(93.0 - typical, abs=1e-6))
    assert stalls.tasks == frozenset({25, 26, 27, 45})
    assert len(free_delays(tasks, stalls)) == 56 and free_delays(tasks, stalls).max() < 0.2
    clean = _free_tasks(arrivals, list(0.1 + rng.uniform(-0.02, 0.02, 60)))
    assert live_stalls(clean) == Stalls()
    assert live_stalls(tasks.head(19)) == Stalls()  # too few to tell a stall from the spread


def test_the_forecast_draws_lives_stalls_at_their_rate_where_the_replay_plays_them(
    tmp_path: Path,
) -> None:
    """calibrated.yaml replays live's two stalls at their times; forecast.yaml, for other
    runs, drops those times and draws stalls at live's rate (two in a 10-minute run: 12 an
    hour), each one of live's lengths."""
    recorded = ROOT / "scenarios" / "baseline_200.yaml"
    pauses = ((100.0, 104.0), (300.0, 310.5))
    calibrated = {
        "extends": str(recorded),
        "name": "x-calibrated",
        "coordination": {"dispatch_overhead": {"pauses": [list(p) for p in pauses]}},
    }
    write_overlay(tmp_path / "calibrated.yaml", calibrated, [])
    made = forecast_overlay("x", pauses, 600.0)
    write_overlay(tmp_path / "forecast.yaml", made["document"], made["notes"])
    replay = load_scenario(tmp_path / "calibrated.yaml").coordination.dispatch_overhead
    forecast = load_scenario(tmp_path / "forecast.yaml").coordination.dispatch_overhead
    assert replay.pauses == list(pauses) and replay.stalls.rate_per_hour == 0
    assert forecast.pauses == []
    assert forecast.stalls.rate_per_hour == pytest.approx(12.0)
    assert forecast.stalls.durations == [4.0, 10.5]
    assert "2 stalls" in made["notes"][0]
    # No stall in live: the forecast is the replay's fit, nothing more.
    quiet = forecast_overlay("x", (), 600.0)
    assert quiet["document"] == {"extends": "calibrated.yaml", "name": "x-forecast"}
