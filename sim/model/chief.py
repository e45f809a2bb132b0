"""The chief coordinator: commit a task to the log, route it to a zone, send it again.

Scenario: a task reaches the chief coordinator. The Raft leader appends it
to its log (the WAL; while the group is healthy that is a fixed commit
delay, otherwise the task waits for a leader), then sends it over gRPC, as a
TASK_ASSIGN message with a TTL, to the zone the router picks. A message lost
(chaos) is sent again after the TTL; one that arrives expired is sent again
up to the network's resend limit. A zone whose coordinator does not answer
strands what reaches it until the failover declares the zone; with circuit
breakers the chief stops calling it sooner and routes around it. A task
whose attempt died with its agent comes back here to be dispatched again,
within its retry budget.

The zone is the dispatch core's choice (``sim.policies.dispatch``); this
module keeps time and counts messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import simpy

from sim.metrics.records import EventLog
from sim.model.breakers import CallBreakers
from sim.model.calls import Call
from sim.model.ledger import Ledger
from sim.model.task import Task
from sim.model.traffic import Coordinator, Kind
from sim.model.zone_dispatch import ZoneDispatch
from sim.model.zone_state import ZoneState
from sim.policies.dispatch import RETRIES_EXHAUSTED, DispatchCore, ZoneCall
from sim.policies.keyed_draws import task_key
from sim.world.network import AgentMessage, MessageType, Network

if TYPE_CHECKING:
    from sim.model.control_plane import ControlPlane
    from sim.model.staging import StagedDags

_ASSIGN_GRPC = int(Kind.ASSIGN_GRPC)


class Chief:
    """The chief coordinator's side of dispatch, in simulated time."""

    def __init__(
        self,
        env: simpy.Environment,
        network: Network,
        core: DispatchCore[Any],
        zones: dict[str, ZoneState],
        zone_dispatch: ZoneDispatch,
        breakers: CallBreakers,
        ledger: Ledger,
        events: EventLog,
        msgs: list[int],
        queue: Coordinator | None,
        overhead: Callable[[float], float] | None = None,
        loss_seed: int = 0,
    ) -> None:
        self.env = env
        self.net = network
        self.core = core
        self.zones = zones
        self.zone_dispatch = zone_dispatch
        self.breakers = breakers
        self.ledger = ledger
        self.events = events
        self._msgs = msgs
        #: The chief's own message queue (None: not modelled).
        self._queue = queue
        #: Each submission's draw of ``coordination.dispatch_overhead`` (None: none).
        self.overhead = overhead
        #: The Raft group whose leader commits each task first (None: no control plane).
        self.control_plane: ControlPlane | None = None
        #: Planned DAG dispatch (None: every DAG node is released and placed dynamically).
        self.staging: StagedDags | None = None
        self.resend_limit = network.resend_limit
        #: Each zone coordinator's address, spelled once rather than per message sent.
        self._coord_names = {name: f"{name}-coord" for name in zones}
        #: When the link to each zone delivers the last message sent on it. The chief works
        #: through its messages in order and each zone's link delivers in order (one gRPC
        #: connection), so a message never overtakes the one sent before it, however the
        #: jitter falls: a DAG node's successors released at one instant reach their zone in
        #: the order released, as live's do. (The dispatch overhead is not on the link.)
        self._link_delivers = dict.fromkeys(zones, 0.0)
        #: The run's key for message-loss draws (``policy_set.fault_seed``): keyed by the
        #: task, as live's are.
        self._loss_seed = loss_seed

    def submit(self, task: Task, now: float) -> None:
        """A task reaches the chief: the leader commits it to the log, then routes it over gRPC."""
        self.ledger.live[task.id] = task
        plane = self.control_plane
        if plane is not None and plane.detailed:
            plane.hold(task)  # no healthy leader: dispatch waits
            return
        if self.overhead is not None:
            # Charged after the zone places it (``ZoneDispatch.receive``), not on the link:
            # live's spread is its agents' processes waking, each on its own, after the
            # coordinator decided in order; on the ordered link one slow draw would hold
            # every task behind it.
            task.spread = self.overhead(now)
        self.send(task, now, 0.0 if plane is None else plane.steady_commit_s)

    def send(self, task: Task, now: float, extra: float = 0.0, zone: str = "") -> None:
        """Send TASK_ASSIGN to *zone* (default: the core's pick), *extra* s of commit on top.

        *now* is the simulated time, passed by the caller that already read it
        (one read of the clock fewer per task on the hot path).
        """
        if not zone:
            zone = self.core.home_zone(task, now)
        task.zone = zone
        self._msgs[_ASSIGN_GRPC] += 1
        if self._queue is not None:
            extra += self._queue.through(now)
        net = self.net
        if net.loss_rate and self._lost(task, zone):
            # Chaos message loss: no acknowledgement comes; the chief sends again after the TTL.
            self.ledger.in_transit += 1
            self.ledger.resent += 1
            self.env.timeout(net.ttl, task).callbacks.append(self._resend)
            return
        latency = (net.chief_to_zone(zone) if net.enabled else 0.0) + extra
        delivers = self._link_delivers
        if now + latency < delivers[zone]:
            latency = delivers[zone] - now
        delivers[zone] = now + latency
        if latency <= 0:
            if self._answered(task, now):  # (no time passes, but a dark zone still fails it)
                self.zone_dispatch.receive(task, zone, now)
            return
        message = AgentMessage(
            MessageType.TASK_ASSIGN, "chief", self._coord_names[zone], task, now, net.ttl
        )
        self.ledger.in_transit += 1
        Call(self.env, latency, message, self._delivered_to_zone)

    def _lost(self, task: Task, zone: str) -> bool:
        """Chaos message loss: this send of *task* to *zone* is lost (the network's keyed
        draw, the one live's coordinator makes)."""
        key = task_key(self._loss_seed, task.arrival, task.job_id, task.node)
        return self.net.lost(zone, key, task.id)

    def _resend(self, event: simpy.Event) -> None:
        self.ledger.in_transit -= 1
        self.send(cast(Task, event.value), self.env.now)

    def _delivered_to_zone(self, event: Call) -> None:
        message: AgentMessage = event.payload
        task: Task = message.payload  # type: ignore[assignment]  # (typing.cast is a call)
        now = self.env.now
        ledger = self.ledger
        ledger.in_transit -= 1
        if not self._answered(task, now):
            return
        if message.expired(now):
            # The chief hears no acknowledgement and sends the task again.
            ledger.expired += 1
            self.events.add(now, "message_expired", message.to, task=task.id)
            if task.attempt > self.resend_limit:
                ledger.fail(task, "ttl_expired")
                return
            ledger.retried += 1
            task.attempt += 1
            self.send(task, now)
            return
        self.zone_dispatch.receive(task, task.zone, now)

    def _answered(self, task: Task, now: float) -> bool:
        """The chief's call reaches the task's zone: True when its coordinator answers.

        The zone gate's verdict (``sim.policies.dispatch.zones``); a failed
        call is acted on here (:meth:`_zone_call_failed`).
        """
        zone = self.zones[task.zone]
        gate = self.core.zones
        call = gate.reach(zone.name, now)
        if call is not None:
            self._zone_call_failed(zone, task, call, now)
            return False
        if zone.name in gate.breaker_zones:
            self.breakers.drain()  # (an answer may have closed a half-open breaker)
        return True

    def _zone_call_failed(self, zone: ZoneState, task: Task, call: ZoneCall, now: float) -> None:
        """The chief's call to a silent zone coordinator failed: act on the gate's verdict.

        Opened: what waited at the door goes elsewhere, the probe is timed;
        refused: this task goes elsewhere too; else it waits at the door
        (re-driven when the zone is declared dead, or delivered when it is back).
        """
        if self.breakers.board is not None:
            self.breakers.drain()
        if call.opened:
            stranded, zone.stranded = zone.stranded, []
            for waiting in stranded:
                self.send(waiting, now)
            assert call.probe_after_s is not None
            self.env.timeout(call.probe_after_s, zone).callbacks.append(self._zone_probe)
        if call.refused and self.core.home_zone(task, now) != zone.name:
            self.send(task, now)  # the breaker is open: route around the zone now
        else:
            # Nobody answers (or every zone refuses): re-driven at detection.
            zone.stranded.append(task)

    def _zone_probe(self, event: simpy.Event) -> None:
        """Half-open: let the chief try the zone again, unless its failure is already known."""
        zone = cast(ZoneState, event.value)
        # (Nothing when the health checks declared it: failover owns the routing now.)
        if self.core.zones.probe(zone.name, self.env.now):
            self.breakers.drain()

    # ------------------------------------------------------------------ work coming back

    def retry(self, task: Task, agent_id: str, reason: str, *, counted: bool = True) -> bool:
        """An attempt died with its agent: record it, then dispatch again within the budget.

        Whether it goes again is the core's call; returns False when the
        budget is spent and the task has failed for good. Not *counted* (a
        spot reclaim: not the task's fault), it always goes again, off budget.
        """
        if task.id not in self.ledger.live:
            return False  # a planned node its job's failure already took back (sim.model.staging)
        now = self.env.now
        served = (now - task.start) if task.start >= 0 else 0.0
        if task.enqueued >= 0:
            task.queued += now - task.enqueued
            task.enqueued = -1.0
        self.ledger.task_log.record(task, "retried", now, now, served, reason)
        if not counted:
            self.core.requeue(task, agent_id)
        elif not self.core.retry(task, agent_id):
            self.ledger.fail(task, RETRIES_EXHAUSTED)
            return False
        self.ledger.retried += 1
        task.dispatch = -1.0
        task.start = -1.0
        task.transfer = 0.0
        task.agent = ""
        if task.planned is not None:
            assert self.staging is not None
            if self.staging.lost(task):
                return True  # parked at the chief until its predecessors have reported
        self.send(task, now)
        return True

    def evacuate(self, zone_name: str) -> int:
        """The zone's coordinator is declared dead: send its waiting tasks elsewhere."""
        zone = self.zones[zone_name]
        moved: list[Task] = sorted(
            [*zone.stranded, *self.core.evacuate(zone_name)], key=lambda t: t.id
        )
        zone.stranded.clear()
        now = self.env.now
        for task in moved:
            if task.enqueued >= 0:
                task.queued += now - task.enqueued
                task.enqueued = -1.0
            self.send(task, now)
        return len(moved)

    def set_down(self, zone_name: str, down: bool) -> None:
        """The zone's coordinator becomes unreachable (or reachable): its queue with it."""
        self.zones[zone_name].down = down
        self.core.mark_dark(zone_name, down)

    def release_stranded(self, zone_name: str) -> None:
        """The zone is back before anyone noticed: deliver what waited at its door."""
        zone = self.zones[zone_name]
        stranded, zone.stranded = zone.stranded, []
        now = self.env.now
        for task in stranded:
            self.zone_dispatch.receive(task, zone_name, now)
