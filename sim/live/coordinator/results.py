"""Results back: starts, ends and failed attempts folded into the books.

Scenario: results come back on ``orch.result.<zone>``: a start moves the
attempt in flight, an end frees the slot (which pulls the next queued task),
counts a completion once per task id and releases DAG successors; a failed
attempt goes to the escalation (retry after a backoff, a move, or the end).
During a catch-up the same records rebuild the books of a dead primary:
which attempt of which task was where, and which ended before their
submission was read.
"""

from __future__ import annotations

import math
from typing import Any

from sim.live.broker import BUNDLE
from sim.live.coordinator.admission import ADMISSION, Verdict
from sim.live.coordinator.escalation import Escalation
from sim.live.coordinator.state import EarlyEnd, LiveJob
from sim.live.coordinator.submissions import Submissions
from sim.live.subjects import START_UNREPORTED
from sim.live.task import LiveTask, attempt_failure
from sim.policies.dag_locality import largest_input
from sim.world.network import mean_transfer_s


class Results(Submissions):
    """Results and retries (the base of ``Intake``)."""

    escalation: Escalation

    async def on_result(self, doc: dict[str, Any]) -> None:
        books = self.books
        kind = doc["kind"]
        if kind == BUNDLE:  # the records of one batch in one message (``outbox``)
            for record in doc["records"]:
                await self.on_result(record)
            return
        task_id = int(doc["task_id"])
        task = books.tasks.get(task_id)
        if kind == ADMISSION:
            if task is None:  # a takeover reads the verdicts before the submissions
                books.admissions[task_id] = Verdict.from_record(doc)
            return
        if kind == "dispatch":
            if task is not None:
                task.dispatched = True
            elif books.catching_up:
                books.routed_before[task_id] = float(doc.get("dispatch_s", -1.0))
            return
        if kind == "assign":
            if books.catching_up:
                self._recover(task_id, str(doc["agent"]), int(doc["attempt"]))
                books.changed(str(doc["agent"]), float(doc.get("assign_s", -math.inf)))
            return  # live, this coordinator booked it when it sent it
        key = (task_id, int(doc["attempt"]))
        if kind == "start" or doc.get(START_UNREPORTED):
            await self._started(task, key, doc)  # (an unreported start rides on its end)
            if kind == "start":
                return
        books.in_flight.pop(key, None)
        books.changed(str(doc["agent"]), float(doc["end_s"]))
        books.counters.busy_s += float(doc["end_s"]) - float(doc["start_s"])
        if not books.catching_up:
            await self.send_all(self.dispatcher.ended(task_id, doc["agent"]))
        if task is None:  # finished before this coordinator saw its submission (catch-up)
            if attempt_failure(doc):
                # Not the task's end: the escalation placed it again (a later assignment
                # names where), or the primary died first and it is placed anew.
                known = books.recovered.get(task_id)
                if known is not None and known[1] <= key[1]:
                    del books.recovered[task_id]
                return
            if task_id in books.forgotten:  # or long ago, and compacted: it ended twice
                books.counters.duplicates += 1
                return
            if task_id in books.pending_done:
                books.counters.duplicates += 1  # it ended twice: counted once
            else:
                books.pending_done[task_id] = EarlyEnd(
                    str(doc["outcome"]),
                    str(doc["zone"]),
                    float(doc["start_s"]),
                    float(doc["end_s"]),
                    books.catching_up,
                )
                if self.replies:
                    self._early_ends[task_id] = doc
            books.recovered.pop(task_id, None)
            return
        await self._finished(task, doc)

    async def _started(
        self, task: LiveTask | None, key: tuple[int, int], doc: dict[str, Any]
    ) -> None:
        """An attempt started (its start record, or an end that stands for its start too)."""
        books = self.books
        books.in_flight[key] = (doc["agent"], doc["zone"], float(doc["start_s"]))
        if books.catching_up:
            self._recover(key[0], str(doc["agent"]), key[1])
        if task is None:
            return
        task.attempts = max(task.attempts, key[1] + 1)
        if not task.done:
            self.dispatcher.started(task, doc["agent"])
            if self.dispatcher.reopened:  # moved off another team's books
                await self.send_all(self.dispatcher.wake_reopened())
        # Every attempt's start counts its wait from the task's arrival, as the simulator's
        # slots count it (a task placed anew after its agent died waited all that time);
        # a late start of an attempt already placed anew counts for nothing.
        if key[1] == task.attempts - 1:
            task.started = True
            if key[1] > task.counted_start:
                task.counted_start = key[1]
                books.counters.started += 1
                books.counters.wait_sum += float(doc["start_s"]) - task.arrival_s

    async def _attempt_failed(self, task: LiveTask, doc: dict[str, Any]) -> None:
        """An agent's attempt failed: the escalation's call (retry, move, or the end)."""
        number = int(doc["attempt"])
        if number < task.attempts - 1 or number in task.failed_attempts:
            self.books.counters.duplicates += 1  # stale (placed again since) or reported twice
            return
        task.failed_attempts.add(number)
        task.started = False  # waiting again, as the simulator's retry forgets the start
        agent_id, zone = str(doc["agent"]), str(doc["zone"])
        if zone in self.zones:
            self.collector.attempt_failed(zone)
        reason = str(doc.get("reason") or "failed")
        verdict = await self.escalation.failed(task, agent_id, zone, reason, self.time.now())
        if verdict.fail_reason is not None:
            await self.fail_for_good(task, agent_id, verdict.fail_reason)
        elif verdict.chief_zone is not None:
            await self.route(task, verdict.chief_zone)
        elif verdict.assignment is not None:
            await self.send(verdict.assignment)

    async def release_due(self) -> None:
        """Place the retries whose backoff has passed.

        Called when the first backoff ends (``deadlines``): when no retry is
        due (or each due one stayed queued, ``None``), it returns without
        opening a batch. ``due`` is the
        pure core's call, so taking it before the batch changes nothing.
        """
        placed = [a for a in self.escalation.due(self.time.now()) if a is not None]
        if placed:
            await self.send_all(placed)

    def _near(self, job: LiveJob, node: int) -> tuple[str, float] | None:
        """The agent holding the node's largest input, and the expected time to move it."""
        largest = largest_input(job.progress.predecessors(node), job.ran_on.get)
        if largest is None:
            return None
        return largest[0], mean_transfer_s(self.scenario.network, largest[1])

    def _recover(self, task_id: int, agent_id: str, number: int) -> None:
        """A catch-up saw attempt *number* of the task on *agent_id*: the latest one wins."""
        known = self.books.recovered.get(task_id)
        if known is None or known[1] <= number:
            self.books.recovered[task_id] = (agent_id, number)

    async def _finished(self, task: LiveTask, doc: dict[str, Any]) -> None:
        books = self.books
        if task.done:
            books.counters.duplicates += 1  # a redelivered task that had finished: not again
            return
        if attempt_failure(doc):
            await self._attempt_failed(task, doc)
            return
        task.done = True
        await self._reply(task, str(doc["outcome"]), doc)
        end_s = float(doc["end_s"])
        if doc["outcome"] == "completed":
            books.counters.completed += 1
            books.latencies.append(end_s - task.arrival_s)
        else:
            books.counters.failed += 1
        zone, outcome = str(doc["zone"]), str(doc["outcome"])
        self._count_finished(task, zone, outcome, float(doc["start_s"]), end_s, books.catching_up)
        if task.job_id >= 0 and task.job_id in books.jobs:
            job = books.jobs[task.job_id]
            job.ran_on[task.node] = str(doc["agent"])
            locality = self.scenario.policies.dag.data_locality
            for node in job.progress.complete(task.node):
                released = books.tasks[job.tasks[node]]
                # A node arrives when it is released, as in the simulator: its wait (and the
                # autoscaler's avg_response_time) starts then, not at the job's arrival.
                released.arrival_s = self.time.now()
                if locality:
                    released.near = self._near(job, node)
                await self.dispatch(released)
