"""One task's reports folded into the rows the simulator would have written by the window's end.

Why a module of its own: this is the one subtle part of the live records —
which attempt counts, when a retried attempt ended, how long a task queued,
what was still in flight at the duration — and it reads one task at a time.
``records`` gathers the streams, hands each task here in id order, and
builds the tables from the ``TaskLog`` and the counts this fills (the
meanings are in ``records``'s docstring).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sim.live.task import attempt_failure
from sim.metrics.records import TaskLog

#: Columns of the ``drained`` table: work that ended after the window, one row per task.
DRAINED_COLUMNS = (
    "task_id",
    "job_id",
    "attempt",
    "agent",
    "zone",
    "outcome",
    "arrival_s",
    "start_s",
    "complete_s",
)


@dataclass
class Attempt:
    """A task attempt as TaskLog records it (the TaskAttempt protocol)."""

    id: int
    node: int
    attempt: int
    category: str
    home_zone: str
    zone: str
    agent: str
    critical: bool
    arrival: float
    dispatch: float
    start: float
    work: float
    transfer: float
    queued: float
    job: int

    @property
    def job_id(self) -> int:
        return self.job


@dataclass
class TaskReports:
    """The zones' dispatch records and results by task: routing, assignments, starts, ends."""

    routed: dict[int, tuple[float, str]] = field(default_factory=dict)
    assigned: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    starts: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    ends: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: The admission verdicts by task (tiers), the first one written per task.
    admissions: dict[int, dict[str, Any]] = field(default_factory=dict)


def sort_reports(results: Iterable[dict[str, Any]]) -> TaskReports:
    """The dispatch and result records, by task and attempt (the first admission and routing)."""
    books = TaskReports()
    for doc in results:
        task_id = int(doc["task_id"])
        kind = doc["kind"]
        if kind == "admission":
            books.admissions.setdefault(task_id, doc)
        elif kind == "dispatch":
            books.routed.setdefault(task_id, (float(doc["dispatch_s"]), str(doc["zone"])))
        elif kind == "assign":
            books.assigned.setdefault(task_id, {}).setdefault(int(doc["attempt"]), doc)
        elif kind == "start":
            books.starts.setdefault(task_id, {})[int(doc["attempt"])] = doc
        else:
            books.ends.setdefault(task_id, []).append(doc)
    return books


@dataclass
class TaskWindow:
    """What the window saw of one task: its routing, its attempts assigned and started, its ends.

    *last* is the attempt the window ends on: the final one if the task ended
    within it, else the highest assigned or started.
    """

    info: dict[str, Any]
    routed_s: float
    routed_zone: str
    failures: dict[int, dict[str, Any]]
    final: dict[str, Any] | None
    assigned: dict[int, dict[str, Any]]
    started: dict[int, dict[str, Any]]
    last: int


