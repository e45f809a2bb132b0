"""The scenario's attempt errors and deadlines, live: drawn as the simulator draws them.

Live had ignored ``errors`` and the chaos ``error_burst``: a scenario with a
fifth of its attempts erroring ran live with none, while its replay drew
them. Now the coordinator sends with each assignment the error probability,
the bursts that may cover the attempt's start, two uniform draws and the
deadline; the agent finishes the decision with the simulator's rules
(``probability_at``, ``attempt_fate``), knowing when it starts and its own
service time. Synthetic work honours the draws; a real handler only its
deadline.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import run_live, small, timing_slack
from test_coordinator_logic import EPOCH, Fleet, run, submit_job

from sim.analysis.task_pairs import pairing_keys
from sim.live.attempt_fate import (
    BURSTS_FIELD,
    DEADLINE_FIELD,
    FAULT_FIELD,
    TRANSFER_FIELD,
    attempt_limit,
)
from sim.live.transport import agent_consumer, agent_subject, tasks_stream
from sim.model.engine import run_scenario
from sim.policies.keyed_draws import task_key, transfer_jitter
from sim.policies.task_faults import Fault
from sim.replay import chaos_from_events, replay_scenario
from sim.scenario.schema import ChaosEvent, Scenario
from sim.world.policy_set import fault_seed
from sim.world.streams import Streams

BURST = (
    'chaos=[{"at": "100s", "duration": "60s", "error_burst": {"probability": 0.5, "zones": ["A"]}}]'
)


def test_synthetic_work_meets_its_fate_where_the_simulators_agent_would() -> None:
    task = {"work_s": 20.0, FAULT_FIELD: [0.3, 0.1, 0.25], DEADLINE_FIELD: 30.0}
    # Errors a quarter of the way through its service: work / speed * slowdown.
    assert attempt_limit(task, True, 2.0, 3.0, 0.0) == Fault("error", 0.25 * 20.0 / 2.0 * 3.0)
    # Drawn above the probability: it runs, unless its service passes the deadline.
    spared = {**task, FAULT_FIELD: [0.3, 0.5, 0.25]}
    assert attempt_limit(spared, True, 1.0, 1.0, 0.0) is None
    assert attempt_limit(spared, True, 1.0, 2.0, 0.0) == Fault("timeout", 30.0)
    # An error that would come after the deadline loses to the timeout.
    late = {**task, FAULT_FIELD: [0.3, 0.1, 0.9]}
    assert attempt_limit(late, True, 1.0, 2.0, 0.0) == Fault("timeout", 30.0)
    # A real handler brings its own errors: only the deadline cuts it off.
    assert attempt_limit(task, False, 1.0, 1.0, 0.0) == Fault("timeout", 30.0)
    bare = {"work_s": 20.0, FAULT_FIELD: [0.3, 0.1, 0.25]}
    assert attempt_limit(bare, False, 1.0, 1.0, 0.0) is None
    # Model calls' time is not known in advance: only the deadline holds.
    assert attempt_limit({**task, "llm": {}}, True, 1.0, 1.0, 0.0) == Fault("timeout", 30.0)


def test_a_burst_raises_the_odds_of_the_attempts_it_covers_at_their_start() -> None:
    """As the simulator's agent reads the bursts when it starts an attempt: the draw 0.4
    errs inside the window [100, 160) (probability 0.5), not before it or from its end on,
    wherever the attempt was assigned."""
    task = {"work_s": 20.0, FAULT_FIELD: [0.1, 0.4, 0.5], BURSTS_FIELD: [[100.0, 160.0, 0.5]]}
    fates = {at: attempt_limit(task, True, 1.0, 1.0, at) for at in (99.9, 100.0, 159.9, 160.0)}
    assert fates == {
        99.9: None,
        100.0: Fault("error", 10.0),
        159.9: Fault("error", 10.0),
        160.0: None,
    }


async def assigned(fleet: Fleet, agent: str) -> list[dict[str, Any]]:
    """The task messages waiting on *agent*'s subject, whole."""
    zone = fleet.zone[agent]
    follower = fleet.broker.follow(
        tasks_stream(zone, agent), agent_subject(zone, agent), agent_consumer(agent)
    )
    return [m.document() for m in await follower.read(50, 0.0)]


