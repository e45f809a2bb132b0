"""Submissions in: a task or a DAG job checked, booked, admitted and placed.

Scenario: a submission arrives on ``orch.submit``; anybody may publish one,
so it is validated first (a bad one is an event and, if its id reads, a
rejection reply). A task already booked is ignored; one compacted away gets
its old outcome again. A DAG job is planned (upward rank, critical path) and
its ready nodes go out; nodes a catch-up saw finish complete first. The
admission (tiers, tenants, shedding) may shed a task, which is then done.
Each task's one outcome is published on its reply subject (a service).
"""

from __future__ import annotations

from typing import Any

from sim.live.broker import BUNDLE, unbundle
from sim.live.coordinator.admission import LiveAdmission
from sim.live.coordinator.fleet_counts import FleetCounts
from sim.live.coordinator.outbox import Outgoing
from sim.live.coordinator.placement import Placement
from sim.live.coordinator.state import LiveJob
from sim.live.task import LiveTask, carried
from sim.live.task_message import InvalidMessage, Pools, rejection, reply_subject, validate
from sim.live.transport import dispatch_subject
from sim.metrics.collector import MetricsCollector
from sim.policies.dag import Dag, DagEdge, DagNode, DagProgress
from sim.scenario.schema import Scenario
from sim.world.dag_job import plan_job


