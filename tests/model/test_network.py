"""The network model: each of the spec's paths costs what its definition says."""

from __future__ import annotations

import numpy as np
import pytest

from sim.policies.keyed_draws import task_key
from sim.scenario.schema import Network as NetworkSpec
from sim.world.network import AgentMessage, MessageType, Network
from sim.world.streams import Batched

REGIONS = {"A": "us-east-1", "B": "us-west-2", "C": "eu-west-1", "D": "ap-northeast-1"}


def network(**changes: object) -> Network:
    spec = NetworkSpec.model_validate({"jitter_cv": 0, **changes})
    return Network(spec, REGIONS, "us-east-1", np.random.default_rng(0))


def test_each_path_is_overhead_plus_half_the_round_trip() -> None:
    net = network()
    # gRPC chief (us-east-1) -> zone D (ap-northeast-1): 0.5 ms + 145.3 / 2 ms.
    assert net.chief_to_zone("D") == pytest.approx((0.5 + 145.3 / 2) / 1000)
    assert net.chief_to_zone("A") == pytest.approx((0.5 + 1.0 / 2) / 1000)
    # Zone coordinator -> team lead -> specialist: two gRPC hops inside the region.
    assert net.zone_to_agent() == pytest.approx(2 * (0.5 + 0.5) / 1000)
    # Cross-zone through NATS: broker overhead plus half the inter-region RTT.
    assert net.cross_zone("B", "C") == pytest.approx((1.0 + 137.0 / 2) / 1000)
    # Report: specialist -> team lead -> zone -> chief.
    assert net.report("C") == pytest.approx(net.zone_to_agent() + net.chief_to_zone("C"))
    # Pulling from another zone's queue is a NATS round trip.
    assert net.pull("A", "D") == pytest.approx(2 * net.cross_zone("A", "D"))


def test_transfers_use_direct_tcp_inside_a_zone_and_nats_across() -> None:
    net = network()
    inside = net.transfer(100, "A", "A", 1, 1, 0)
    across = net.transfer(100, "A", "C", 1, 1, 0)
    assert inside == pytest.approx((0.2 + 0.5) / 1000 + 100 * 8 / 5000)
    assert across == pytest.approx((1.0 + 80.5 / 2) / 1000 + 100 * 8 / 1000)
    assert net.transfer(0, "A", "A", 1, 1, 0) < net.transfer(1, "A", "A", 1, 1, 0)


def test_broadcast_goes_through_the_broker_beside_the_chiefs() -> None:
    delays = network().broadcast("eu-west-1")
    assert delays["A"] == pytest.approx((0.5 + 80.5 / 2 + 1.0 / 2) / 1000)
    assert delays["D"] == pytest.approx((0.5 + 80.5 / 2 + 145.3 / 2) / 1000)


def test_latency_off_is_exactly_zero_everywhere() -> None:
    net = network(enabled=False)
    assert net.chief_to_zone("D") == net.zone_to_agent() == net.report("D") == 0.0
    assert net.transfer(1000, "A", "D", 1, 1, 0) == 0.0
    assert set(net.broadcast("us-east-1").values()) == {0.0}


def test_jitter_keeps_the_mean_and_has_the_requested_spread() -> None:
    spec = NetworkSpec.model_validate({"jitter_cv": 0.3})
    net = Network(spec, REGIONS, "us-east-1", np.random.default_rng(4))
    samples = np.array([net.chief_to_zone("D") for _ in range(20_000)])
    mean = (0.5 + 145.3 / 2) / 1000
    # 20,000 lognormal draws with cv 0.3: the sample mean's sd is 0.3 * mean / sqrt(n).
    assert abs(samples.mean() - mean) < 4 * 0.3 * mean / np.sqrt(len(samples))
    assert samples.std() / samples.mean() == pytest.approx(0.3, rel=0.05)


def test_a_transfers_jitter_is_keyed_keeps_the_mean_and_has_the_requested_spread() -> None:
    """Keyed by node, attempt and input, not drawn from the hops' stream: another network
    (another stream) gives the same transfer, and over 20,000 keys the factor has mean 1
    and cv 0.3 within their sampling bands."""
    spec = NetworkSpec.model_validate({"jitter_cv": 0.3})
    net = Network(spec, REGIONS, "us-east-1", np.random.default_rng(4))
    other = Network(spec, REGIONS, "us-east-1", np.random.default_rng(5))
    base = net.expected_transfer(100, "A", "C")
    keys = [task_key(11, 0.0, job, node) for job in range(200) for node in range(100)]
    factors = np.array([net.transfer(100, "A", "C", key, 1, 3) / base for key in keys])
    n = len(factors)
    assert abs(factors.mean() - 1.0) < 4 * 0.3 / np.sqrt(n)
    assert factors.std() / factors.mean() == pytest.approx(0.3, rel=0.05)
    assert all(
        net.transfer(100, "A", "C", k, 1, 3) == other.transfer(100, "A", "C", k, 1, 3)
        for k in keys[:50]
    )
    # Another attempt or another input of the same node moves in another time.
    assert net.transfer(100, "A", "C", keys[0], 2, 3) != net.transfer(100, "A", "C", keys[0], 1, 3)
    assert net.transfer(100, "A", "C", keys[0], 1, 4) != net.transfer(100, "A", "C", keys[0], 1, 3)


def test_messages_carry_the_spec_fields_and_expire_by_ttl() -> None:
    message = AgentMessage(MessageType.TASK_ASSIGN, "chief", "A-coord", {"task": 1}, 10.0, 30.0)
    assert message.type == "task_assign"
    assert (message.sender, message.to, message.timestamp, message.ttl) == (
        "chief",
        "A-coord",
        10.0,
        30.0,
    )
    assert not message.expired(40.0)
    assert message.expired(40.0001)
    other = AgentMessage(MessageType.HEARTBEAT, "x", "broadcast", None, 0.0, 1.0)
    assert other.id != message.id
    assert {t.value for t in MessageType} == {
        "task_assign",
        "task_complete",
        "task_failed",
        "heartbeat",
        "status_request",
        "status_response",
        "escalation",
    }


def test_batched_draws_are_one_long_draw_through_one_buffer() -> None:
    """Batched hands out one long draw's sequence, refilling the same list in place.

    The network pops its jitter from ``Batched.buffer`` directly and calls the
    sampler only when that list is empty, so a refill must not replace it.
    """
    batched = Batched(lambda n: np.random.default_rng(4).random(n) + len(seen), size=3)
    buffer = batched.buffer
    seen: list[float] = []
    for _ in range(7):
        seen.append(buffer.pop() if buffer else batched())
        assert batched.buffer is buffer
    first = np.random.default_rng(4).random(3)
    assert seen[:3] == first.tolist()
    assert seen[3:6] == (first + 3).tolist()  # the second block, drawn when the first ran out
    assert len(buffer) == 2