class TaskFolder:
    """Turns one task's reports into the rows the simulator would have recorded at *end_s*."""

    def __init__(
        self,
        end_s: float,
        slack_s: float,
        books: TaskReports,
        log: TaskLog,
        counts: dict[str, int],
    ) -> None:
        self.end_s, self.slack_s, self.books, self.log, self.counts = (
            end_s,
            slack_s,
            books,
            log,
            counts,
        )
        self.duplicates = 0
        self.unfinished = 0
        self.finished_at: dict[int, float] = {}
        self.drained: list[tuple[Any, ...]] = []

    def fold(self, task_id: int, info: dict[str, Any]) -> None:
        """Record task *task_id*'s attempts as the window saw them, and count its outcome."""
        self.counts["submitted"] += 1
        admission = self.books.admissions.get(task_id)
        if admission is not None and admission["admission"] == "shed":
            self.counts["shed"] += 1  # shed at the door: no attempt, as in the simulator
            return
        seen = self._window(task_id, info)
        numbers = sorted(n for n in {*seen.assigned, *seen.started} if n <= seen.last)
        if not numbers:  # never assigned by the end: in its pool's queue all along
            self._never_assigned(task_id, seen)
            return
        queued, ready, after_start = 0.0, seen.routed_s, False
        for number in numbers:
            doc, assign = seen.started.get(number), seen.assigned.get(number)
            if after_start:
                ready = _assign_time(assign)  # placed again after a failed attempt
            if doc is not None:
                queued += self._queued(ready, assign, float(doc["start_s"]))
            elif number == seen.last:
                queued += self._waited(self.end_s - ready, ready)  # still waiting at the end
            after_start = doc is not None
            attempt = _attempt(task_id, seen.info, number, doc or assign, seen.routed_zone, queued)
            attempt.dispatch = _assign_time(assign)
            self._record(task_id, seen, number, attempt, queued)

    def _window(self, task_id: int, info: dict[str, Any]) -> TaskWindow:
        """The task's reports clipped to the window; ends after it counted as drained."""
        end_s, books = self.end_s, self.books
        routed_s, routed_zone = books.routed.get(task_id, (-1.0, str(info["zone"])))
        if info.get("released") and routed_s > end_s:
            routed_s = -1.0  # released while the run drained: not yet at the window's end
        if info.get("released") and routed_s >= 0:
            # A DAG node arrives when its predecessors' ends released it (the simulator's
            # _release): the coordinator routed it then.
            info = {**info, "arrival_s": routed_s}
        reports = sorted(books.ends.get(task_id, []), key=lambda d: float(d["end_s"]))
        # An agent's failed attempt is not the task's end (the escalation placed it again, or
        # ended it with a final report of its own): a retried row, as the simulator logs it.
        failures = {
            int(d["attempt"]): d
            for d in reports
            if attempt_failure(d) and float(d["end_s"]) <= end_s
        }
        ends = [d for d in reports if not attempt_failure(d)]
        self.duplicates += max(0, len(ends) - 1)
        first_end = ends[0] if ends else None
        if first_end is None:
            self.unfinished += 1
        elif float(first_end["end_s"]) > end_s:
            self.drained.append(_drained_row(task_id, info, first_end))
        final = first_end if first_end is not None and float(first_end["end_s"]) <= end_s else None
        # What the window saw: assignments and starts by its end.
        assigned = {
            n: d
            for n, d in books.assigned.get(task_id, {}).items()
            if float(d["assign_s"]) <= end_s
        }
        started = {
            n: d for n, d in books.starts.get(task_id, {}).items() if float(d["start_s"]) <= end_s
        }
        for number, report in failures.items():
            started.setdefault(number, report)  # (an end report carries its start)
        if final is not None:
            last = int(final["attempt"])
            if final.get("final") and last - 1 in failures:
                # The coordinator's verdict after a failed attempt: the simulator logs it
                # under that attempt's number (live sends it under the next, a message id
                # of its own), so the task made as many attempts in both tables.
                last -= 1
            else:
                started[last] = final
        else:
            last = max([*assigned, *started], default=1)
        return TaskWindow(info, routed_s, routed_zone, failures, final, assigned, started, last)

    def _never_assigned(self, task_id: int, seen: TaskWindow) -> None:
        """A task no agent was given by the end: in flight, waiting in its pool's queue."""
        self.counts["in_flight"] += 1
        if seen.routed_s < 0 and int(seen.info["job_id"]) >= 0:
            return  # a DAG node not yet released: counted, no row (as the simulator)
        waited = self._waited(self.end_s - seen.routed_s, seen.routed_s)
        attempt = _attempt(task_id, seen.info, 1, None, seen.routed_zone, waited)
        self.log.record(attempt, "in_flight", math.nan, math.nan, 0.0)

    def _record(
        self, task_id: int, seen: TaskWindow, number: int, attempt: Attempt, queued: float
    ) -> None:
        """Attempt *number*'s row: retried, the task's outcome, or still in flight."""
        failure = seen.failures.get(number)
        if failure is not None:
            self.counts["retried"] += 1
            end = float(failure["end_s"])
            reason = str(failure.get("reason") or "failed")
            self.log.record(attempt, "retried", end, end, end - attempt.start, reason)
            if number == seen.last and seen.final is not None:  # then the verdict on it
                self._final(task_id, seen.final, attempt)
            elif number == seen.last:  # waiting out a backoff, or placed and not assigned yet
                self.counts["in_flight"] += 1
                waiting = queued + self._waited(self.end_s - end, end)
                pending = _attempt(task_id, seen.info, number + 1, None, seen.routed_zone, waiting)
                self.log.record(pending, "in_flight", math.nan, math.nan, 0.0)
            return
        final = seen.final
        if number < seen.last:
            if seen.started.get(number) is None:
                return  # assigned, never started, placed again: no attempt of its own
            self.counts["retried"] += 1
            again = self._reassigned(number, seen.assigned, seen.started)
            self.log.record(attempt, "retried", again, again, again - attempt.start)
        elif final is not None:
            self._final(task_id, final, attempt)
        else:
            self.counts["in_flight"] += 1
            served = self.end_s - attempt.start if attempt.start >= 0 else 0.0
            self.log.record(attempt, "in_flight", math.nan, math.nan, served)

    def _final(self, task_id: int, final: dict[str, Any], attempt: Attempt) -> None:
        """The task's end: its last attempt's, or the coordinator's failure for good."""
        end = float(final["end_s"])
        outcome = str(final["outcome"])
        self.counts[outcome] += 1
        self.finished_at[task_id] = end
        reason = str(final.get("reason", ""))
        self.log.record(attempt, outcome, end, end, end - attempt.start, reason)

    def _queued(self, ready: float, assign: dict[str, Any] | None, start: float) -> float:
        """Waiting for an agent between *ready* and the attempt's *start*.

        The coordinator marks each assignment with whether its agent had a slot
        free (``slot_free``). If it had, only the wait before the assignment
        (the pool's queue) is queueing; the way to the agent after it is
        dispatch, however long the agent's process took to start — live had
        counted a free task dispatched in 0.6 s as queued, so calibration left
        the slow dispatches out of the spread it fits and the replay's quiet
        wait tail came out short. If not, the task waited at its agent too.
        Records without the mark: the whole span beyond the transport's slack.
        """
        if assign is None or "slot_free" not in assign:
            return self._waited(start - ready, ready)
        assigned = float(assign["assign_s"])
        pooled = self._waited(assigned - ready, ready)
        return pooled if assign["slot_free"] else pooled + max(0.0, start - assigned)

    def _waited(self, span_s: float, since: float) -> float:
        """Queueing in *span_s* from *since*: none if unknown or within the transport's slack."""
        return span_s if since >= 0 and span_s > self.slack_s else 0.0

    @staticmethod
    def _reassigned(
        number: int,
        assigned: dict[int, dict[str, Any]],
        started: dict[int, dict[str, Any]],
    ) -> float:
        """When a failed attempt *number* was given up: the task's next assignment (or start)."""
        later = [float(d["assign_s"]) for n, d in assigned.items() if n > number]
        later += [float(d["start_s"]) for n, d in started.items() if n > number]
        return min(later)