class Submissions(Placement):
    """Submissions and replies (the base of ``Intake``)."""

    scenario: Scenario
    pools: Pools
    admission: LiveAdmission | None
    replies: bool
    accepting: bool
    zones: set[str]
    collector: MetricsCollector
    _early_ends: dict[int, dict[str, Any]]
    counts: FleetCounts

    async def on_submit(self, doc: dict[str, Any]) -> None:
        """A submission read from ``orch.submit`` (or by a catch-up): a task or a DAG job,
        or a client's batch of them (``task_message.submission_batch``), each on its own."""
        if doc.get("kind") == BUNDLE and isinstance(doc.get("records"), list):
            for submission in unbundle([doc]):
                await self._submit_one(submission)  # (a batch inside a batch is rejected)
            return
        await self._submit_one(doc)

    async def _submit_one(self, doc: dict[str, Any]) -> None:
        if not self.accepting:
            return
        try:
            validate(doc, self.pools)
        except InvalidMessage as exc:
            await self._reject(doc, str(exc))
            return
        if doc["kind"] == "task":
            await self._submit_task(doc)
        else:
            await self._submit_job(doc)

    async def _submit_task(self, doc: dict[str, Any]) -> None:
        """A single task: booked once, admitted (or shed), then placed."""
        books = self.books
        task = LiveTask(
            int(doc["task_id"]), doc["category"], doc["zone"], doc["arrival_s"], doc["work_s"]
        )
        task.carried = carried(doc)
        if task.task_id in books.tasks:
            return
        if task.task_id in books.forgotten:
            await self._reply_forgotten(task.task_id, -1, -1)
            return
        books.tasks[task.task_id] = task
        books.counters.submitted += 1
        task.dispatched = task.task_id in books.routed_before  # (its record is stored)
        if task.task_id in books.pending_done:
            await self._finished_before(task)
            return
        if await self._admit(doc, task):
            await self.dispatch(task)

    async def _submit_job(self, doc: dict[str, Any]) -> None:
        """A DAG job: planned, its nodes booked, its ready nodes placed."""
        books = self.books
        job_id = int(doc["job_id"])
        if job_id in books.jobs:
            return
        if job_id in books.forgotten_jobs:
            for n in doc["nodes"]:
                await self._reply_forgotten(int(n["task_id"]), job_id, int(n["node"]))
            return
        nodes = tuple(
            DagNode(int(n["node"]), n["category"], float(n["work_s"])) for n in doc["nodes"]
        )
        edges = tuple(DagEdge(int(a), int(b), float(mb)) for a, b, mb in doc["edges"])
        dag = Dag(doc.get("shape", "job"), nodes, edges)
        plan = plan_job(dag, self.scenario.network)
        progress = DagProgress(plan, dag)
        job = LiveJob(job_id, progress, {}, doc["arrival_s"])
        books.jobs[job_id] = job
        policy = self.scenario.policies.dag
        for n in doc["nodes"]:
            node = int(n["node"])
            task = LiveTask(
                int(n["task_id"]),
                n["category"],
                doc["zone"],
                doc["arrival_s"],
                float(n["work_s"]),
                job_id,
                node,
                # As the simulator releases a node: queue priority and the critical path.
                priority=plan.rank[node] if policy.order == "upward_rank" else 0.0,
                critical=policy.critical_to_fastest and node in plan.critical,
                carried=carried(n),
            )
            books.tasks[task.task_id] = task
            routed = books.routed_before.get(task.task_id)
            task.dispatched = routed is not None
            if routed is not None and routed >= 0 and progress.predecessors(node):
                task.arrival_s = routed  # released by its predecessors' ends: arrived then
            job.tasks[task.node] = task.task_id
            books.counters.submitted += 1
        # Nodes finished before a takeover complete in topological order, then the rest goes out.
        ready = progress.ready()
        while True:
            finished = [n for n in ready if job.tasks[n] in books.pending_done]
            if not finished:
                break
            for node in finished:
                await self._finished_before(books.tasks[job.tasks[node]])
                ready = [r for r in ready if r != node] + progress.complete(node)
        for node in ready:
            task = books.tasks[job.tasks[node]]
            if not task.dispatched and progress.predecessors(node):
                # Released by this takeover (its predecessor's end was not acted on): now,
                # as a release at run time; its wait (avg_response_time) starts here.
                task.arrival_s = self.time.now()
            await self.dispatch(task)

    async def _admit(self, doc: dict[str, Any], task: LiveTask) -> bool:
        """The admission's verdict on a submitted task: True, it goes on; False, it is shed.

        The verdict is recorded with the task's routing (``admission``); a
        takeover that read it back keeps it (``books.admissions``). A shed task
        is done at once and its client told (outcome ``shed``).
        """
        admission = self.admission
        if admission is None:
            return True
        verdict = self.books.admissions.pop(task.task_id, None)
        if verdict is None:
            # Tasks waiting for an agent: in the pools' queues and agents' local queues.
            verdict = admission.decide(doc, self.counts.waiting(), self.time.now())
            subject = dispatch_subject(task.home_zone)
            record = verdict.record(doc)
            await self._post(Outgoing(subject, record, f"adm.{task.task_id}", record=True))
        if verdict.admit:
            task.priority = admission.admitted(task.task_id, verdict)
            return True
        task.done = True
        self.books.counters.shed += 1
        await self._reply(task, "shed", {"reason": verdict.reason})
        return False

    async def _reject(self, doc: Any, error: str) -> None:
        """An invalid submission: an event, and a reply if its id can be read."""
        await self.event("submission_rejected", "", error=error)
        answer = rejection(doc, error)
        if answer is not None and self.replies:
            subject, reply = answer
            await self._post(Outgoing(subject, reply, f"r.{subject}"))

    async def _reply_forgotten(self, task_id: int, job_id: int, node: int) -> None:
        """A resubmitted id of work compacted away: its outcome again (all the books still hold).

        Its first reply is normally still in ``ORCH_REPLIES`` (kept as long as the id is
        remembered) and the client reads it there; this covers the reply that aged out first.
        """
        outcome = self.books.forgotten.get(task_id)
        if not self.replies or outcome is None:
            return
        subject = reply_subject("task", task_id)
        reply = {"kind": "task", "task_id": task_id, "job_id": job_id, "node": node}
        reply.update({"outcome": outcome, "forgotten": True})
        await self._post(Outgoing(subject, reply, f"r.{subject}"))

    async def _reply(self, task: LiveTask, outcome: str, end: dict[str, Any] | None) -> None:
        """The task's one outcome on its reply subject (deduplicated by its message id)."""
        if not self.replies:
            return
        reply: dict[str, Any] = {
            "kind": "task",
            "task_id": task.task_id,
            "job_id": task.job_id,
            "node": task.node,
            "outcome": outcome,
            "arrival_s": task.arrival_s,
        }
        if end is not None:
            for key in ("agent", "zone", "start_s", "end_s", "reason"):
                if key in end:
                    reply[key] = end[key]
        subject = reply_subject("task", task.task_id)
        await self._post(Outgoing(subject, reply, f"r.{subject}"))

    # ------------------------------------------------------------------ results

    def _count_finished(
        self,
        task: LiveTask,
        zone: str,
        outcome: str,
        start_s: float,
        end_s: float,
        caught_up: bool,
    ) -> None:
        """The metrics count a finished task, unless a takeover's catch-up read an end
        (*caught_up*) its predecessor's samples counted already (at or before its last)."""
        if zone not in self.zones:
            return
        if caught_up and end_s <= self.collector.since:
            return
        latency, wait = end_s - task.arrival_s, start_s - task.arrival_s
        failed = outcome != "completed"
        self.collector.task_finished(zone, latency, wait, failed=failed)

    async def _finished_before(self, task: LiveTask) -> None:
        """A task whose end the catch-up read first: done, counted once, not placed again.

        Its reply goes out again: the primary that saw the end may have died
        before replying, and the reply stream's message id (and the client's
        books) make a second copy harmless.
        """
        task.done = True
        ended = self.books.pending_done[task.task_id]
        if ended.outcome == "completed":
            self.books.counters.completed += 1
        else:
            self.books.counters.failed += 1
        self._count_finished(
            task, ended.zone, ended.outcome, ended.start_s, ended.end_s, ended.caught_up
        )
        await self._reply(task, ended.outcome, self._early_ends.pop(task.task_id, None))
