"""Control traffic: every message the hierarchy sends, and the coordinators that process them.

Scenario: each chief, zone coordinator and team lead handles its messages one
after another at the rate its vCPUs allow (``vcpu * 1000 / message_cpu_ms``
messages per second). A message that reaches a busy coordinator waits its
turn, so at scale a coordinator's queue adds delay to every dispatch that
passes through it. Task traffic (TASK_ASSIGN, TASK_COMPLETE, TASK_FAILED,
ESCALATION, work pulls) is charged message by message; the periodic traffic
(HEARTBEAT from every agent, STATUS_REQUEST/STATUS_RESPONSE from each
coordinator polling the ones below it) is steady and large in number, so it
is charged as a background load that takes its share of the coordinator's
capacity rather than as millions of events: the task messages see a
coordinator whose free capacity is what the background leaves.

A coordinator is one queue in front of its pooled vCPUs (service time
``message_cpu_ms / vcpu``): the fast-single-server reading of a multi-core
process with one work queue. Messages are charged in the order they are sent,
at their arrival time, which is first come, first served except for the rare
message overtaking another on the wire.

With ``design: flat`` there are no zone coordinators or team leads in the
message path: the chief handles every assignment, completion, pull,
heartbeat and status poll itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

from sim.metrics.traffic import CoordinatorRow, TrafficRow
from sim.scenario.schema import Scenario
from sim.world.network import MessageType, PathKind


class Coordinator:
    """One coordinator's queue: when it is next free, and what it has done."""

    __slots__ = ("background", "base_cost", "cost", "free_at", "handled", "name", "waited")

    def __init__(self, name: str, seconds_per_message: float) -> None:
        self.name = name
        self.base_cost = seconds_per_message
        #: Seconds a task message occupies the coordinator, stretched by the background load.
        self.cost = seconds_per_message
        #: Background messages per second (heartbeats and status polls).
        self.background = 0.0
        self.free_at = 0.0
        #: Task messages processed, and their summed seconds in the queue (before service).
        self.handled = 0
        self.waited = 0.0

    def through(self, now: float) -> float:
        """A task message arrives *now*: seconds until it has been processed."""
        start = self.free_at if self.free_at > now else now
        self.free_at = start + self.cost
        self.handled += 1
        self.waited += start - now
        return self.free_at - now

    def through_chain(
        self, now: float, first: Coordinator | None, second: Coordinator | None
    ) -> float:
        """A message through *first*, then *second* (either may be absent), then this one.

        The report path up the hierarchy: each arrives when the one before has
        processed it.
        """
        at = now
        # Coordinator.through, inlined for the (up to) three hops of every report.
        for q in (first, second, self):
            if q is not None:
                start = q.free_at if q.free_at > at else at
                q.free_at = start + q.cost
                q.handled += 1
                q.waited += start - at
                at = q.free_at
        return at - now

    def set_background(self, per_second: float) -> None:
        """The steady traffic now takes *per_second* messages' worth of capacity."""
        self.background = per_second
        share = per_second * self.base_cost
        # Saturated by the background alone: task messages crawl (a bounded stand-in for
        # "never", so the run shows the collapse instead of dividing by zero).
        self.cost = self.base_cost / max(1.0 - share, 1e-3)


class Kind(IntEnum):
    """(message type, path) pairs that task traffic uses; indexes into the counters."""

    ASSIGN_GRPC = 0
    ASSIGN_NATS = 1
    COMPLETE_GRPC = 2
    FAILED_GRPC = 3
    ESCALATION_GRPC = 4
    ESCALATION_NATS = 5
    DATA_TCP = 6
    DATA_NATS = 7
    BROADCAST_REDIS = 8


KIND_LABELS: dict[Kind, tuple[str, str]] = {
    Kind.ASSIGN_GRPC: (MessageType.TASK_ASSIGN.value, PathKind.GRPC.value),
    Kind.ASSIGN_NATS: (MessageType.TASK_ASSIGN.value, PathKind.NATS.value),
    Kind.COMPLETE_GRPC: (MessageType.TASK_COMPLETE.value, PathKind.GRPC.value),
    Kind.FAILED_GRPC: (MessageType.TASK_FAILED.value, PathKind.GRPC.value),
    Kind.ESCALATION_GRPC: (MessageType.ESCALATION.value, PathKind.GRPC.value),
    Kind.ESCALATION_NATS: (MessageType.ESCALATION.value, PathKind.NATS.value),
    Kind.DATA_TCP: ("data", PathKind.DIRECT_TCP.value),
    Kind.DATA_NATS: ("data", PathKind.NATS.value),
    Kind.BROADCAST_REDIS: ("broadcast", PathKind.REDIS_PUBSUB.value),
}


