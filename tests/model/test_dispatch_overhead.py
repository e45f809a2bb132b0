"""``coordination.dispatch_overhead``: each submitted task reaches its agent that much later.

Calibration fits it from a live run as live's spread of dispatch delays
(``sim.analysis.calibrate_dispatch``), so the model must charge one draw per
submission, on the way to the agent, and draw it from a stream of its own:
the arrivals and the work stay those of the same scenario without it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import SCENARIOS

from sim.model.engine import run_scenario
from sim.scenario.load import ScenarioError, load_scenario
from sim.world.dispatch_overhead import stalls_at_random
from sim.world.streams import Streams

#: The textbook M/M/c, small and quiet: no network, no coordinator queues, and an agent
#: free for almost every arrival, so a free task's arrival-to-start is the overhead alone.
QUIET_MMC = [
    "duration=3h",
    "warmup=0s",
    "topology.specialists=10",
    "workload.arrivals.rate_per_min=2",
    "workload.service.mean=60s",
]


def _tasks(*overhead: str) -> pd.DataFrame:
    scenario = load_scenario(SCENARIOS / "mmc_validation.yaml", [*QUIET_MMC, *overhead])
    return run_scenario(scenario).tasks


def _free_delays(tasks: pd.DataFrame) -> np.ndarray:
    free = tasks[(tasks["outcome"] == "completed") & (tasks["queue_s"] <= 0)]
    return (free["start_s"] - free["arrival_s"]).to_numpy(dtype=float)


def test_a_constant_overhead_delays_every_free_task_by_exactly_that() -> None:
    without = _free_delays(_tasks())
    constant = _free_delays(
        _tasks('coordination.dispatch_overhead={"dist": "deterministic", "mean": 0.75}')
    )
    assert len(without) > 250 and max(without) == 0.0
    assert len(constant) > 250
    assert constant.min() == pytest.approx(0.75) and constant.max() == pytest.approx(0.75)


def test_empirical_draws_are_the_samples_and_leave_arrivals_and_work_alone() -> None:
    """Every free task is delayed by its own draw alone: the zone places tasks in the order
    they were submitted, and the overhead comes after the placing, so a slow draw does not
    hold the tasks behind it (live's agents wake each on its own)."""
    samples = [0.1, 0.2, 1.5]
    plain = _tasks()
    drawn = _tasks(f'coordination.dispatch_overhead={{"dist": "empirical", "samples": {samples}}}')
    sent = drawn[drawn["attempt"] == 1].sort_values("arrival_s")
    placed = sent["dispatch_s"].to_numpy(dtype=float)
    assert (np.diff(placed) >= 0).all()  # placed in the order submitted
    free = sent[sent["queue_s"] <= 0]
    delays = (free["start_s"] - free["arrival_s"]).to_numpy(dtype=float)
    assert len(delays) > 250
    assert set(np.round(delays, 9)) == set(samples)  # each sample drawn, nothing else
    # Each sample about a third of the time: a binomial count, 4 standard deviations.
    for sample in samples:
        count = int(np.isclose(delays, sample).sum())
        assert abs(count - len(delays) / 3) <= 4 * np.sqrt(len(delays) * (1 / 3) * (2 / 3))
    # Common random numbers: the same arrivals and the same drawn work in both runs.
    first = ["task_id", "arrival_s", "work_s", "category"]
    by_task = [
        run[run["attempt"] == 1][first].sort_values("task_id").reset_index(drop=True)
        for run in (plain, drawn)
    ]
    pd.testing.assert_frame_equal(*by_task)


def test_a_slow_draw_does_not_hold_the_tasks_submitted_behind_it() -> None:
    """A task drawn 0.1 s that arrives less than 1.4 s after one drawn 1.5 s starts first:
    the overhead is charged after the zone placed both, in order, as live's agents each
    wake on their own. (Charged on the chief's ordered link, it waited behind it.)"""
    samples = [0.1, 1.5]
    scenario = load_scenario(
        SCENARIOS / "mmc_validation.yaml",
        [
            *QUIET_MMC,
            "duration=1h",
            "topology.specialists=100",
            "workload.arrivals.rate_per_min=30",
            f'coordination.dispatch_overhead={{"dist": "empirical", "samples": {samples}}}',
        ],
    )
    tasks = run_scenario(scenario).tasks
    free = tasks[(tasks["attempt"] == 1) & (tasks["queue_s"] <= 0)].sort_values("arrival_s")
    arrivals = free["arrival_s"].to_numpy(dtype=float)
    starts = free["start_s"].to_numpy(dtype=float)
    delays = starts - arrivals
    behind = np.isclose(delays[:-1], 1.5) & np.isclose(delays[1:], 0.1) & (np.diff(arrivals) < 1.4)
    assert behind.sum() > 30
    assert (starts[1:][behind] < starts[:-1][behind]).all()


def test_a_lognormal_overhead_has_its_mean() -> None:
    """Each free task's delay is one draw: their mean is within 4 standard errors of 0.5 s
    (the standard deviation is cv x mean)."""
    delays = _free_delays(
        _tasks('coordination.dispatch_overhead={"dist": "lognormal", "mean": 0.5, "cv": 1.0}')
    )
    assert len(delays) > 250 and len(set(delays.round(9))) > 250  # a draw per task
    assert abs(delays.mean() - 0.5) <= 4 * 0.5 / np.sqrt(len(delays))


def test_a_task_submitted_in_a_pause_waits_for_its_end_and_no_other_does() -> None:
    tasks = _tasks('coordination.dispatch_overhead={"pauses": [[3600, 4200], [7000, 7100]]}')
    free = tasks[(tasks["outcome"] == "completed") & (tasks["queue_s"] <= 0)]
    arrival = free["arrival_s"].to_numpy(dtype=float)
    delay = _free_delays(tasks)
    inside = ((arrival >= 3600) & (arrival < 4200)) | ((arrival >= 7000) & (arrival < 7100))
    assert inside.sum() > 10 and (~inside).sum() > 200
    ends = np.where(arrival < 5000, 4200.0, 7100.0)
    assert np.allclose(delay[inside], ends[inside] - arrival[inside])
    assert (delay[~inside] == 0.0).all()


def test_stalls_at_random_come_at_their_rate_and_hold_whoever_arrives_inside() -> None:
    """Six stalls an hour of 20 or 40 s over 3 h (the stream's own draws): a task arriving
    in one waits for its end, no other waits at all. The stalls drawn are those of
    ``stalls_at_random`` with the run's streams; their count is Poisson(18), within four
    standard deviations, and the share of free tasks held is the share of time stalled."""
    spec = '{"stalls": {"rate_per_hour": 6, "durations": [20, 40]}}'
    scenario = load_scenario(
        SCENARIOS / "mmc_validation.yaml",
        [*QUIET_MMC, f"coordination.dispatch_overhead={spec}"],
    )
    stalls = stalls_at_random(
        scenario.coordination.dispatch_overhead.stalls, Streams(scenario.seed, 0), 3 * 3600.0
    )
    assert abs(len(stalls) - 18) <= 4 * np.sqrt(18)
    assert {round(end - start) for start, end in stalls} <= {20, 40}
    tasks = run_scenario(scenario).tasks
    free = tasks[(tasks["outcome"] == "completed") & (tasks["queue_s"] <= 0)]
    arrival = free["arrival_s"].to_numpy(dtype=float)
    delay = _free_delays(tasks)
    held = np.zeros(len(arrival), dtype=bool)
    for start, end in stalls:
        inside = (arrival >= start) & (arrival < end)
        assert np.allclose(delay[inside], end - arrival[inside])
        held |= inside
    assert (delay[~held] == 0.0).all()
    share = sum(end - start for start, end in stalls) / (3 * 3600.0)
    n = len(arrival)
    assert abs(held.sum() - n * share) <= 4 * np.sqrt(n * share * (1 - share))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"dist": "empirical"}', "samples: expected observed overheads"),
        ('{"dist": "lognormal"}', "mean: expected a positive mean for lognormal"),
        ('{"dist": "uniform"}', "coordination.dispatch_overhead.dist"),
        ('{"pauses": [[60, 30]]}', "pauses[0]: expected a start before its end"),
        ('{"stalls": {"rate_per_hour": 2}}', "durations: expected observed stall lengths"),
        ('{"stalls": {"rate_per_hour": -1}}', "coordination.dispatch_overhead.stalls"),
    ],
)
def test_a_bad_overhead_is_named_by_its_path(value: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(
            SCENARIOS / "mmc_validation.yaml", [f"coordination.dispatch_overhead={value}"]
        )
    message = str(caught.value)
    assert expected in message and "coordination.dispatch_overhead" in message
    assert "\n" not in message
