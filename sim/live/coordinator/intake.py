"""Intake: submissions in, tasks out to agents, results back — every call to the dispatcher.

Scenario: a submission arrives on ``orch.submit``. A task is routed to a
zone (``ZoneRouter``) and to an agent by the scenario's load balancer, or
waits in its pool's queue; a DAG job's ready nodes go out in upward-rank
order (``DagProgress``). The chosen agent's work-queue subject (on its zone's
stream) carries the task. Results come back on ``orch.result.<zone>``: a start
moves the attempt in flight, an end frees the slot (which pulls the next
queued task), counts a completion once per task id and releases DAG
successors. When an agent dies or leaves, what it held is placed anew and
pools left without agents send their queues to the nearest staffed zone.

Every decision is the dispatch core's (``sim.policies.dispatch``, the one the
simulator runs):
this module is the one place that calls it, so the coordinator's other parts
speak of agents joining and leaving, never of queues.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from sim.live.broker import BUNDLE, Broker
from sim.live.coordinator.admission import ADMISSION, LiveAdmission, Verdict
from sim.live.coordinator.escalation import Escalation
from sim.live.coordinator.outbox import OPEN, Outbox, Outgoing
from sim.live.coordinator.state import AgentView, Books, EventLog, LiveJob, ScenarioTime
from sim.live.coordinator.zone_calls import ZoneCalls
from sim.live.subjects import START_UNREPORTED
from sim.live.task import LiveTask, attempt_failure, carried
from sim.live.task_message import InvalidMessage, Pools, rejection, reply_subject, validate
from sim.live.transport import (
    agent_consumer,
    agent_subject,
    dispatch_subject,
    result_subject,
    tasks_stream,
)
from sim.metrics.collector import MetricsCollector
from sim.policies.dag import Dag, DagEdge, DagNode, DagProgress, largest_input, plan_dag
from sim.policies.dispatch import RETRIES_EXHAUSTED, Assignment, DispatchCore
from sim.policies.types import AgentInfo
from sim.scenario.schema import Scenario
from sim.world.network import mean_transfer_s


class Intake:
    """Submissions, dispatch and results (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        books: Books,
        dispatcher: DispatchCore[LiveTask],
        broker: Broker,
        time: ScenarioTime,
        event: EventLog,
        collector: MetricsCollector,
        escalation: Escalation,
        *,
        replies: bool = False,
        admission: LiveAdmission | None = None,
    ) -> None:
        self.scenario, self.books, self.dispatcher = scenario, books, dispatcher
        self.broker, self.time, self.event = broker, time, event
        #: Told of every finished task (latency and wait per zone).
        self.collector = collector
        self.queue_limit = scenario.topology.specialist.queue_limit
        self.zones = {z.name for z in scenario.topology.zones}
        #: What a submission may name: anybody may publish one, so each is checked.
        tiers = scenario.tiers
        self.pools = Pools(
            frozenset(self.zones),
            frozenset(scenario.topology.categories),
            frozenset(level.name for level in tiers.levels) if tiers else None,
            frozenset(tiers.tenants) if tiers else None,
        )
        #: Tiers, tenants and shedding (the scenario's ``tiers`` section; None: all admitted).
        self.admission = admission
        #: Publish each task's outcome on its reply subject (a service; a live run has no
        #: client waiting, and skips the write).
        self.replies = replies
        #: False once a service drains: new submissions stay in ORCH_SUBMIT for the next
        #: primary (which reads the stream from its first message), none is booked here.
        self.accepting = True
        #: End reports read by a catch-up before their submission (for the reply).
        self._early_ends: dict[int, dict[str, Any]] = {}
        #: What a failed attempt leads to: the simulator's escalation policy.
        self.escalation = escalation
        #: The chief's calls to zones: the zone gate's verdicts, doors and probes.
        self.calls = ZoneCalls(dispatcher)

    # ------------------------------------------------------------------ the dispatcher

    async def join(self, view: AgentView) -> None:
        """A new (or returning) agent joins its pool; its free slots take queued work."""
        await self.send_all(self.dispatcher.join(self._info(view)))

    def drain_choice(self, zone: str, category: str) -> str | None:
        """The pool's agent to drain on a scale-down: the idlest (the core's choice)."""
        return self.dispatcher.drain_choice(zone, category)

    def withdraw(self, agent_id: str) -> None:
        """Draining: no new work for the agent; it finishes what it holds."""
        self.dispatcher.drain(agent_id)

    def held(self, agent_id: str) -> int:
        return self.dispatcher.load(agent_id)

    def pool_size(self, zone: str, category: str) -> int:
        return self.dispatcher.pool_size(zone, category)

    async def gone(self, view: AgentView, *, requeue: bool = False) -> None:
        """Dead or offline: nothing more reaches its subject; what it held goes elsewhere.

        *requeue*: taken from it through no fault of its own (a spot reclaim):
        placed again off the retry budget (``reroute``).
        """
        async with self.batch():
            held = self.dispatcher.gone(view.agent_id)
            await self.reroute(held, view.agent_id, requeue=requeue)
            # What it held left its team's count: a team the bulkhead had closed may pull.
            await self.send_all(self.dispatcher.wake_reopened())
            await self.evacuate_stranded()
        # Best effort: left behind, the tasks would only run again should the agent come
        # back under its id, and a second end of a task is ignored.
        stream = tasks_stream(view.zone)
        try:
            await self.broker.purge(stream, agent_subject(view.zone, view.agent_id))
            await self.broker.delete_consumer(stream, agent_consumer(view.agent_id))
        except Exception as exc:
            print(f"retiring {view.agent_id}'s queue: {exc!r}")

    async def dispatch(self, task: LiveTask) -> None:
        """Place a task: zone routing, then the load balancer's agent or the pool's queue."""
        now = self.time.now()
        recovered = self.books.recovered.pop(task.task_id, None)
        if recovered is not None:
            task.attempts = max(task.attempts, recovered[1] + 1)
            if recovered[0] in self.dispatcher.members:
                self.dispatcher.adopt(task, recovered[0])  # still on that agent's subject
                task.dispatched = True
                return
        assignments = await self._call_zone(task, now)
        if not task.dispatched:
            task.dispatched = True
            document = {"kind": "dispatch", "task_id": task.task_id, "zone": task.zone}
            document["dispatch_s"] = now
            subject = dispatch_subject(task.zone or task.home_zone)
            await self._post(Outgoing(subject, document, f"d.{task.task_id}", record=True))
        for assignment in assignments:
            await self.send(assignment)

    async def reroute(self, tasks: list[LiveTask], agent_id: str, *, requeue: bool = False) -> None:
        """Place again the tasks *agent_id* held when it died or went offline.

        Each goes again within the retry budget, avoiding the lost agent (the
        core's call); past the budget it fails for good, published as a
        result so the records show it. With *requeue* (a spot reclaim) the
        budget is not charged (the core's ``requeue``): none fails.
        """
        for task in tasks:
            if task.done:
                continue
            if requeue:
                self.dispatcher.requeue(task, agent_id)
            elif not self.dispatcher.retry(task, agent_id):
                await self.fail_for_good(task, agent_id, RETRIES_EXHAUSTED)
                continue
            await self.route(task)

    async def fail_for_good(self, task: LiveTask, agent_id: str, reason: str) -> None:
        """The task's end: a failed result under the next attempt number, with its reason."""
        now = self.time.now()
        document = {
            "kind": "end",
            "task_id": task.task_id,
            "attempt": task.attempts,
            "agent": agent_id,
            "zone": task.zone or task.home_zone,
            "outcome": "failed",
            "reason": reason,
            "start_s": now,
            "end_s": now,
            "final": True,  # the coordinator's verdict, not an attempt's (see attempt_failure)
        }
        subject = result_subject(task.zone or task.home_zone)
        await self._post(Outgoing(subject, document, f"e.{task.task_id}.{task.attempts}"))

    async def evacuate_zone(self, zone: str) -> int:
        """The zone was declared dead: what waited at its door and in its queues goes
        elsewhere, by task id (as the simulator evacuates)."""
        door = self.calls.take_door(zone)
        moved = sorted([*door, *self.dispatcher.evacuate(zone)], key=lambda t: t.task_id)
        async with self.batch():
            for task in moved:
                await self.route(task)
        return len(moved)

    async def zone_back(self, zone: str) -> None:
        """The zone answers again: what waited at its door is placed there."""
        async with self.batch():
            for task in self.calls.take_door(zone):
                assignment = self.dispatcher.receive(task, zone, self.time.now())
                if assignment is not None:
                    await self.send(assignment)

    async def route(self, task: LiveTask) -> None:
        """The chief's call to the task's zone (``zone_calls``); what it assigns goes out."""
        for assignment in await self._call_zone(task, self.time.now()):
            await self.send(assignment)

    async def _call_zone(self, task: LiveTask, now: float) -> list[Assignment[LiveTask]]:
        assignments = self.calls.route(task, now)
        if self.dispatcher.zones.breaker_zones:
            await self.log_breakers()
        return assignments

    async def log_breakers(self) -> None:
        """The zone breakers' transitions since the last look, as the simulator logs them."""
        board = self.dispatcher.zones.breakers
        if board is None:
            return
        for target, transition in board.drain_transitions():
            state = transition.to_state.value
            await self.event("breaker", target, state=state, why=transition.reason)

    async def probe_zones(self) -> None:
        """Zone breakers whose open time is over: half-open, their zone takes work again."""
        if self.calls.probes and self.calls.probe_due(self.time.now()):
            await self.log_breakers()

    async def evacuate_stranded(self) -> None:
        """Queues of pools with no agent go to the nearest zone staffed for the category."""
        for zone, category in self.dispatcher.stranded_pools():
            moved = self.dispatcher.evacuate(zone, category)
            if moved:
                await self.event("pool_evacuated", zone, category=category, tasks=len(moved))
            for task in moved:
                await self.route(task)

    def _info(self, view: AgentView) -> AgentInfo:
        return AgentInfo(
            view.agent_id,
            view.category,
            view.zone,
            speed=view.speed,
            slots=view.slots,
            capacity=view.slots + self.queue_limit,
            team=view.team,
        )

    # ------------------------------------------------------------------ sending

    async def send(self, assignment: Assignment[LiveTask]) -> None:
        """Put an assigned task on its agent's subject, then record the assignment.

        In that order: a takeover between the two finds the task unrecorded and
        places it again (run twice at worst, completed once), never recorded
        and missing. In a batch (``batch``) both go to its outbox, whose flush
        keeps that order: every task of the batch first, then every record.
        """
        task, agent_id = assignment.task, assignment.agent_id
        task.zone = assignment.zone  # where it runs: spilled or pulled across zones
        number = task.attempts
        task.attempts += 1
        document = {
            "task_id": task.task_id,
            "job_id": task.job_id,
            "node": task.node,
            "category": task.category,
            "work_s": task.work_s,
            "arrival_s": task.arrival_s,
            "attempt": number,
        }
        if task.carried is not None:
            document.update(task.carried)
        msg_id = f"t.{task.task_id}.{number}.{agent_id}"
        # The agent's zone's stream: a task moved across zones is a new message on another
        # stream, never a move inside one (what it left behind is purged with its agent).
        message = Outgoing(agent_subject(assignment.zone, agent_id), document, msg_id)
        record = {
            "kind": "assign",
            "task_id": task.task_id,
            "attempt": number,
            "agent": agent_id,
            "zone": assignment.zone,
            "assign_s": self.time.now(),
        }
        subject = dispatch_subject(assignment.zone)
        await self._post(message, Outgoing(subject, record, f"a.{task.task_id}.{number}", True))

    async def send_all(self, assignments: list[Assignment[LiveTask]]) -> None:
        async with self.batch():
            for assignment in assignments:
                await self.send(assignment)

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Collect this task's writes until the block ends, then publish them together.

        Why: the block routes many submissions or results (pure, fast) and the
        broker's round trips then overlap (``outbox``) instead of adding up.
        Nested blocks join the outer one. The flush runs even when the block
        raises: what the books already hold as sent must reach the broker.
        """
        if OPEN.get() is not None:
            yield
            return
        outbox = Outbox()
        token = OPEN.set(outbox)
        try:
            yield
        finally:
            OPEN.reset(token)
            await outbox.flush(self.broker)

    @contextlib.contextmanager
    def collecting(self, outbox: Outbox) -> Iterator[None]:
        """Like ``batch``, but the writes stay in *outbox* for the caller to flush.

        The stream follower hands it to its ``Pipeline`` and reads on while it
        is written. The caller must flush it even when the block raises.
        """
        token = OPEN.set(outbox)
        try:
            yield
        finally:
            OPEN.reset(token)

    async def _post(self, message: Outgoing, then: Outgoing | None = None) -> None:
        """Publish *message* (then *then*, after its ack), or queue both in the open batch."""
        outbox = OPEN.get()
        if outbox is not None:
            outbox.put(message, then)
            return
        await self.broker.publish(message.subject, message.document, message.msg_id)
        if then is not None:
            await self.broker.publish(then.subject, then.document, then.msg_id)

    # ------------------------------------------------------------------ submissions

    async def on_submit(self, doc: dict[str, Any]) -> None:
        books = self.books
        if not self.accepting:
            return
        try:
            validate(doc, self.pools)
        except InvalidMessage as exc:
            await self._reject(doc, str(exc))
            return
        if doc["kind"] == "task":
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
            return
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
        plan = plan_dag(dag)
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
            task.dispatched = task.task_id in books.routed_before
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
            await self.dispatch(books.tasks[job.tasks[node]])

    def waiting(self) -> int:
        """Tasks waiting for an agent: in the pools' queues, and assigned but not started."""
        held = len(self.dispatcher.holder) - len(self.books.in_flight)
        return self.dispatcher.queued() + max(held, 0)

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
            verdict = admission.decide(doc, self.waiting(), self.time.now())
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
                books.routed_before.add(task_id)
            return
        if kind == "assign":
            if books.catching_up:
                self._recover(task_id, str(doc["agent"]), int(doc["attempt"]))
            return  # live, this coordinator booked it when it sent it
        key = (task_id, int(doc["attempt"]))
        if kind == "start" or doc.get(START_UNREPORTED):
            await self._started(task, key, doc)  # (an unreported start rides on its end)
            if kind == "start":
                return
        books.in_flight.pop(key, None)
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
                books.pending_done[task_id] = str(doc["outcome"])
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
        if not task.started:
            task.started = True
            books.counters.started += 1
            books.counters.wait_sum += float(doc["start_s"]) - task.arrival_s

    async def _attempt_failed(self, task: LiveTask, doc: dict[str, Any]) -> None:
        """An agent's attempt failed: the escalation's call (retry, move, or the end)."""
        number = int(doc["attempt"])
        if number < task.attempts - 1 or number in task.failed_attempts:
            self.books.counters.duplicates += 1  # stale (placed again since) or reported twice
            return
        task.failed_attempts.add(number)
        agent_id, zone = str(doc["agent"]), str(doc["zone"])
        if zone in self.zones:
            self.collector.attempt_failed(zone)
        reason = str(doc.get("reason") or "failed")
        verdict = await self.escalation.failed(task, agent_id, zone, reason, self.time.now())
        if verdict.fail_reason is not None:
            await self.fail_for_good(task, agent_id, verdict.fail_reason)
        elif verdict.assignment is not None:
            await self.send(verdict.assignment)

    async def release_due(self) -> None:
        """Place the retries whose backoff has passed."""
        async with self.batch():
            for assignment in self.escalation.due(self.time.now()):
                if assignment is not None:
                    await self.send(assignment)

    def _near(self, job: LiveJob, node: int) -> tuple[str, float] | None:
        """The agent holding the node's largest input, and the expected time to move it."""
        largest = largest_input(job.progress.predecessors(node), job.ran_on.get)
        if largest is None:
            return None
        return largest[0], mean_transfer_s(self.scenario.network, largest[1])

    async def _finished_before(self, task: LiveTask) -> None:
        """A task whose end the catch-up read first: done, counted once, not placed again.

        Its reply goes out again: the primary that saw the end may have died
        before replying, and the reply stream's message id (and the client's
        books) make a second copy harmless.
        """
        task.done = True
        outcome = self.books.pending_done[task.task_id]
        if outcome == "completed":
            self.books.counters.completed += 1
        else:
            self.books.counters.failed += 1
        await self._reply(task, outcome, self._early_ends.pop(task.task_id, None))

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
        zone = doc["zone"]
        latency = float(doc["end_s"]) - task.arrival_s
        wait = float(doc["start_s"]) - task.arrival_s
        if doc["outcome"] == "completed":
            books.counters.completed += 1
            books.latencies.append(latency)
            if zone in self.zones:
                self.collector.task_finished(zone, latency, wait)
        else:
            books.counters.failed += 1
            if zone in self.zones:
                self.collector.task_finished(zone, latency, wait, failed=True)
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