def test_each_assignment_carries_the_scenarios_error_draws_and_deadline() -> None:
    """The probability is the scenario's; zone A's assignments carry the burst (its
    timeline, as the simulator's chaos raises it) until it is over, and it raises the
    odds of the attempts it covers when they start, not when they were assigned
    (one assigned before the burst and started in it errs at its rate; one assigned in
    it and started after at the base rate). The deadline is ``errors.timeout``."""

    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1", "A")
        await fleet.beat("b1", "B")
        c = fleet.coordinator("errors.probability=0.1", "errors.timeout=30s", BURST)
        await c.take_over()
        carried, odds = [], []
        cases = [(0, "A", 105), (0, "A", 0), (110, "A", 165), (110, "A", 110), (120, "B", 130)]
        for n, (at, zone, start) in enumerate([*cases, (170, "A", 170)]):
            fleet.wall.t = EPOCH + at
            await fleet.submit(n, zone=zone)
            await c.pump()
            [doc] = await assigned(fleet, "a1" if zone == "A" else "b1")
            p, u_error, u_when = doc[FAULT_FIELD]
            assert p == 0.1 and 0.0 <= u_error < 1.0 and 0.0 <= u_when < 1.0
            assert doc[DEADLINE_FIELD] == 30.0
            carried.append(doc.get(BURSTS_FIELD))
            # A draw of 0.3 errs at the burst's 0.5, not at the base 0.1.
            fate = attempt_limit({**doc, FAULT_FIELD: [p, 0.3, 0.5]}, True, 1.0, 1.0, start)
            odds.append(0.5 if fate is not None and fate.reason == "error" else 0.1)
            for kind in ("start", "end"):
                await fleet.result(kind, n, "a1" if zone == "A" else "b1")
            await c.pump()
        window = [[100.0, 160.0, 0.5]]
        assert carried == [window, window, window, window, None, None]
        assert odds == [0.5, 0.1, 0.1, 0.5, 0.1, 0.1]

    run(body)


def test_a_scenario_without_errors_sends_nothing_of_them() -> None:
    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1", "A")
        c = fleet.coordinator()
        await c.take_over()
        await fleet.submit(0)
        await c.pump()
        [doc] = await assigned(fleet, "a1")
        assert FAULT_FIELD not in doc and DEADLINE_FIELD not in doc

    run(body)


def binomial_bound(n: int, p: float) -> float:
    """Four standard deviations of a binomial count: a fixed seed's draw stays inside."""
    return 4.0 * math.sqrt(n * p * (1.0 - p))


def test_live_attempts_error_and_time_out_as_the_scenario_says(tmp_path: Path) -> None:
    """A simulated fleet on a real broker: a quarter of the attempts error (part-way
    through, at a uniform point), a burst raises that in zone A, and attempts longer than
    the deadline are cut off at it; every failure is escalated and retried as in the
    simulator, and the replay reads the burst back from the event log."""
    scenario = small(
        "duration=4m",
        "topology.specialists=16",
        "workload.arrivals.rate_per_min=60",
        "workload.dags.rate_per_min=0",
        "errors.probability=0.25",
        "errors.timeout=20s",
        'chaos=[{"at": "90s", "duration": "60s", "error_burst": {"probability": 0.6}}]',
    )
    live = run_live(scenario, tmp_path, time_scale=40.0, agents_mode="simulated")
    tasks, events = live.result.tasks, live.result.events
    # Attempts that ran (a task failed for good has one more row, of its verdict).
    ended = tasks[tasks["outcome"].isin(["completed", "retried"])]
    jitter = timing_slack(live, 40.0)
    timed_out = ended[ended["reason"] == "timeout"]
    assert len(timed_out) >= 3  # exponential work of mean 10 s: e^-2 of attempts pass 20 s
    off = timed_out[(timed_out["service_s"] - 20.0).abs() >= jitter]
    assert off.empty, off.to_string()
    completed = ended[ended["outcome"] == "completed"]
    assert (completed["service_s"] < 20.0 + jitter).all()
    # Errors: outside the burst a quarter of the attempts that could error did; inside, 0.6.
    started = ended["start_s"]
    window = (started >= 90.0 + jitter) & (started < 150.0 - jitter)
    outside = ended[(started < 90.0 - jitter) | (started >= 150.0 + jitter)]
    inside = ended[window]
    for rows, p in ((outside, 0.25), (inside, 0.6)):
        errors = int((rows["reason"] == "error").sum())
        assert abs(errors - p * len(rows)) <= binomial_bound(len(rows), p), (errors, len(rows))
    erred = ended[ended["reason"] == "error"]
    points = (erred["service_s"] / erred["work_s"]).clip(upper=1.0)
    assert abs(float(points.mean()) - 0.5) <= 4.0 * math.sqrt(1 / 12 / len(points))
    # Every failed attempt was escalated: retried, or its task failed for good, once; work
    # longer than the deadline times out on every attempt, and its task fails for good.
    assert set(ended.loc[ended["outcome"] == "retried", "reason"]) == {"error", "timeout"}
    verdicts = tasks[tasks["outcome"] == "failed"]
    assert verdicts["task_id"].is_unique
    assert (verdicts["work_s"] > 20.0).sum() >= 1
    counts = live.summary["tasks"]
    assert counts["lost"] == 0 and counts["failed"] == len(verdicts)
    kinds = list(events["kind"])
    assert kinds.count("error_burst") == 1 and kinds.count("error_burst_end") == 1
    [replayed] = chaos_from_events(events)  # what a replay of the run plays again
    assert replayed.error_burst is not None and replayed.error_burst.probability == 0.6
    assert replayed.duration == 60.0 and abs(replayed.at - 90.0) < jitter
    check_the_replay_errs_on_the_same_attempts(scenario, tasks, [replayed], jitter)


