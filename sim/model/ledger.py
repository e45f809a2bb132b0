"""The run's books: every task submitted and not yet finished, and what became of the rest.

Scenario: a task enters the ledger when it reaches the chief and leaves it
when it completes or fails for good; a DAG node waiting for its
predecessors, a message on its way and a retry in flight are counted where
they are. At the end of the run the engine checks conservation against
these books: submitted = completed + failed for good + shed + in flight.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import simpy

from sim.metrics.collector import MetricsCollector
from sim.metrics.records import TaskLog
from sim.model.task import Task
from sim.world.dag_job import DagJob
from sim.world.workload import FIRST_ID


@dataclass(slots=True)
class JobRecord:
    """One DAG job that finished: its shape, its makespan and the bounds to judge it by."""

    job_id: int
    shape: str
    nodes: int
    arrival_s: float
    complete_s: float
    cp_bound_s: float
    work_s: float


class Ledger:
    """The conservation ledger and the run's counts (one per run)."""

    def __init__(
        self, env: simpy.Environment, task_log: TaskLog, collector: MetricsCollector
    ) -> None:
        self.env = env
        self.task_log = task_log
        self.collector = collector
        self._ids = itertools.count(FIRST_ID)
        #: Every task submitted and not yet finished, by id: the conservation ledger.
        self.live: dict[int, Task] = {}
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.retried = 0
        self.expired = 0
        #: TASK_ASSIGN messages sent again after a loss (chaos message loss).
        self.resent = 0
        #: Messages carrying a task (assignments, failures, escalations), not yet delivered.
        self.in_transit = 0
        #: DAG nodes whose job has arrived but whose predecessors have not all finished.
        self.blocked = 0
        #: Attempts that ended in an error or a timeout.
        self.attempt_errors = 0
        #: Calls to dead agents that failed (with circuit breakers on).
        self.call_failures = 0
        #: Completions per category, kept only for a live display (count_categories).
        self.completed_by_category: dict[str, int] = {}
        self.count_categories = False
        self.jobs: list[JobRecord] = []
        #: A DAG node failed for good (its successors can never run).
        self.on_job_node_failed: Callable[[DagJob, int], None] | None = None
        #: A planned DAG node failed for good before it started (``StagedDags.dropped``).
        self.on_planned_dropped: Callable[[Task], None] | None = None

    def new_task_id(self) -> int:
        return next(self._ids)

    def complete(self, task: Task, zone: str, now: float, complete: float, service: float) -> None:
        """The task is done: its row, out of the ledger, into the collector's window."""
        self.task_log.record(task, "completed", now, complete, service)
        del self.live[task.id]
        self.completed += 1
        if self.count_categories:
            by_category = self.completed_by_category
            by_category[task.category] = by_category.get(task.category, 0) + 1
        self.collector.task_finished(zone, complete - task.arrival, task.start - task.arrival)

    def fail(self, task: Task, reason: str, *, attempt_counted: bool = False) -> None:
        """The task fails for good: recorded with its reason, never silently dropped.

        *attempt_counted*: its last attempt's failure is already in the error
        rate (an error or timeout), so the collector does not count it twice.
        """
        now = self.env.now
        job = task.job
        if task.planned is not None:
            assert self.on_planned_dropped is not None
            self.on_planned_dropped(task)
        self.task_log.record(task, "failed", now, now, 0.0, reason)
        del self.live[task.id]
        self.failed += 1
        self.collector.task_finished(
            task.zone, now - task.arrival, failed=True, attempt_counted=attempt_counted
        )
        if job is not None and self.on_job_node_failed is not None:
            self.on_job_node_failed(job, task.node)