class Traffic:
    """The message counters and the coordinators' queues of one run."""

    def __init__(
        self, scenario: Scenario, zones: Sequence[str], teams: dict[str, tuple[str, ...]]
    ) -> None:
        spec = scenario.coordination
        resources = scenario.topology.resources
        cpu_s = spec.message_cpu_ms / 1000.0
        self.flat = spec.design == "flat"
        self.enabled = spec.capacity
        self.status_interval = spec.status_interval
        self.heartbeat_interval = scenario.health.interval
        self.sizes = spec.message_bytes
        #: Seconds a freed slot's pull of queued work takes beyond the model's (calibrated).
        self.handoff_s = spec.handoff_overhead
        chief_vcpu = spec.chief_vcpu or resources.coordinator.base.vcpu
        zone_vcpu = spec.zone_vcpu or resources.coordinator.base.vcpu
        lead_vcpu = spec.team_lead_vcpu or resources.team_lead.base.vcpu
        self.chief = Coordinator("chief", cpu_s / chief_vcpu)
        self.zones: dict[str, Coordinator] = {}
        self.leads: dict[str, Coordinator] = {}
        if not self.flat:
            self.zones = {z: Coordinator(f"{z}-coord", cpu_s / zone_vcpu) for z in zones}
            self.leads = {
                team: Coordinator(team, cpu_s / lead_vcpu)
                for zone in zones
                for team in teams.get(zone, ())
            }
        self.counts = [0] * len(Kind)
        self.data_bytes = {Kind.DATA_TCP: 0.0, Kind.DATA_NATS: 0.0}
        self._last_counts = [0] * len(Kind)
        self._last_data = dict(self.data_bytes)
        self._last_handled: dict[str, int] = {}
        self._last_waited: dict[str, float] = {}
        self._last_time = 0.0
        self._team_zone = {team: zone for zone in zones for team in teams.get(zone, ())}
        #: Background messages per second, by kind (set by fleet_changed).
        self._heartbeats = 0.0
        self._status = 0.0

    # ------------------------------------------------------------------ who handles what

    def zone_coordinator(self, zone: str) -> Coordinator | None:
        """The zone's coordinator, or None when it is not in the message path (flat, or off)."""
        if not self.enabled or self.flat:
            return None
        return self.zones[zone]

    def team_lead(self, team: str) -> Coordinator | None:
        """A team's lead, or None when it is not in the message path (flat, or capacity off)."""
        if not self.enabled or self.flat:
            return None
        return self.leads.get(team)

    def data_moved(self, data_mb: float, same_zone: bool) -> None:
        """A DAG edge's data went between agents: direct TCP in a zone, NATS across."""
        kind = Kind.DATA_TCP if same_zone else Kind.DATA_NATS
        self.counts[kind] += 1
        self.data_bytes[kind] += data_mb * 1e6

    def broadcast(self, zones: int) -> None:
        """One Redis pub/sub broadcast, delivered to every zone."""
        self.counts[Kind.BROADCAST_REDIS] += zones

    def chief_queue(self) -> Coordinator | None:
        return self.chief if self.enabled else None

    def coordinators(self) -> list[tuple[str, Coordinator]]:
        """(role, coordinator) pairs, chief first."""
        found = [("chief", self.chief)]
        found += [("zone", c) for c in self.zones.values()]
        found += [("team_lead", c) for c in self.leads.values()]
        return found

    # ------------------------------------------------------------------ background

    def fleet_changed(self, members: dict[str, int], per_zone: dict[str, int]) -> None:
        """Recompute the steady traffic from the specialists alive per team and per zone.

        Heartbeats: every specialist to its zone coordinator, and every zone
        coordinator to the chief, once per health interval. Status polls: every
        coordinator asks each one below it on the status interval (a request
        and a response). Flat: all of it lands on the chief.
        """
        beat = 1.0 / self.heartbeat_interval
        poll = 2.0 / self.status_interval
        agents = sum(per_zone.values())
        if self.flat:
            self.chief.set_background(agents * (beat + poll))
            self._heartbeats = agents * beat
            self._status = agents * poll
            return
        leads_per_zone: dict[str, int] = {}
        for team, lead in self.leads.items():
            lead.set_background(members.get(team, 0) * poll)
            zone = self._team_zone[team]
            leads_per_zone[zone] = leads_per_zone.get(zone, 0) + 1
        for zone, coord in self.zones.items():
            coord.set_background(per_zone.get(zone, 0) * beat + leads_per_zone.get(zone, 0) * poll)
        zones = len(self.zones)
        self.chief.set_background(zones * (beat + poll))
        self._heartbeats = (agents + zones) * beat
        self._status = (agents + len(self.leads) + zones) * poll

    # ------------------------------------------------------------------ sampling

    def completed(self, total: int) -> None:
        """Tasks completed so far: each reported TASK_COMPLETE up three gRPC hops.

        Counted from the dispatcher's total at each sample rather than per task:
        it is exact, and it keeps a counter off the hottest path.
        """
        self.counts[Kind.COMPLETE_GRPC] = 3 * total

    def sample(self, now: float) -> tuple[list[TrafficRow], list[CoordinatorRow]]:
        """Messages and coordinator load since the last sample."""
        span = max(now - self._last_time, 1e-9)
        self._last_time = now
        rows: list[TrafficRow] = []
        for kind, (type_, path) in KIND_LABELS.items():
            count = self.counts[kind] - self._last_counts[kind]
            size: float
            if kind in self.data_bytes:
                size = self.data_bytes[kind] - self._last_data[kind]
            else:
                size = float(count * self.sizes[type_])
            rows.append(TrafficRow(type_, path, float(count), float(size)))
        self._last_counts = list(self.counts)
        self._last_data = dict(self.data_bytes)
        background = {
            MessageType.HEARTBEAT.value: self._heartbeats * span,
            MessageType.STATUS_REQUEST.value: self._status * span / 2,
            MessageType.STATUS_RESPONSE.value: self._status * span / 2,
        }
        for type_, amount in background.items():
            rows.append(TrafficRow(type_, PathKind.GRPC.value, amount, amount * self.sizes[type_]))
        coords: list[CoordinatorRow] = []
        for role, coord in self.coordinators():
            handled = coord.handled - self._last_handled.get(coord.name, 0)
            waited = coord.waited - self._last_waited.get(coord.name, 0.0)
            self._last_handled[coord.name] = coord.handled
            self._last_waited[coord.name] = coord.waited
            busy = handled * coord.base_cost + coord.background * span * coord.base_cost
            coords.append(
                CoordinatorRow(
                    name=coord.name,
                    role=role,
                    utilization=busy / span,
                    messages=handled + coord.background * span,
                    queue_delay_s=waited / handled if handled else 0.0,
                )
            )
        return rows, coords
