"""The intake's writes: a task to its agent's subject, a record to the dispatch stream.

Why a module of its own: every write of the intake goes through ``_post``,
which either publishes at once or queues into the open batch (``outbox``), so
that a block routing many submissions or results pays the broker's round
trips once, overlapped. The order rule (a task before its record) lives here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

from sim.live.attempt_fate import TRANSFER_FIELD
from sim.live.broker import Broker
from sim.live.coordinator.attempt_faults import FaultDraws
from sim.live.coordinator.dag_transfers import DagTransfers
from sim.live.coordinator.outbox import OPEN, Outbox, Outgoing
from sim.live.coordinator.state import Books, ScenarioTime
from sim.live.task import LiveTask
from sim.live.transport import agent_subject, dispatch_subject
from sim.policies.dispatch import Assignment, DispatchCore


class Outbound:
    """Sending and batching for the intake (the base of ``Intake``)."""

    broker: Broker
    time: ScenarioTime
    dispatcher: DispatchCore[LiveTask]
    #: The scenario's attempt errors and deadlines, for the agent (None: none to send).
    fault_draws: FaultDraws | None
    #: DAG nodes' input transfers, for the agent (None: none to send).
    transfers: DagTransfers | None
    books: Books

    async def send(self, assignment: Assignment[LiveTask]) -> None:
        """Put an assigned task on its agent's subject, then record the assignment.

        In that order: a takeover between the two finds the task unrecorded and
        places it again (run twice at worst, completed once), never recorded
        and missing. In a batch (``batch``) both go to its outbox, whose flush
        keeps that order: every task of the batch first, then every record.
        """
        task, agent_id = assignment.task, assignment.agent_id
        task.zone = assignment.zone  # where it runs: spilled or pulled across zones
        now = self.time.now()  # the assignment's instant: its record, its draws, the books
        self.books.changed(agent_id, now)
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
        # Synthetic work's share, which the agent acts on: the scenario's errors and deadlines,
        # and a DAG node's input transfer.
        if self.fault_draws is not None:
            document.update(self.fault_draws.fields(task, number, assignment.zone, now))
        if self.transfers is not None and task.job_id >= 0:
            transfer = self.transfers.seconds(task, agent_id, assignment.zone, number)
            if transfer > 0:
                document[TRANSFER_FIELD] = transfer
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
            "assign_s": now,
            # Whether the agent had a slot free (the books hold this task already): if not,
            # the task waits at the agent, and that wait is queueing (``task_fold``).
            "slot_free": self._slot_free(agent_id),
        }
        subject = dispatch_subject(assignment.zone)
        await self._post(message, Outgoing(subject, record, f"a.{task.task_id}.{number}", True))

    def _slot_free(self, agent_id: str) -> bool:
        info = self.dispatcher.members.get(agent_id)
        return info is None or self.dispatcher.load(agent_id) <= info.slots

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
