"""The intake's calls to the dispatch core: agents join and leave, tasks are placed.

Why a module of its own: this is where the coordinator's other parts (health,
scaling, spot) reach the dispatcher. They speak of agents joining, draining and
dying; this module turns that into the core's calls (``sim.policies.dispatch``)
and sends what the core assigns. The zone gate's doors and probes (``zone_calls``)
and the zone breakers' log are here too: they decide where a placement may go.
"""

from __future__ import annotations

from sim.live.coordinator.agent_calls import AgentCalls, log_transitions
from sim.live.coordinator.outbound import Outbound
from sim.live.coordinator.outbox import Outgoing
from sim.live.coordinator.state import AgentView, Books, EventLog
from sim.live.coordinator.zone_calls import ZoneCalls
from sim.live.task import LiveTask
from sim.live.transport import (
    agent_consumer,
    agent_subject,
    dispatch_subject,
    result_subject,
    tasks_stream,
)
from sim.policies.dispatch import RETRIES_EXHAUSTED, Assignment, DispatchCore
from sim.policies.types import AgentInfo


class Placement(Outbound):
    """Every call to the dispatcher but a submission's and a result's (the base of ``Intake``)."""

    books: Books
    dispatcher: DispatchCore[LiveTask]
    event: EventLog
    calls: ZoneCalls
    agent_calls: AgentCalls
    queue_limit: int

    async def send(self, assignment: Assignment[LiveTask]) -> None:
        """Call the agent, then send it the task; a failed call places the task anew.

        As the simulator's zone coordinator (``_call_failed``): nothing ran, so
        the retry budget is untouched; the task leaves the dead agent's books
        (whose load the balancer hears later, so it is not chosen again at once)
        and its zone places it again. See ``agent_calls``.
        """
        if await self.agent_calls.reach(assignment.agent_id):
            await super().send(assignment)
            return
        task = assignment.task
        self.dispatcher.release(task, assignment.agent_id)
        again = self.dispatcher.receive(task, assignment.zone, self.time.now())
        if again is not None:
            await self.send(again)
        await self.send_all(self.dispatcher.wake_reopened())

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
        stream = tasks_stream(view.zone, view.agent_id)
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
                self.books.order_stale = True
                task.dispatched = True
                return
        if self.books.deferred is not None:
            # A takeover reads the submissions zone by zone: a task placed now would see
            # as free an agent whose held task sits in a zone's stream not yet read, and
            # queue behind it. The simulator's new leader knows every load when it
            # re-drives what waited for it; these wait until all is adopted (catch_up).
            self.books.deferred.append(task)
            return
        if self.books.order_stale:
            # A takeover joined its agents by id and adopted what each holds: before it
            # places anything, its pools keep agents of equal load in the order they
            # reached it, as its predecessor's (and the replay's) did.
            self.dispatcher.restore_order(self.books.reached)
            self.books.order_stale = False
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
            task.started = False  # waiting again (queue depth), as the simulator's retry
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

    async def route(self, task: LiveTask, zone: str | None = None) -> None:
        """The chief's call to the task's zone (``zone_calls``); what it assigns goes out.

        *zone*: a zone the chief chose itself (an escalation), called first.
        """
        for assignment in await self._call_zone(task, self.time.now(), zone):
            await self.send(assignment)

    async def _call_zone(
        self, task: LiveTask, now: float, zone: str | None = None
    ) -> list[Assignment[LiveTask]]:
        assignments = self.calls.route(task, now, zone)
        if self.dispatcher.zones.breaker_zones:
            await self.log_breakers()
        return assignments

    async def log_breakers(self) -> None:
        """The zone breakers' transitions since the last look, as the simulator logs them."""
        board = self.dispatcher.zones.breakers
        if board is not None:
            await log_transitions(board, self.event)

    async def probe_zones(self) -> None:
        """Breakers whose open time is over: half-open, their zone or agent takes work again."""
        if self.calls.probes and self.calls.probe_due(self.time.now()):
            await self.log_breakers()
        await self.agent_calls.half_open()

    async def resend_lost(self) -> None:
        """The chief sends a lost assignment again once its TTL is over, routed afresh, as
        the simulator's chief does (``message_loss``; ``deadlines`` calls it then)."""
        losses = self.calls.losses
        if losses is None or not losses.waiting:
            return
        async with self.batch():
            for task in losses.due(self.time.now()):
                await self.route(task)

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
