"""Both shells err on the same attempts: each attempt's two draws are keyed by the task.

The live coordinator sends the draws with each assignment and the agent
decides (``sim.live.coordinator.attempt_faults``); the simulator's agent
decides as its attempt starts (``sim.model.escalation``). Both ask
``keyed_draws.task_key`` and ``attempt_draws`` — the task's arrival, job and
node, the attempt's number — so the order the draws are taken in cannot move
an error from one attempt to another. Here every attempt the simulator
started is held against the fields live would have sent for it. Before, the
two drew from streams of their own in their own order: at the spec's fleet
under an error burst, 14 % of the tasks made a different number of attempts
live and replayed.
"""

from __future__ import annotations

import pandas as pd
from support import SCENARIOS

from sim.live.attempt_fate import BURSTS_FIELD, FAULT_FIELD
from sim.live.coordinator.attempt_faults import FaultDraws
from sim.live.task import LiveTask
from sim.model.engine import run_scenario
from sim.policies.task_faults import probability_at
from sim.scenario.load import load_scenario
from sim.world.policy_set import fault_seed
from sim.world.streams import Streams

#: The error burst's scenario, short: 1 % errors, then 25 % for 20 minutes from 1h30m.
OVERRIDES = ["duration=2h", "warmup=0s", "workload.arrivals.rate_per_min=60"]


def test_every_attempt_errs_exactly_where_lives_draws_say() -> None:
    scenario = load_scenario(SCENARIOS / "error_burst.yaml", OVERRIDES)
    tasks = run_scenario(scenario).tasks
    live = FaultDraws(scenario, fault_seed(Streams(scenario.seed)))
    started = tasks[(tasks["start_s"] >= 0) & (tasks["reason"].fillna("") != "timeout")]
    ended = started[started["outcome"].isin(["completed", "retried", "failed"])]
    erred = ended["reason"].fillna("") == "error"
    assert len(ended) > 5_000 and erred.sum() > 300  # the burst's 25 % among them
    agree = []
    for row, err in zip(ended.itertuples(index=False), erred, strict=True):
        task = LiveTask(
            int(row.task_id),
            str(row.category),
            str(row.home_zone),
            float(row.arrival_s),
            float(row.work_s),
            job_id=int(row.job_id),
            node=int(row.node),
        )
        fields = live.fields(task, int(row.attempt), str(row.zone), float(row.start_s))
        base, u_error, _ = fields[FAULT_FIELD]
        p = probability_at(base, fields.get(BURSTS_FIELD, []), float(row.start_s))
        agree.append((u_error < p) == err)
    assert pd.Series(agree).all(), f"{(~pd.Series(agree)).sum()} attempts decided apart"