def check_the_replay_errs_on_the_same_attempts(
    scenario: Scenario, tasks: pd.DataFrame, chaos: list[ChaosEvent], jitter: float
) -> None:
    """Each attempt's draws are keyed by its task and number in both shells, so an attempt
    made in both, under the base rate in both, meets the same fate in both: an error, a
    timeout or its end. That is every attempt started before the burst (later, at x40
    live's retries go out seconds after the replay's, and one may fall on the other side
    of the burst's edge). Before, each shell drew from its own stream in its own order,
    and a quarter of those attempts erred apart. How many attempts a task gets is the
    escalation's, and under load live's ladder can place a retry where the replay's did
    not: compared here is each attempt's fate, not the count."""
    replay = run_scenario(replay_scenario(scenario, chaos)).tasks
    edge = 90.0 - jitter

    def fates(run: pd.DataFrame) -> pd.Series:
        """Each attempt's end (its failure's reason, or "" for done), by (pairing key, number)."""
        ran = run[run["outcome"].isin(["completed", "retried"]) & (run["start_s"] < edge)]
        keys = ran["task_id"].astype(int).map(pairing_keys(run))
        index = pd.MultiIndex.from_arrays([keys, ran["attempt"].astype(int)])
        return pd.Series(ran["reason"].fillna("").astype(str).to_numpy(), index=index)

    live_fates, replay_fates = fates(tasks), fates(replay)
    both = live_fates.index.intersection(replay_fates.index)
    # Not vacuous: about a hundred attempts at this seed, a quarter of them erring.
    assert len(both) > 50 and (live_fates.loc[both] == "error").sum() >= 5
    differing = both[live_fates.loc[both].to_numpy() != replay_fates.loc[both].to_numpy()]
    assert differing.empty, list(differing)


@pytest.mark.parametrize("jitter_cv", [0.0, 0.3])
def test_a_dag_nodes_assignment_carries_its_inputs_transfer_from_other_agents(
    jitter_cv: float,
) -> None:
    """Node 0 ran on a3; nodes 1 (100 MB input) and 2 (1 MB) wait for their input's
    transfer from a3, drawn with the simulator's network, unless they run on a3 itself
    (nothing moves); node 0, with no input, carries none. With jitter, the factor is the
    simulator's keyed draw for the same node, attempt and input."""

    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3"):
            await fleet.beat(agent)
        c = fleet.coordinator("network.enabled=true", f"network.jitter_cv={jitter_cv}")
        await c.take_over()
        await fleet.submit(0, 1)
        await c.pump()
        await submit_job(fleet)
        await c.pump()
        [node0] = await assigned(fleet, "a3")
        assert node0["task_id"] == 10 and TRANSFER_FIELD not in node0
        for task, agent in ((0, "a1"), (1, "a2"), (10, "a3")):
            await fleet.result("start", task, agent)
            await fleet.result("end", task, agent)
            await c.pump()
        sent = {}
        for agent in ("a1", "a2", "a3"):
            for doc in await assigned(fleet, agent):
                sent[doc["task_id"]] = (agent, doc)
        assert {11, 12} <= set(sent)
        spec = c.scenario.network
        in_zone = (spec.direct_tcp.overhead_ms + spec.intra_region_rtt_ms / 2) / 1000.0
        for task_id, data_mb in ((11, 100.0), (12, 1.0)):
            agent, doc = sent[task_id]
            expected = in_zone + data_mb * 8.0 / spec.direct_tcp.bandwidth_mbps
            key = task_key(fault_seed(Streams(c.scenario.seed)), 0.0, doc["job_id"], doc["node"])
            sigma = math.sqrt(math.log1p(jitter_cv**2))
            expected *= transfer_jitter(key, doc["attempt"], 0, sigma)
            if agent == "a3":
                assert TRANSFER_FIELD not in doc
            else:
                assert doc[TRANSFER_FIELD] == pytest.approx(expected)

    run(body)
