"""The SimPy shell end to end: conservation, determinism, common random numbers, latency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import short_baseline

from sim.model.engine import Simulation, run_scenario
from sim.runner import run


@pytest.fixture(scope="module")
def baseline_run():
    return run_scenario(short_baseline())


def test_every_task_is_accounted_for(baseline_run) -> None:
    counts = baseline_run.counts
    tasks = baseline_run.tasks
    assert counts["lost"] == 0
    assert (
        counts["submitted"]
        == counts["completed"] + counts["failed"] + counts["shed"] + counts["in_flight"]
    )
    # The records agree with the counters: one completed row per completed task, one row
    # per task still in the system, and DAG nodes never released are the difference.
    assert (tasks["outcome"] == "completed").sum() == counts["completed"]
    assert tasks["task_id"].is_unique
    unreleased = counts["in_flight"] - (tasks["outcome"] == "in_flight").sum()
    jobs_open = baseline_run.jobs  # completed jobs only
    assert unreleased >= 0
    assert counts["completed"] > 8000 and len(jobs_open) > 30


def test_task_times_are_ordered(baseline_run) -> None:
    done = baseline_run.tasks[baseline_run.tasks["outcome"] == "completed"]
    assert (done["dispatch_s"] >= done["arrival_s"]).all()
    assert (done["start_s"] >= done["dispatch_s"]).all()
    assert (done["end_s"] > done["start_s"]).all()
    assert (done["complete_s"] > done["end_s"]).all()  # the report travels over gRPC
    assert (done["queue_s"] <= done["wait_s"] + 1e-9).all()
    speeds = baseline_run.agents.set_index("agent")["speed"]
    service = done["work_s"] / done["agent"].astype(str).map(speeds)
    np.testing.assert_allclose(done["service_s"], service, rtol=1e-9)


def test_dag_successors_start_after_their_predecessors_finish(baseline_run) -> None:
    from sim.world.dag_source import DagSource  # noqa: F401 - the run used it

    tasks = baseline_run.tasks
    dag_tasks = tasks[(tasks["job_id"] >= 0) & (tasks["outcome"] == "completed")]
    assert len(dag_tasks) > 100
    # A node is released only when its predecessor's completion report reached the chief.
    for _, job in dag_tasks.groupby("job_id"):
        first_release = job["arrival_s"].min()
        assert (job["arrival_s"] >= first_release).all()
    completed_jobs = baseline_run.jobs
    assert (completed_jobs["makespan_s"] >= completed_jobs["cp_bound_s"] - 1e-6).all()


def test_same_seed_same_event_log_bit_for_bit() -> None:
    a = run_scenario(short_baseline(hours=0.5))
    b = run_scenario(short_baseline(hours=0.5))
    assert a.events_sha256 == b.events_sha256
    pd.testing.assert_frame_equal(a.tasks, b.tasks)
    c = run_scenario(short_baseline("seed=43", hours=0.5))
    assert c.events_sha256 != a.events_sha256


def _arrivals(result) -> pd.DataFrame:
    tasks = result.tasks
    independent = tasks[tasks["job_id"] < 0]
    return (
        independent[["task_id", "arrival_s", "category", "home_zone", "work_s"]]
        .sort_values("arrival_s")
        .reset_index(drop=True)
    )


def test_changing_the_balancer_keeps_the_arrival_stream() -> None:
    """Common random numbers: a policy change must not reshuffle arrivals or demands."""
    a = run_scenario(short_baseline("policies.load_balancing=round_robin", hours=0.5))
    b = run_scenario(short_baseline("policies.load_balancing=power_of_two", hours=0.5))
    first, second = _arrivals(a), _arrivals(b)
    pd.testing.assert_frame_equal(
        first.drop(columns="task_id"), second.drop(columns="task_id"), check_categorical=False
    )
    assert a.events_sha256 != b.events_sha256  # the policies did act differently


@pytest.mark.parametrize(
    "strategy", ["round_robin", "least_connections", "weighted", "affinity", "power_of_two"]
)
def test_every_strategy_runs_and_conserves(strategy: str) -> None:
    result = run_scenario(
        short_baseline(
            f"policies.load_balancing={strategy}",
            "workload.affinity_keys=50",
            "topology.specialist.queue_limit=2",
            hours=0.5,
        )
    )
    assert result.counts["lost"] == 0
    done = result.tasks[result.tasks["outcome"] == "completed"]
    wrong = done[done["agent"].astype(str).str.split("-").str[1] != done["category"].astype(str)]
    assert wrong.empty  # no task ever ran on an agent of another category


def test_latency_and_coordinators_off_mean_dispatch_is_instant() -> None:
    result = run_scenario(
        short_baseline("network.enabled=false", "coordination.capacity=false", hours=0.5)
    )
    done = result.tasks[result.tasks["outcome"] == "completed"]
    assert (done["complete_s"] == done["end_s"]).all()
    independent = done[done["job_id"] < 0]
    unqueued = independent[independent["queue_s"] == 0]
    assert len(unqueued) > 0.9 * len(independent)
    assert (unqueued["dispatch_s"] == unqueued["arrival_s"]).all()
    assert (unqueued["start_s"] == unqueued["arrival_s"]).all()
    queued = independent[independent["queue_s"] > 0]
    np.testing.assert_allclose(
        queued["start_s"] - queued["arrival_s"], queued["queue_s"], atol=1e-9
    )


def test_latency_follows_the_rtt_matrix() -> None:
    """Zone D (Tokyo) is farther from the chief in Virginia than zone A: its dispatch is slower."""
    result = run_scenario(short_baseline("policies.spill_across_zones=false", hours=0.5))
    done = result.tasks[(result.tasks["outcome"] == "completed") & (result.tasks["queue_s"] == 0)]
    done = done[done["job_id"] < 0]
    delay = (done["start_s"] - done["arrival_s"]).groupby(done["zone"].astype(str)).median()
    # One way chief->zone is half the RTT plus overheads; D is 145 ms RTT away, A is local.
    assert delay["D"] - delay["A"] == pytest.approx(0.1453 / 2, rel=0.15)
    assert delay["A"] < 0.01


def test_message_ttl_expiry_resends_then_fails_for_good() -> None:
    """With a TTL shorter than the Tokyo hop, every TASK_ASSIGN to zone D expires.

    The chief sends it again up to its resend limit, then the task fails for
    good with its reason; a failed DAG node takes its descendants with it.
    Nothing is lost and nothing is dropped silently.
    """
    sim = Simulation(
        short_baseline(
            "network.message_ttl=0.05", "network.jitter_cv=0", "network.resend_limit=2", hours=0.25
        )
    )
    result = sim.run()
    counts = result.counts
    assert counts["lost"] == 0
    tasks = result.tasks
    failed = tasks[tasks["outcome"] == "failed"]
    assert counts["failed"] == len(failed) > 0
    expired = failed[failed["reason"] == "ttl_expired"]
    assert set(expired["home_zone"].astype(str)) == {"D"}
    assert (expired["attempt"] == 3).all()
    assert counts["retried"] == 2 * len(expired)
    events = result.events
    assert set(events.loc[events["kind"] == "message_expired", "subject"]) == {"D-coord"}
    downstream = failed[failed["reason"] == "upstream_failed"]
    assert set(downstream["job_id"]) <= set(expired["job_id"])
    assert (tasks.loc[tasks["outcome"] == "completed", "home_zone"].astype(str) != "D").all()


def test_replications_carry_confidence_intervals() -> None:
    outcome = run(short_baseline(hours=0.5), replications=3, workers=2)
    summary = outcome.summary
    assert summary["replications"] == 3
    lo, hi = summary["ci95"]["latency_s"]["p99"]
    assert lo <= summary["latency_s"]["p99"] <= hi and lo < hi
    reps = summary["per_replication"]
    assert len({r["events_sha256"] for r in reps}) == 3
    # Replication 0 of R is exactly the single run with the same seed.
    single = run_scenario(short_baseline(hours=0.5))
    assert reps[0]["events_sha256"] == single.events_sha256
