"""The submit client: hand tasks and DAG jobs to a running ``orchestra live serve``, get results.

Scenario: a client connects, submits tasks (or jobs) under ids it chose,
and awaits their results. Submission is idempotent: the message id is the
task's (``sub.<id>.<kind>``), so the broker stores one submission per id
within its dedupe window, and the coordinator books a task id once whatever
the window. Each result is delivered once: the client listens on the reply
subjects (``orch.reply.>``, see ``sim.live.task_message``) before it
publishes, and looks up an id's last reply as it submits it, so a task
that finished before (a resubmission after a crash of the client) is
answered from the reply stream, not run again; a copy seen twice (the
listener and the look-up, or a coordinator that replied again after a
takeover) is dropped by the client's own books.

A job's result comes when every node has one (or at once when the job is
rejected): ``JobResult`` holds the node replies.

Example::

    async with await SubmitClient.connect("nats://127.0.0.1:4222") as client:
        await client.submit_task(7, category="CodeGen", zone="A", work_s=3.0)
        result = await client.result("task", 7, timeout_s=60)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from sim.live.broker import decode, encode
from sim.live.cancel import close_bounded
from sim.live.clock import Clock
from sim.live.task_message import (
    REPLY_PREFIX,
    SUBMISSIONS_PER_BATCH,
    reply_subject,
    submission_batch,
    submission_id,
    task_ids,
    validate,
)
from sim.live.transport import LEASE_BUCKET, REPLIES, LiveError, connect


@dataclass(frozen=True)
class TaskResult:
    """One task's outcome (``completed``, ``failed``, ``shed`` or ``rejected``) and its reply."""

    task_id: int
    outcome: str
    reply: dict[str, Any]

    @property
    def kind(self) -> str:
        return "task"

    def document(self) -> dict[str, Any]:
        return {"kind": "task", **self.reply}


@dataclass(frozen=True)
class JobResult:
    """A DAG job's outcome: completed when every node completed; its nodes' replies."""

    job_id: int
    outcome: str
    nodes: tuple[dict[str, Any], ...] = ()
    reason: str = ""

    @property
    def kind(self) -> str:
        return "job"

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": "job", "job_id": self.job_id, "outcome": self.outcome}
        if self.reason:
            doc["reason"] = self.reason
        doc["nodes"] = list(self.nodes)
        return doc


Result = TaskResult | JobResult


@dataclass
class _Pending:
    """What a submitted job still waits for."""

    nodes: set[int]
    replies: dict[int, dict[str, Any]] = field(default_factory=dict)


