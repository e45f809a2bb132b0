"""The network: latency of each communication path of the spec, and message expiry.

Scenario: a task assignment leaves the chief over gRPC to its zone
coordinator, then over gRPC through a team lead to a specialist; a
specialist reports back the same way. Agents in one zone exchange data over
direct TCP, agents in different zones through NATS (one broker hop plus the
inter-region distance); broadcasts go over Redis pub/sub. One way on a path
costs the path's overhead plus half the round trip between the two regions,
times a lognormal jitter, plus payload over the path's bandwidth.

Latencies between fixed endpoints are precomputed once; the hot path pays a
table lookup and one jitter draw. With ``network.enabled: false`` every
latency is exactly zero and the shell skips the hop altogether.
"""

from __future__ import annotations

import itertools
from enum import StrEnum

import numpy as np

from sim.policies.keyed_draws import loss_draw, transfer_jitter
from sim.scenario.schema import Network as NetworkSpec
from sim.scenario.schema import Scenario
from sim.world.streams import Batched


class MessageType(StrEnum):
    """The spec's message types (section 8.1)."""

    TASK_ASSIGN = "task_assign"
    TASK_COMPLETE = "task_complete"
    TASK_FAILED = "task_failed"
    HEARTBEAT = "heartbeat"
    STATUS_REQUEST = "status_request"
    STATUS_RESPONSE = "status_response"
    ESCALATION = "escalation"


class PathKind(StrEnum):
    """The spec's communication paths (section 8.2)."""

    GRPC = "grpc"
    DIRECT_TCP = "direct_tcp"
    NATS = "nats"
    REDIS_PUBSUB = "redis_pubsub"


_ids = itertools.count(1)


class AgentMessage:
    """The spec's AgentMessage: what travels on a path, and when it stops being valid.

    A plain slotted class rather than a dataclass: one is built per dispatch hop.
    """

    __slots__ = ("id", "payload", "sender", "timestamp", "to", "ttl", "type")

    def __init__(
        self,
        type: MessageType,
        sender: str,
        to: str,  # an agent id, or "broadcast"
        payload: object,
        timestamp: float,
        ttl: float,
    ) -> None:
        self.id = next(_ids)
        self.type = type
        self.sender = sender
        self.to = to
        self.payload = payload
        self.timestamp = timestamp
        self.ttl = ttl

    def expired(self, now: float) -> bool:
        """A message older than its TTL is discarded on delivery, as a real bus would."""
        return now - self.timestamp > self.ttl