def _attempt(
    task_id: int,
    info: dict[str, Any],
    number: int,
    doc: dict[str, Any] | None,
    zone: str,
    queued: float,
) -> Attempt:
    """Attempt *number* of a task; *doc* is its start (or else its assignment) report."""
    start = float(doc["start_s"]) if doc is not None and "start_s" in doc else -1.0
    return Attempt(
        id=task_id,
        node=int(info["node"]),
        attempt=number,
        category=str(info["category"]),
        home_zone=str(info["zone"]),
        zone=str(doc["zone"]) if doc is not None else zone,
        agent=str(doc["agent"]) if doc is not None else "",
        critical=False,
        arrival=float(info["arrival_s"]),
        dispatch=-1.0,
        start=start,
        work=float(info["work_s"]),
        transfer=float(doc.get("transfer_s", 0.0)) if doc is not None else 0.0,
        queued=queued,
        job=int(info["job_id"]),
    )


def _assign_time(doc: dict[str, Any] | None) -> float:
    return float(doc["assign_s"]) if doc is not None else -1.0


def _drained_row(task_id: int, info: dict[str, Any], end: dict[str, Any]) -> tuple[Any, ...]:
    return (
        task_id,
        int(info["job_id"]),
        int(end["attempt"]),
        str(end["agent"]),
        str(end["zone"]),
        str(end["outcome"]),
        float(info["arrival_s"]),
        float(end["start_s"]),
        float(end["end_s"]),
    )