class SubmitClient:
    """A connection to the service's broker that submits work and collects results."""

    def __init__(self, nc: Client, clock: Clock) -> None:
        self.nc, self.js, self.clock = nc, nc.jetstream(), clock
        #: Task ids awaited on their own; job ids with the node ids they wait for.
        self._tasks: set[int] = set()
        self._jobs: dict[int, _Pending] = {}
        self._node_job: dict[int, int] = {}
        #: Results ready and not yet taken, in the order they came; ids already delivered.
        self._ready: asyncio.Queue[Result] = asyncio.Queue()
        self._delivered: set[tuple[str, int]] = set()
        self._waiters: dict[tuple[str, int], asyncio.Future[Result]] = {}
        self._sub: JetStreamContext.PushSubscription | None = None

    @classmethod
    async def connect(
        cls, url: str, token: str | None = None, name: str = "orchestra-client"
    ) -> SubmitClient:
        """Connect, read the service's clock (its epoch) and start listening for replies."""
        nc = await connect(url, token, name)
        try:
            lease = await nc.jetstream().key_value(LEASE_BUCKET)
            entry = await lease.get("epoch")
            epoch = float(decode(entry.value or b"{}")["epoch"])
        except Exception:
            await close_bounded(nc)
            raise LiveError(f"{url}: no orchestra service there (no epoch in orch_lease)") from None
        client = cls(nc, Clock(epoch, 1.0))
        client._sub = await client.js.subscribe(
            f"{REPLY_PREFIX}.>",
            stream=REPLIES,
            cb=client._on_reply,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        return client

    async def __aenter__(self) -> SubmitClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        await close_bounded(self.nc)

    # ------------------------------------------------------------------ submitting

    async def submit_task(
        self,
        task_id: int,
        category: str,
        zone: str,
        work_s: float,
        *,
        tier: str | None = None,
        tenant: str | None = None,
    ) -> None:
        """Submit one task; *tier* and *tenant* name its priority tier and its tenant
        (the deployment's ``tiers`` section; None: drawn from its shares)."""
        document: dict[str, Any] = {"kind": "task", "task_id": task_id, "category": category}
        document.update(zone=zone, work_s=work_s)
        if tier is not None:
            document["tier"] = tier
        if tenant is not None:
            document["tenant"] = tenant
        await self.submit(document)

    async def submit_job(
        self,
        job_id: int,
        zone: str,
        nodes: list[dict[str, Any]],
        edges: list[list[float]],
        shape: str = "job",
    ) -> None:
        document = {"kind": "job", "job_id": job_id, "zone": zone, "shape": shape}
        await self.submit({**document, "nodes": nodes, "edges": edges})

    async def submit(self, document: dict[str, Any]) -> None:
        """Check, stamp (``arrival_s`` if missing) and publish one submission; await its result.

        A resubmitted id is the same task: the broker stores it once, the
        coordinator books it once, and a result it already has is read back.
        """
        doc = self._track(self._checked(document))
        await self.js.publish(
            "orch.submit", encode(doc), headers={"Nats-Msg-Id": submission_id(doc)}, timeout=10
        )
        await self._read_back(doc)

    async def submit_many(self, documents: list[dict[str, Any]]) -> None:
        """``submit`` for many at once: checked one by one (nothing is sent if one is bad),
        published a batch of up to ``SUBMISSIONS_PER_BATCH`` per message
        (``task_message.submission_batch``: one stored message, one fsync, per batch)."""
        docs = [self._checked(document) for document in documents]
        for doc in docs:
            self._track(doc)
        batches = [
            submission_batch(docs[i : i + SUBMISSIONS_PER_BATCH])
            for i in range(0, len(docs), SUBMISSIONS_PER_BATCH)
        ]
        await asyncio.gather(
            *(
                self.js.publish(
                    "orch.submit", encode(batch), headers={"Nats-Msg-Id": msg_id}, timeout=10
                )
                for batch, msg_id in batches
            )
        )
        await asyncio.gather(*(self._read_back(doc) for doc in docs))

    def _checked(self, document: dict[str, Any]) -> dict[str, Any]:
        """The submission stamped (``arrival_s`` if missing) and checked (InvalidMessage)."""
        doc = dict(document)
        doc.setdefault("arrival_s", self.clock.now())
        validate(doc)
        return doc

    def _track(self, doc: dict[str, Any]) -> dict[str, Any]:
        """*doc*'s id (and its nodes') awaited from now on."""
        kind = str(doc["kind"])
        ident = int(doc[f"{kind}_id"])
        if kind == "task":
            self._tasks.add(ident)
        else:
            ids = task_ids(doc)
            self._jobs[ident] = _Pending(set(ids))
            for task_id in ids:
                self._node_job[task_id] = ident
        return doc

    async def _read_back(self, doc: dict[str, Any]) -> None:
        """Finished before (a resubmission)? Its replies are in the stream already."""
        kind = str(doc["kind"])
        ident = int(doc[f"{kind}_id"])
        subjects = [reply_subject(kind, ident)]
        if kind == "job":
            subjects += [reply_subject("task", t) for t in task_ids(doc)]
        for subject in subjects:
            with contextlib.suppress(NotFoundError):
                message = await self.js.get_last_msg(REPLIES, subject)
                if message.data:
                    self._take(decode(message.data))

    # ------------------------------------------------------------------ results

    async def result(self, kind: str, ident: int, timeout_s: float | None = None) -> Result:
        """The result of task or job *ident*, once it has one (taken from ``results``)."""
        key = (kind, ident)
        future = self._waiters.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiters[key] = future
        return await asyncio.wait_for(asyncio.shield(future), timeout_s)

    async def results(self, count: int, timeout_s: float | None = None) -> AsyncIterator[Result]:
        """The next *count* results as they come (each task and job once)."""
        for _ in range(count):
            yield await asyncio.wait_for(self._ready.get(), timeout_s)

    @property
    def outstanding(self) -> int:
        """Submitted tasks and jobs without a result yet."""
        return len(self._tasks) + len(self._jobs)

    async def _on_reply(self, msg: Msg) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            self._take(decode(msg.data))

    def _take(self, reply: dict[str, Any]) -> None:
        """Book one reply: a task's result, a node of a job, or a rejected job."""
        if reply.get("kind") == "job":
            job_id = int(reply["job_id"])
            if job_id in self._jobs:
                del self._jobs[job_id]
                self._deliver(JobResult(job_id, str(reply["outcome"]), (), str(reply["reason"])))
            return
        task_id = int(reply["task_id"])
        if task_id in self._tasks:
            self._tasks.discard(task_id)
            self._deliver(TaskResult(task_id, str(reply["outcome"]), reply))
            return
        owner = self._node_job.get(task_id)
        pending = self._jobs.get(owner) if owner is not None else None
        if owner is None or pending is None or task_id not in pending.nodes:
            return  # another client's task, or a copy of a reply already taken
        job_id = owner
        pending.replies[task_id] = reply
        pending.nodes.discard(task_id)
        if pending.nodes:
            return  # (a failed node still releases its successors, as in the simulator)
        del self._jobs[job_id]
        nodes = tuple(pending.replies[t] for t in sorted(pending.replies))
        outcome = "failed" if any(n.get("outcome") != "completed" for n in nodes) else "completed"
        self._deliver(JobResult(job_id, outcome, nodes))

    def _deliver(self, result: Result) -> None:
        key = (result.kind, result.task_id if isinstance(result, TaskResult) else result.job_id)
        if key in self._delivered:
            return
        self._delivered.add(key)
        self._ready.put_nowait(result)
        future = self._waiters.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiters[key] = future
        if not future.done():
            future.set_result(result)