class Network:
    """One-way latencies in seconds between the fleet's endpoints."""

    def __init__(
        self,
        spec: NetworkSpec,
        regions: dict[str, str],
        chief_region: str,
        rng: np.random.Generator,
    ) -> None:
        self.enabled = spec.enabled
        self.ttl = spec.message_ttl
        self.resend_limit = spec.resend_limit
        self._spec = spec
        self._regions = regions
        self._chief_region = chief_region
        cv = spec.jitter_cv
        #: The jitter's log-sd (0: none), for the keyed draws of DAG transfers.
        self._sigma = float(np.sqrt(np.log1p(cv * cv))) if cv > 0 else 0.0
        if cv > 0:
            sigma = self._sigma
            self._jitter = Batched(lambda n: rng.lognormal(-sigma * sigma / 2, sigma, n))
        else:
            self._jitter = Batched(lambda n: np.ones(n))
        #: The jitter's buffer: each hop pops from it and calls the sampler only to refill.
        self._jitters = self._jitter.buffer
        zones = list(regions)
        grpc = spec.grpc.overhead_ms
        intra = spec.intra_region_rtt_ms
        # Precomputed means, in seconds.
        self._chief_to_zone = {z: self._one_way("grpc", chief_region, regions[z]) for z in zones}
        #: zone coordinator -> team lead -> specialist: two gRPC hops inside the region.
        self._zone_to_agent = 2 * (grpc + intra / 2) / 1000.0 if self.enabled else 0.0
        #: an idle agent asking its zone's queue for work: one gRPC round trip.
        self._pull = 2 * (grpc + intra / 2) / 1000.0 if self.enabled else 0.0
        self._cross = {
            (a, b): self._one_way("nats", regions[a], regions[b]) for a in zones for b in zones
        }
        self._report = {z: self._zone_to_agent + self._chief_to_zone[z] for z in zones}
        #: Chaos: latency multipliers per zone (empty when all is well) and message loss.
        self._factor: dict[str, float] = {}
        self.loss_rate = 0.0
        #: Zones whose chief -> zone path loses messages (empty: every path).
        self.loss_zones: frozenset[str] = frozenset()
        #: Task id -> loss draws made for it (its next draw's number).
        self._loss_draws: dict[int, int] = {}

    def spike(self, zones: list[str], factor: float) -> None:
        """Multiply latency on paths touching *zones* by *factor* (1.0 ends the spike)."""
        for zone in zones:
            if factor == 1.0:
                self._factor.pop(zone, None)
            else:
                self._factor[zone] = factor

    def lost(self, zone: str, key: int, task_id: int) -> bool:
        """Whether this dispatch message of the task *key* (id *task_id*) to *zone* is lost
        (chaos message loss): a draw keyed by the task and its count of draws so far
        (``keyed_draws.loss_draw``), so both shells, each counting here, lose the same
        messages.

        A path outside ``loss_zones`` is never lost and draws nothing.
        """
        if not self.loss_rate or (self.loss_zones and zone not in self.loss_zones):
            return False
        number = self._loss_draws.get(task_id, 0) + 1
        self._loss_draws[task_id] = number
        return loss_draw(key, number) < self.loss_rate

    # ------------------------------------------------------------------ means

    def _rtt_ms(self, region_a: str, region_b: str) -> float:
        rtt = self._spec.rtt_between(region_a, region_b)
        if rtt is None:
            raise ValueError(f"no RTT between {region_a} and {region_b}")
        return rtt

    def _one_way(self, path: str, region_a: str, region_b: str) -> float:
        if not self.enabled:
            return 0.0
        overhead = float(getattr(self._spec, path).overhead_ms)
        return (overhead + self._rtt_ms(region_a, region_b) / 2) / 1000.0

    # ------------------------------------------------------------------ draws

    def chief_to_zone(self, zone: str) -> float:
        """Dispatch hop: chief coordinator to a zone coordinator (gRPC)."""
        mean = self._chief_to_zone[zone]
        if self._factor:
            mean *= self._factor.get(zone, 1.0)
        if not mean:
            return 0.0
        jitters = self._jitters
        return mean * (jitters.pop() if jitters else self._jitter())

    def zone_to_agent(self, zone: str = "") -> float:
        """Dispatch hops: zone coordinator through a team lead to a specialist (gRPC)."""
        mean = self._zone_to_agent
        if self._factor:
            mean *= self._factor.get(zone, 1.0)
        if not mean:
            return 0.0
        jitters = self._jitters
        return mean * (jitters.pop() if jitters else self._jitter())

    def cross_zone(self, from_zone: str, to_zone: str) -> float:
        """A message between zones: through NATS, paying the inter-region distance."""
        mean = self._cross[from_zone, to_zone]
        if self._factor:
            mean *= max(self._factor.get(from_zone, 1.0), self._factor.get(to_zone, 1.0))
        if not mean:
            return 0.0
        jitters = self._jitters
        return mean * (jitters.pop() if jitters else self._jitter())

    def pull(self, agent_zone: str, queue_zone: str) -> float:
        """An idle agent fetching queued work: a gRPC round trip, or NATS across zones."""
        if agent_zone == queue_zone:
            mean = self._pull
        else:
            mean = 2 * self._cross[agent_zone, queue_zone]
        if not mean:
            return 0.0
        jitters = self._jitters
        return mean * (jitters.pop() if jitters else self._jitter())

    def report(self, zone: str) -> float:
        """TASK_COMPLETE back up the hierarchy: specialist to team lead to zone to chief."""
        mean = self._report[zone]
        if self._factor:
            mean *= self._factor.get(zone, 1.0)
        if not mean:
            return 0.0
        jitters = self._jitters
        return mean * (jitters.pop() if jitters else self._jitter())

    def broadcast(self, from_region: str) -> dict[str, float]:
        """A broadcast over Redis pub/sub: publisher to the broker (with the chiefs) to each zone.

        Returns the one-way delay to every zone, jittered independently.
        """
        if not self.enabled:
            return dict.fromkeys(self._regions, 0.0)
        overhead = self._spec.redis_pubsub.overhead_ms
        to_broker = self._rtt_ms(from_region, self._chief_region) / 2
        delays = {}
        for zone, region in self._regions.items():
            leg = self._rtt_ms(self._chief_region, region) / 2
            delays[zone] = (overhead + to_broker + leg) / 1000.0 * self._jitter()
        return delays

    def transfer(
        self,
        data_mb: float,
        from_zone: str,
        to_zone: str,
        key: int,
        attempt: int,
        predecessor: int,
    ) -> float:
        """Moving a DAG edge's data: direct TCP inside a zone, NATS across zones.

        Its jitter is keyed (``keyed_draws.transfer_jitter``) by the consuming
        node (*key*, ``keyed_draws.task_key``), its *attempt* and the *predecessor*
        whose output moves, not drawn from the hops' stream: the live coordinator
        draws the same factor for the same input.
        """
        if not self.enabled:
            return 0.0
        jitter = transfer_jitter(key, attempt, predecessor, self._sigma)
        return self.expected_transfer(data_mb, from_zone, to_zone) * jitter

    def chief_agent_s(self, zone: str) -> float:
        """Mean one-way latency between the chief and a specialist of *zone* (either way).

        The network alone — no jitter, no coordinator's processing — so no
        message down or report up the hierarchy is ever faster (a floor for
        bounds, see :func:`sim.analysis.dag_bounds.delivery_lower_bound`).
        """
        return self._report[zone]

    def expected_transfer(self, data_mb: float, from_zone: str, to_zone: str) -> float:
        """:meth:`transfer` without jitter or chaos: a planner's estimate, drawing nothing."""
        if not self.enabled:
            return 0.0
        spec = self._spec
        if from_zone == to_zone:
            base = (spec.direct_tcp.overhead_ms + spec.intra_region_rtt_ms / 2) / 1000.0
            return base + data_mb * 8.0 / spec.direct_tcp.bandwidth_mbps
        return self._cross[from_zone, to_zone] + data_mb * 8.0 / spec.nats.bandwidth_mbps

    def mean_transfer(self, data_mb: float) -> float:
        """Expected in-zone transfer time, the estimate DAG ranking uses."""
        return mean_transfer_s(self._spec, data_mb)


def mean_transfer_s(spec: NetworkSpec, data_mb: float) -> float:
    """Expected in-zone transfer time of *data_mb* (no jitter): the schedulers' estimate.

    A function of the scenario's network alone, so the live coordinator
    estimates a DAG node's data locality exactly as the simulator does.
    """
    if not spec.enabled:
        return 0.0
    base = (spec.direct_tcp.overhead_ms + spec.intra_region_rtt_ms / 2) / 1000.0
    return base + data_mb * 8.0 / spec.direct_tcp.bandwidth_mbps


def rules_network(scenario: Scenario) -> Network:
    """*scenario*'s network for its rules and keyed draws alone: expected and keyed
    transfers, message loss. Its hops' latencies are never drawn from it, so the generator
    that would jitter them is a fixed stand-in (live's coordinator, the planners' table)."""
    topology = scenario.topology
    regions = {zone.name: zone.region for zone in topology.zones}
    return Network(
        scenario.network, regions, topology.control_plane.region, np.random.default_rng(0)
    )
