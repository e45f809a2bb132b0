"""The live coordinator: the simulator's policies, fed from the broker and the wall clock.

A coordinator holds the lease in ``orch_lease`` (compare-and-set on the
entry's revision) or waits as a standby until the lease expires. The primary
rebuilds its state from the streams — every result first, then every
submission — so a standby that takes over resumes exactly where the broker
is; dispatching is idempotent (a task's message id dedupes a re-dispatch) and
so is completion (a task id counts once). Then it loops:

* submissions → zone routing (``ZoneRouter``), the scenario's load balancer
  (``make_balancer``, fed joins, leaves and loads by sim.policies.dispatch) and, for
  DAG jobs, ready nodes in upward-rank order (``DagProgress``) → the chosen
  agent's work-queue subject (on its zone's stream), or the pool's queue when no agent has room;
* results → completions, the freed slot's next queued task, DAG successors
  released, metrics;
* heartbeats in ``orch_agents`` → pool membership and the failure detector
  (three missed checks); a dead agent's tasks are assigned anew within the
  retry budget (avoiding the dead agent; past it they fail for good as
  ``retries_exhausted``), and a pool left with no agent sends its queue to
  the nearest staffed zone;
* every evaluation interval → the autoscaler; its decision placed by
  ``place_agents`` / ``pick_drains`` and carried out by the provisioner;
* every metrics interval → a metrics sample, the alert rules, webhooks.

Every decision is a call into sim.policies; this module only measures and acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import time
import traceback
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from sim.live.clock import Clock
from sim.live.provisioner import AgentSpec, Provisioner
from sim.live.task import LiveTask
from sim.live.transport import (
    AGENTS_BUCKET,
    LEASE_BUCKET,
    RESULTS,
    SUBMIT,
    ZONES_DOWN_KEY,
    StreamReader,
    agent_subject,
    connect,
    control_subject,
    decode,
    encode,
    publish,
    retire_agent_queue,
)
from sim.metrics.collector import MetricsCollector, ZoneSnapshot
from sim.policies.alerts import AlertEvaluator, alert_sample
from sim.policies.autoscale import Autoscaler, FleetObservation
from sim.policies.dag import Dag, DagEdge, DagNode, DagProgress, plan_dag
from sim.policies.dispatch import RETRIES_EXHAUSTED, Assignment, DispatchCore
from sim.policies.health import ConsecutiveFailureDetector, HealthState
from sim.policies.placement import PoolLoad, pick_drains, place_agents
from sim.policies.types import AgentInfo
from sim.scenario.schema import Scenario
from sim.world.policy_set import build_policies, dispatch_core
from sim.world.streams import Streams


@dataclass
class LiveJob:
    job_id: int
    progress: DagProgress
    tasks: dict[int, int]  # node -> task id
    arrival_s: float


@dataclass
class AgentView:
    """What the coordinator knows of an agent from its heartbeats."""

    agent_id: str
    zone: str
    category: str
    status: str = "idle"
    in_flight: int = 0
    slots: int = 1
    speed: float = 1.0
    last_beat_wall: float = 0.0
    healthy: bool = True
    draining: bool = False


@dataclass(frozen=True)
class CoordinatorConfig:
    url: str
    token: str | None
    clock: Clock
    lease_s: float = 1.5  # wall seconds a lease lasts without renewal
    webhook_url: str | None = None
    metrics_port: int | None = None
    autoscale: bool = True


@dataclass
class _Counters:
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    duplicates: int = 0
    started: int = 0
    wait_sum: float = 0.0
    busy_s: float = 0.0


@dataclass
class Coordinator:
    """One coordinator replica (see the module docstring)."""

    name: str
    scenario: Scenario
    config: CoordinatorConfig
    provisioner: Provisioner
    zones: tuple[str, ...]
    categories: tuple[str, ...]
    is_primary: bool = False
    tasks: dict[int, LiveTask] = field(default_factory=dict)
    jobs: dict[int, LiveJob] = field(default_factory=dict)
    agents: dict[str, AgentView] = field(default_factory=dict)
    counters: _Counters = field(default_factory=_Counters)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=5000))

    def __post_init__(self) -> None:
        s = self.scenario
        health = s.health
        interval = health.interval
        self.detector = ConsecutiveFailureDetector(
            interval, health.threshold, min(health.timeout, interval * 0.5)
        )
        regions = {zone: self._region(zone) for zone in self.zones}
        # The simulator's own policies, from its streams of the same names and seed.
        self.policies = build_policies(s, Streams(s.seed, 0), regions)
        self.router = self.policies.router
        self.breakers = self.policies.breakers
        # The simulator's own dispatch core: the same decisions, the same books.
        self.dispatcher: DispatchCore[LiveTask] = dispatch_core(
            self.policies, allow=self.breakers.allow if self.breakers is not None else None
        )
        self.queue_limit = s.topology.specialist.queue_limit
        #: Assignments found in the streams by a takeover: task id -> (agent, number).
        self._recovered: dict[int, tuple[str, int]] = {}
        self._catching_up = False
        self.collector = MetricsCollector(list(self.zones), s.metrics.interval)
        self.alerts: AlertEvaluator = self.policies.alerts
        self.control_agents = s.control_agents()
        self.autoscaler: Autoscaler = self.policies.autoscaler
        self.in_flight: dict[tuple[int, int], tuple[str, str, float]] = {}
        self.requested: dict[str, AgentSpec] = {}  # started by scaling, not yet heartbeating
        self._readings: deque[tuple[float, float, float, int, int]] = deque([(0.0, 0.0, 0.0, 0, 0)])
        self._pending_done: set[int] = set()
        self._now = -math.inf
        self._lease_revision: int | None = None
        self.stopped = asyncio.Event()
        self.webhooks_sent: list[dict[str, Any]] = []

    def now(self) -> float:
        """Scenario time, never moving back (the policies require it; results arrive late)."""
        self._now = max(self._now, self.config.clock.now())
        return self._now

    def _region(self, zone: str) -> str:
        return next(z.region for z in self.scenario.topology.zones if z.name == zone)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Wait for the lease, then coordinate until cancelled or the lease is lost."""
        self.nc: Client = await connect(self.config.url, self.config.token, self.name)
        self.js: JetStreamContext = self.nc.jetstream()
        self.lease = await self.js.key_value(LEASE_BUCKET)
        self.registry = await self.js.key_value(AGENTS_BUCKET)
        try:
            while not await self._try_lease():
                await asyncio.sleep(self.config.lease_s / 4)
            self.is_primary = True
            await self.event("coordinator_primary", self.name)
            await self._lead()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug, not an outage: say so loudly; the standby takes over when the lease lapses.
            traceback.print_exc()
            raise
        finally:
            self.is_primary = False
            self.stopped.set()
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def _try_lease(self) -> bool:
        """Take the lease if nobody holds a live one (compare-and-set on its revision).

        Clock assumption: a lease's ``expires`` is the holder's wall clock
        (``time.time()``) plus ``lease_s``, and a standby compares it with *its
        own* wall clock. That is safe only while the replicas' clocks agree to
        well within ``lease_s`` — true for replicas on one host, as here, and
        for NTP-synced hosts with a lease of seconds. A standby whose clock runs
        ahead by more than the lease takes over a live primary early; the
        compare-and-set then makes the primary's next renewal (every
        ``lease_s / 3``) fail with LeaseLost and it stops leading, so two
        primaries overlap for at most about one renewal period. The revision,
        not the clock, decides who holds the lease.
        """
        value = encode({"holder": self.name, "expires": time.time() + self.config.lease_s})
        try:
            try:
                entry = await self.lease.get("primary")
            except KeyNotFoundError:
                self._lease_revision = await self.lease.create("primary", value)
                return True
            holder = decode(entry.value or b"{}")
            if holder.get("holder") != self.name and float(holder.get("expires", 0)) > time.time():
                return False
            self._lease_revision = await self.lease.update("primary", value, last=entry.revision)
            return True
        except (TimeoutError, KeyWrongLastSequenceError):
            return False
        except Exception as exc:
            if "wrong last sequence" in str(exc) or "key exists" in str(exc):
                return False
            await asyncio.sleep(0.1)  # broker unavailable: try again later
            return False

    async def _renew(self) -> None:
        value = encode({"holder": self.name, "expires": time.time() + self.config.lease_s})
        deadline = time.time() + self.config.lease_s
        while True:
            try:
                self._lease_revision = await self.lease.update(
                    "primary", value, last=self._lease_revision
                )
                return
            except KeyWrongLastSequenceError:
                raise LeaseLost(self.name) from None
            except Exception as exc:
                if "wrong last sequence" in str(exc):
                    raise LeaseLost(self.name) from None
                if time.time() > deadline + 5 * self.config.lease_s:
                    raise LeaseLost(self.name) from None  # broker gone for long: let go
                await asyncio.sleep(0.1)

    async def _lead(self) -> None:
        suffix = secrets.token_hex(3)
        self._results = StreamReader(self.js, RESULTS, "orch.result", f"co_{self.name}_r_{suffix}")
        self._submits = StreamReader(self.js, SUBMIT, "orch.submit", f"co_{self.name}_s_{suffix}")
        await self._catch_up()
        self._recovered.clear()
        clock = self.config.clock
        scale = clock.scale
        loops = [
            self._follow(),
            self._periodic(self.config.lease_s / 3, self._renew),
            self._periodic(self.scenario.health.interval / scale, self.check_health),
            self._periodic(min(0.1, self.scenario.health.interval / scale), self.check_zones),
            self._on_grid(self.scenario.metrics.interval, self.sample),
        ]
        if self.config.autoscale and self.scenario.scaling.auto_scale.enabled:
            loops.append(self._on_grid(self.scenario.scaling.decision_interval(), self.evaluate))
        if self.config.metrics_port is not None:
            from sim.live.exposition import serve_metrics

            loops.append(serve_metrics(self, self.config.metrics_port))
        try:
            await asyncio.gather(*loops)
        except LeaseLost:
            await self.event("coordinator_lost_lease", self.name)
        finally:
            await self._results.close()
            await self._submits.close()

    async def _periodic(self, period_s: float, action: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await action()
            except LeaseLost:
                raise
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                print(f"{self.name}: {getattr(action, '__name__', action)}: {exc!r}")

    async def _on_grid(self, interval: float, action: Callable[[float], Any]) -> None:
        """Call *action(t)* at every multiple t of *interval* (scenario s) up to the duration.

        The policy sees the tick's own time, as in the simulator, not the wall
        clock's jitter around it: a cooldown of exactly two intervals then ends
        on a tick rather than a few milliseconds after it.
        """
        clock = self.config.clock
        tick = math.floor(max(clock.now(), 0.0) / interval) + 1
        while tick * interval <= self.scenario.duration + 1e-9:
            await asyncio.sleep(clock.until(tick * interval))
            try:
                # The tick's own time even when this loop runs late: a late tick stamped
                # with the wall clock moved the autoscaler's cooldowns off the grid (a
                # scale-up at 90.47 s blocked the scale-down due at 150 s, 59.53 s later).
                await action(tick * interval)
            except (LeaseLost, asyncio.CancelledError):
                raise
            except Exception as exc:
                print(f"{self.name}: {getattr(action, '__name__', action)}: {exc!r}")
            tick += 1
        await asyncio.Event().wait()

    async def _catch_up(self) -> None:
        """Results first, then the fleet, then submissions: only what is unfinished goes out.

        A task the streams show assigned to an agent that is still in the
        registry stays with it (its subject holds it); the rest is placed anew.
        """
        self._catching_up = True
        await self._read_through(self._results, self.on_result, RESULTS)
        self._catching_up = False
        await self.check_health()  # the pools, before anything is placed
        await self._read_through(self._submits, self.on_submit, SUBMIT)

    async def _read_through(
        self, reader: StreamReader, handle: Callable[[dict[str, Any]], Any], stream: str
    ) -> None:
        """Feed *handle* every message of *stream* up to its last one now."""
        last = int((await self.js.stream_info(stream)).state.last_seq)
        seen = 0
        while seen < last:
            batch = await reader.read(512, 0.5)
            for message in batch:
                seen = max(seen, int(message.metadata.sequence.stream))
                await handle(decode(message.data))
            if not batch:
                last = int((await self.js.stream_info(stream)).state.last_seq)

    async def _follow(self) -> None:
        async def follow(reader: StreamReader, handle: Callable[[dict[str, Any]], Any]) -> None:
            # A pull for one message returns the moment it is stored; a pull for many waits
            # out its whole timeout for the rest (nats-py), which held every lone submission
            # back by up to that long. So: block for one, then take what is already there.
            while True:
                first = await reader.read(1, 0.5)
                for message in first:
                    await handle(decode(message.data))
                if first:
                    for message in await reader.read(256, 0.002):
                        await handle(decode(message.data))

        await asyncio.gather(
            follow(self._results, self.on_result), follow(self._submits, self.on_submit)
        )

    # ------------------------------------------------------------------ events

    async def event(self, kind: str, subject: str = "", **detail: Any) -> None:
        document = {"time_s": self.config.clock.now(), "kind": kind, "subject": subject}
        document["detail"] = json.dumps(detail, sort_keys=True, separators=(",", ":"))
        await publish(self.js, "orch.event", document)

    # ------------------------------------------------------------------ tasks

    async def on_submit(self, doc: dict[str, Any]) -> None:
        if doc["kind"] == "task":
            task = LiveTask(
                int(doc["task_id"]), doc["category"], doc["zone"], doc["arrival_s"], doc["work_s"]
            )
            if task.task_id in self.tasks:
                return
            self.tasks[task.task_id] = task
            self.counters.submitted += 1
            if task.task_id in self._pending_done:
                task.done = True
                return
            await self.dispatch(task)
            return
        job_id = int(doc["job_id"])
        if job_id in self.jobs:
            return
        nodes = tuple(
            DagNode(int(n["node"]), n["category"], float(n["work_s"])) for n in doc["nodes"]
        )
        edges = tuple(DagEdge(int(a), int(b), float(mb)) for a, b, mb in doc["edges"])
        dag = Dag(doc.get("shape", "job"), nodes, edges)
        plan = plan_dag(dag)
        progress = DagProgress(plan, dag)
        job = LiveJob(job_id, progress, {}, doc["arrival_s"])
        self.jobs[job_id] = job
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
            )
            self.tasks[task.task_id] = task
            job.tasks[task.node] = task.task_id
            self.counters.submitted += 1
        # Nodes finished before a takeover complete in topological order, then the rest goes out.
        ready = progress.ready()
        while True:
            finished = [n for n in ready if job.tasks[n] in self._pending_done]
            if not finished:
                break
            for node in finished:
                self.tasks[job.tasks[node]].done = True
                ready = [r for r in ready if r != node] + progress.complete(node)
        for node in ready:
            await self.dispatch(self.tasks[job.tasks[node]])

    def pool_size(self, zone: str, category: str) -> int:
        return self.dispatcher.pool_size(zone, category)

    async def dispatch(self, task: LiveTask) -> None:
        """Place a task: zone routing, then the load balancer's agent or the pool's queue."""
        now = self.now()
        recovered = self._recovered.pop(task.task_id, None)
        if recovered is not None:
            task.attempts = max(task.attempts, recovered[1] + 1)
            if recovered[0] in self.dispatcher.members:
                self.dispatcher.adopt(task, recovered[0])  # still on that agent's subject
                task.dispatched = True
                return
        assignment = self.dispatcher.route(task, now)
        if not task.dispatched:
            task.dispatched = True
            dispatch = {
                "kind": "dispatch",
                "task_id": task.task_id,
                "zone": task.zone,
                "dispatch_s": now,
            }
            await publish(self.js, "orch.result", dispatch, f"d.{task.task_id}")
        if assignment is not None:
            await self.send(assignment)

    async def send(self, assignment: Assignment[LiveTask]) -> None:
        """Put an assigned task on its agent's subject, then record the assignment.

        In that order: a takeover between the two finds the task unrecorded and
        places it again (run twice at worst, completed once), never recorded
        and missing.
        """
        task, agent_id = assignment.task, assignment.agent_id
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
        msg_id = f"t.{task.task_id}.{number}.{agent_id}"
        # The agent's zone's stream: a task moved across zones is a new message on another
        # stream, never a move inside one (what it left behind is purged with its agent).
        await publish(self.js, agent_subject(assignment.zone, agent_id), document, msg_id)
        record = {
            "kind": "assign",
            "task_id": task.task_id,
            "attempt": number,
            "agent": agent_id,
            "zone": assignment.zone,
            "assign_s": self.now(),
        }
        await publish(self.js, "orch.result", record, f"a.{task.task_id}.{number}")

    async def send_all(self, assignments: list[Assignment[LiveTask]]) -> None:
        for assignment in assignments:
            await self.send(assignment)

    async def reroute(self, tasks: list[LiveTask], agent_id: str) -> None:
        """Place again the tasks *agent_id* held when it died or went offline.

        Each goes again within the retry budget, avoiding the lost agent (the
        core's call); past the budget it fails for good, published as a
        result so the records show it.
        """
        for task in tasks:
            if task.done:
                continue
            if not self.dispatcher.retry(task, agent_id):
                await self.fail_for_good(task, agent_id, RETRIES_EXHAUSTED)
                continue
            assignment = self.dispatcher.route(task, self.now())
            if assignment is not None:
                await self.send(assignment)

    async def fail_for_good(self, task: LiveTask, agent_id: str, reason: str) -> None:
        """The task's end: a failed result under the next attempt number, with its reason."""
        now = self.now()
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
        }
        await publish(self.js, "orch.result", document, f"e.{task.task_id}.{task.attempts}")

    async def evacuate_stranded(self) -> None:
        """Queues of pools with no agent go to the nearest zone staffed for the category."""
        for zone, category in self.dispatcher.stranded_pools():
            moved = self.dispatcher.evacuate(zone, category)
            if moved:
                await self.event("pool_evacuated", zone, category=category, tasks=len(moved))
            for task in moved:
                assignment = self.dispatcher.route(task, self.now())
                if assignment is not None:
                    await self.send(assignment)

    async def on_result(self, doc: dict[str, Any]) -> None:
        kind = doc["kind"]
        task_id = int(doc["task_id"])
        task = self.tasks.get(task_id)
        if kind == "dispatch":
            if task is not None:
                task.dispatched = True
            return
        if kind == "assign":
            if self._catching_up:
                number = int(doc["attempt"])
                known = self._recovered.get(task_id)
                if known is None or known[1] <= number:
                    self._recovered[task_id] = (str(doc["agent"]), number)
            return  # live, this coordinator booked it when it sent it
        key = (task_id, int(doc["attempt"]))
        if kind == "start":
            self.in_flight[key] = (doc["agent"], doc["zone"], float(doc["start_s"]))
            if self._catching_up:
                known = self._recovered.get(task_id)
                if known is None or known[1] <= key[1]:
                    self._recovered[task_id] = (str(doc["agent"]), key[1])
            if task is not None:
                task.attempts = max(task.attempts, key[1] + 1)
                if not task.done:
                    self.dispatcher.started(task, doc["agent"])
            if task is not None and not task.started:
                task.started = True
                self.counters.started += 1
                self.counters.wait_sum += float(doc["start_s"]) - task.arrival_s
            return
        self.in_flight.pop(key, None)
        self.counters.busy_s += float(doc["end_s"]) - float(doc["start_s"])
        if not self._catching_up:
            await self.send_all(self.dispatcher.ended(task_id, doc["agent"]))
        if task is None:  # finished before this coordinator saw its submission (catch-up)
            self._pending_done.add(task_id)
            self._recovered.pop(task_id, None)
            return
        if task.done:
            self.counters.duplicates += 1  # a redelivered task that had finished: not again
            return
        task.done = True
        zone = doc["zone"]
        latency = float(doc["end_s"]) - task.arrival_s
        wait = float(doc["start_s"]) - task.arrival_s
        if doc["outcome"] == "completed":
            self.counters.completed += 1
            if self.breakers is not None:
                self.breakers.record_success(zone, self.now())
            self.latencies.append(latency)
            if zone in self.zones:
                self.collector.task_finished(zone, latency, wait)
        else:
            self.counters.failed += 1
            if zone in self.zones:
                self.collector.task_finished(zone, latency, wait, failed=True)
        if task.job_id >= 0 and task.job_id in self.jobs:
            job = self.jobs[task.job_id]
            for node in job.progress.complete(task.node):
                released = self.tasks[job.tasks[node]]
                # A node arrives when it is released, as in the simulator: its wait (and the
                # autoscaler's avg_response_time) starts then, not at the job's arrival.
                released.arrival_s = self.now()
                await self.dispatch(released)

    # ------------------------------------------------------------------ health

    async def check_health(self) -> None:
        """One round of health checks: an agent is ok when its heartbeat is fresh.

        Pool membership follows: a new agent joins the balancer (and its free
        slots take queued work), one that is declared dead or goes offline
        leaves it, and the tasks it held are placed anew.
        """
        now = self.now()
        interval_wall = self.scenario.health.interval / self.config.clock.scale
        try:
            keys = await self.registry.keys()
        except Exception as exc:
            if "no keys" not in str(exc).lower():
                return  # broker unavailable: no verdicts on missing data
            keys = []
        seen: set[str] = set()
        for key in sorted(keys):  # join order is round robin's order: make it reproducible
            with contextlib.suppress(KeyNotFoundError):
                entry = await self.registry.get(key)
                doc = decode(entry.value or b"{}")
                seen.add(key)
                view = self.agents.get(key)
                beat_wall = float(doc["wall"])
                if view is None:
                    if doc["status"] == "offline":
                        continue  # an agent that left before this coordinator saw it
                    view = AgentView(key, doc["zone"], doc["category"])
                    view.slots = int(doc.get("slots", 1))
                    view.speed = float(doc.get("speed", 1.0))
                    view.last_beat_wall = beat_wall
                    self.agents[key] = view
                    self.requested.pop(key, None)
                    await self.event("agent_joined", key, zone=view.zone, category=view.category)
                    await self.send_all(self.dispatcher.join(self._info(view)))
                view.status, view.in_flight = doc["status"], int(doc["in_flight"])
                view.slots = int(doc.get("slots", 1))
                view.last_beat_wall = max(view.last_beat_wall, beat_wall)
        for view in list(self.agents.values()):
            if view.status == "offline":
                if view.healthy:
                    view.healthy = False
                    await self.event("agent_left", view.agent_id, reason="drained")
                    await self._agent_gone(view)
                continue
            # Agents beat twice per interval: a beat older than 3/4 of one is a failed check.
            fresh = time.time() - view.last_beat_wall <= interval_wall * 0.75
            ok = fresh and view.agent_id in seen
            transition = self.detector.observe(view.agent_id, now, ok)
            if transition is not None and not ok and view.healthy:
                view.healthy = False
                last_s = (view.last_beat_wall - self.config.clock.epoch) * self.config.clock.scale
                held = self.dispatcher.load(view.agent_id)
                if self.breakers is not None:
                    self.breakers.record_failure(view.zone, self.now())
                await self.event(
                    "agent_detected",
                    view.agent_id,
                    detect_s=now - last_s,
                    redistributed=held,
                    zone=view.zone,
                )
                await self._agent_gone(view)
            elif (
                ok
                and not view.healthy
                and view.zone not in self.router.down
                and self.detector.state(view.agent_id) is HealthState.HEALTHY
            ):
                view.healthy = True  # back under the same id (restarted): a pool member again
                view.draining = False
                await self.event("agent_rejoined", view.agent_id, zone=view.zone)
                await self.send_all(self.dispatcher.join(self._info(view)))

    async def check_zones(self) -> None:
        """Zones declared dark (chaos ``zone_outage``): route around them until they are back.

        A zone going down takes its agents out of their pools at once and
        places what they held and what waited in its queues elsewhere, as the
        simulator's failover does when a zone is declared dead.
        """
        try:
            entry = await self.lease.get(ZONES_DOWN_KEY)
            down = set(decode(entry.value or b"{}").get("zones", []))
        except KeyNotFoundError:
            down = set()
        for zone in sorted(down - self.router.down):
            if zone not in self.zones:
                continue
            self.router.mark_down(zone)
            await self.event("zone_down", zone)
            for view in [a for a in self.agents.values() if a.zone == zone and a.healthy]:
                view.healthy = False
                await self._agent_gone(view)
            await self.evacuate_stranded()
        for zone in sorted(self.router.down - down):
            self.router.mark_up(zone)
            await self.event("zone_up", zone)  # its agents rejoin as their heartbeats resume

    def _info(self, view: AgentView) -> AgentInfo:
        return AgentInfo(
            view.agent_id,
            view.category,
            view.zone,
            speed=view.speed,
            slots=view.slots,
            capacity=view.slots + self.queue_limit,
        )

    async def _agent_gone(self, view: AgentView) -> None:
        """Dead or offline: nothing more reaches its subject; what it held goes elsewhere."""
        orphans = self.dispatcher.gone(view.agent_id)
        await self.reroute(orphans, view.agent_id)
        await self.evacuate_stranded()
        # Best effort: left behind, the tasks would only run again should the agent come
        # back under its id, and a second end of a task is ignored.
        with contextlib.suppress(Exception):
            await retire_agent_queue(self.js, view.zone, view.agent_id)

    # ------------------------------------------------------------------ scaling

    def _serving(self) -> list[AgentView]:
        return [a for a in self.agents.values() if a.healthy and not a.draining]

    def observe(self, now: float) -> FleetObservation:
        window = self.scenario.scaling.metric_window
        while len(self._readings) > 1 and self._readings[1][0] <= now - window + 1e-9:
            self._readings.popleft()
        start, busy0, waits0, started0, submitted0 = self._readings[0]
        span = max(now - start, 1e-9)
        serving = self._serving()
        slots = sum(a.slots for a in serving)
        busy_now = sum(now - s for _, _, s in self.in_flight.values())
        busy = self.counters.busy_s + busy_now - busy0
        started = self.counters.started - started0
        queued = self.queue_depth()
        return FleetObservation(
            agents=len(serving) + len(self.requested),
            ready=len(serving),
            starting=len(self.requested),
            queue_depth=float(queued),
            avg_response_time_s=(self.counters.wait_sum - waits0) / started if started else 0.0,
            cpu_utilization=min(1.0, busy / (span * slots)) if slots else 0.0,
            idle_fraction=sum(1 for a in serving if a.in_flight == 0) / len(serving)
            if serving
            else 0.0,
            in_flight=float(len(self.in_flight)),
            arrival_rate=(self.counters.submitted - submitted0) / span,
        )

    def queue_depth(self) -> int:
        return sum(1 for t in self.tasks.values() if t.dispatched and not t.started and not t.done)

    async def evaluate(self, at: float | None = None) -> None:
        now = self.now() if at is None else at
        self._now = max(self._now, now)
        observation = self.observe(now)
        decision = self.autoscaler.decide(observation, now)
        busy_now = sum(now - s for _, _, s in self.in_flight.values())
        c = self.counters
        self._readings.append((now, c.busy_s + busy_now, c.wait_sum, c.started, c.submitted))
        if decision.delta == 0:
            return
        pools = self._pools()
        done = 0
        if decision.delta > 0:
            for zone, category in place_agents(decision.delta, pools):
                spec = AgentSpec(f"{zone}-{category}-s{secrets.token_hex(3)}", zone, category)
                self.provisioner.start(spec)
                self.requested[spec.agent_id] = spec
                await self.event("agent_requested", spec.agent_id, zone=zone, category=category)
                done += 1
        else:
            for zone, category in pick_drains(-decision.delta, pools):
                chosen = self.dispatcher.drain_choice(zone, category)  # the idlest
                if chosen is None:
                    continue
                agent = self.agents[chosen]
                agent.draining = True
                self.dispatcher.drain(agent.agent_id)
                await self.nc.publish(control_subject(agent.agent_id), b"drain")
                await self.event("agent_draining", agent.agent_id, reason=decision.policy)
                done -= 1
        await self.event(
            "scale",
            decision.policy,
            delta=done,
            asked=decision.delta,
            target=decision.target,
            reason=decision.reason,
        )

    def _pools(self) -> list[PoolLoad]:
        loads: dict[tuple[str, str], list[int]] = {}
        for a in self._serving():
            entry = loads.setdefault((a.zone, a.category), [0, 0])
            entry[0] += 1
            entry[1] += a.in_flight
        starting: dict[tuple[str, str], int] = {}
        for spec in self.requested.values():
            starting[spec.zone, spec.category] = starting.get((spec.zone, spec.category), 0) + 1
        queued: dict[tuple[str, str], int] = {}
        for t in self.tasks.values():
            if t.dispatched and not t.started and not t.done:
                where = t.zone or t.home_zone
                queued[where, t.category] = queued.get((where, t.category), 0) + 1
        return [
            PoolLoad(
                z,
                c,
                loads.get((z, c), [0, 0])[0],
                starting.get((z, c), 0),
                loads.get((z, c), [0, 0])[1],
                queued.get((z, c), 0),
            )
            for z in self.zones
            for c in self.categories
        ]

    # ------------------------------------------------------------------ metrics and alerts

    def snapshots(self) -> list[ZoneSnapshot]:
        out = []
        for zone in self.zones:
            members = [a for a in self.agents.values() if a.zone == zone]
            serving = [a for a in members if a.healthy]
            queued = sum(
                1
                for t in self.tasks.values()
                if (t.zone or t.home_zone) == zone and t.dispatched and not t.started and not t.done
            )
            held = sum(a.in_flight for a in serving)
            out.append(
                ZoneSnapshot(
                    zone=zone,
                    total_agents=len(serving),
                    active_agents=len(serving),
                    busy_agents=sum(1 for a in serving if a.in_flight > 0),
                    queue_depth=queued,
                    in_flight=held,
                    in_system=held + queued,
                    slots=sum(a.slots for a in serving),
                    busy_slots=min(held, sum(a.slots for a in serving)),
                    offline_agents=sum(1 for a in members if not a.healthy),
                )
            )
        return out

    async def sample(self, at: float | None = None) -> None:
        now = self.now() if at is None else at
        self._now = max(self._now, now)
        row = self.collector.sample(now, self.snapshots())
        rows = list(self.collector.recent(1 + len(self.zones), "zone"))
        for r in [row, *rows[-len(self.zones) :]]:
            await publish(self.js, "orch.metric", {k: _plain(v) for k, v in r.items()})
        for event in self.alerts.evaluate(now, alert_sample(row, self.control_agents)):
            await self.event(
                "alert",
                event.name,
                state=event.state,
                severity=event.severity,
                action=event.action,
                value=event.value,
                metric=event.metric,
            )
            if event.state != "firing":
                continue
            if event.action == "scale_up_immediate" and self.config.autoscale:
                self.autoscaler.force_scale_up(now, f"alert {event.name}")
                await self.evaluate(now)
            elif event.action in ("page_oncall", "notify_slack") and self.config.webhook_url:
                payload = {
                    "alert": event.name,
                    "action": event.action,
                    "severity": event.severity,
                    "metric": event.metric,
                    "value": event.value,
                    "time_s": now,
                }
                await asyncio.to_thread(post_webhook, self.config.webhook_url, payload)
                self.webhooks_sent.append(payload)


class LeaseLost(Exception):
    """Another coordinator holds the lease now: stop acting at once."""


def post_webhook(url: str, payload: dict[str, Any]) -> None:
    """POST *payload* as JSON to the configured URL (never anywhere else)."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
    except OSError as exc:
        print(f"webhook {url}: {exc}")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
