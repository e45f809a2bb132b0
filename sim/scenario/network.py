"""Scenario section for the time a message takes: inter-region RTTs and the spec's paths.

The ``network:`` block (spec section 8.2): round-trip times between regions,
per-path overhead and bandwidth, jitter, and the message TTL.
"""

from __future__ import annotations

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
)

from sim.scenario.base import Duration, Strict

#: Measured inter-region round-trip times in ms between the spec's four regions:
#: average RTT from "Latency Between AWS Global Regions", as tabulated in "AWS
#: Regions", A Computer Scientist Learns AWS (blog, April 2017), each pair the
#: mean of its two directions (they differ by at most 1.7 ms). Averages, not
#: medians, and years old: replace them with your own measurements where the
#: answer depends on them.
DEFAULT_RTT_MS: dict[str, dict[str, float]] = {
    "us-east-1": {"us-west-2": 87.8, "eu-west-1": 80.5, "ap-northeast-1": 145.3},
    "us-west-2": {"eu-west-1": 137.0, "ap-northeast-1": 89.1},
    "eu-west-1": {"ap-northeast-1": 212.4},
}


class CommPath(Strict):
    """A communication path of the spec (section 8.2)."""

    overhead_ms: NonNegativeFloat = Field(description="Per-message processing and hop cost, ms.")
    bandwidth_mbps: PositiveFloat = Field(description="Throughput for payloads, megabits/s.")


class Network(Strict):
    """Latency of the spec's communication paths (section 8.2)."""

    enabled: bool = Field(True, description="Switch every latency off (textbook queueing form).")
    rtt_ms: dict[str, dict[str, NonNegativeFloat]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_RTT_MS.items()},
        description=(
            "Inter-region round-trip times (symmetric; one triangle suffices). Defaults: "
            "measured averages published in 2017 (see DEFAULT_RTT_MS)."
        ),
    )
    intra_region_rtt_ms: NonNegativeFloat = Field(1.0, description="RTT inside one region.")
    grpc: CommPath = CommPath(overhead_ms=0.5, bandwidth_mbps=1000)
    direct_tcp: CommPath = CommPath(overhead_ms=0.2, bandwidth_mbps=5000)
    nats: CommPath = CommPath(overhead_ms=1.0, bandwidth_mbps=1000)
    redis_pubsub: CommPath = CommPath(overhead_ms=0.5, bandwidth_mbps=1000)
    jitter_cv: NonNegativeFloat = Field(
        0.1,
        description="Lognormal jitter on every hop (the chief's link to a zone still "
        "delivers in the order sent).",
    )
    message_ttl: Duration = Field(30.0, description="AgentMessage.ttl: older messages expire.")
    resend_limit: NonNegativeInt = Field(
        3,
        description=(
            "Times an expired TASK_ASSIGN is sent again before the task fails for good "
            "(reason ttl_expired)."
        ),
    )

    def rtt_between(self, a: str, b: str) -> float | None:
        """RTT in ms between two regions, reading the triangle either way."""
        if a == b:
            return self.intra_region_rtt_ms
        if b in self.rtt_ms.get(a, {}):
            return self.rtt_ms[a][b]
        if a in self.rtt_ms.get(b, {}):
            return self.rtt_ms[b][a]
        return None
