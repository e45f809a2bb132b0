"""TaskLog.frame builds its numeric columns in one pass; they must be the rows' own values.

Covers: every integer and float column of ``tasks.parquet`` against the
plain per-row reading, over rows with "not yet" (-1) times, DAG and
independent tasks, and values that need all 64 bits.
"""

from __future__ import annotations

import random

import numpy as np

from sim.metrics.records import TASK_COLUMNS, TaskLog


class _Attempt:
    """A recorded task with every field a TaskLog reads."""

    def __init__(self, rng: random.Random, task_id: int) -> None:
        self.id = task_id
        self.job_id = rng.choice((-1, rng.randrange(1, 2**40)))
        self.node = -1 if self.job_id < 0 else rng.randrange(50)
        self.attempt = rng.randint(1, 4)
        self.category = rng.choice(("CodeGen", "Review"))
        self.home_zone = rng.choice(("A", "B"))
        self.zone = rng.choice(("A", "B"))
        self.agent = f"agent-{rng.randrange(9)}"
        self.critical = rng.random() < 0.2
        self.arrival = rng.uniform(0, 1e5)
        self.dispatch = rng.choice((-1.0, self.arrival + rng.random()))
        self.start = rng.choice((-1.0, self.arrival + 2 * rng.random()))
        self.work = rng.expovariate(1 / 60)
        self.transfer = rng.choice((0.0, rng.random()))
        self.queued = rng.random() * 1e-3


def test_numeric_columns_are_the_rows_values() -> None:
    rng = random.Random(5)
    log = TaskLog()
    for task_id in range(400):
        end = rng.uniform(0, 2e5)
        outcome = rng.choice(("completed", "failed", "retried"))
        log.record(_Attempt(rng, task_id), outcome, end, end + rng.random(), rng.random())
    frame = log.frame(3, warmup_s=10.0)
    rows = log._rows
    numeric = [
        name
        for name in TASK_COLUMNS
        if frame[name].dtype in (np.int64, np.float64) and name not in ("dispatch_s", "start_s")
    ]
    assert len(numeric) == 4 + 7  # task_id, job_id, node, attempt; seven times and durations
    for name in numeric:
        index = TASK_COLUMNS.index(name)
        assert frame[name].tolist() == [row[index] for row in rows], name
    assert frame["job_id"].max() >= 2**32  # the 64-bit range is used
    for name in ("dispatch_s", "start_s"):
        index = TASK_COLUMNS.index(name)
        expected = [row[index] if row[index] >= 0 else None for row in rows]
        got = [None if np.isnan(v) else v for v in frame[name].tolist()]
        assert got == expected, name
    assert (frame["replication"] == 3).all()
