"""Scenario section for the coordinators as a resource and the control traffic they carry.

Chiefs, zone coordinators and team leads route every message of the
hierarchy (spec sections 3.1 and 8). Each has a processing capacity — its
vCPUs from the spec's resource table divided by the CPU one message costs —
and a queue in front of it; at scale a coordinator saturates and dispatch
slows. ``design: flat`` is the alternative the hierarchy is measured
against: every specialist talks to the chief directly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    field_validator,
    model_validator,
)

from sim.scenario.base import Duration, Strict

#: Bytes on the wire per message type (payload + envelope), a typical JSON-over-gRPC size.
DEFAULT_MESSAGE_BYTES: dict[str, int] = {
    "task_assign": 2048,
    "task_complete": 4096,
    "task_failed": 1024,
    "heartbeat": 256,
    "status_request": 128,
    "status_response": 512,
    "escalation": 1024,
    "broadcast": 512,
}


class DispatchStalls(Strict):
    """Stalls of the control plane at random: a forecast's form of live's ``pauses``.

    A replay plays a live run's stalls where they happened; a forecast of
    another day cannot know when they come, only how often and how long.
    So stalls start as a Poisson process at ``rate_per_hour`` (their own
    stream, ``dispatch_stalls``) and each lasts one of ``durations``, equally
    likely; a task submitted inside one waits for its end, as in a pause.
    ``orchestra calibrate`` writes live's in ``forecast.yaml``.
    """

    rate_per_hour: NonNegativeFloat = Field(0.0, description="Stalls per simulated hour.")
    durations: list[Duration] = Field(
        default_factory=list,
        description="Observed stall lengths in seconds, each equally likely.",
    )

    @model_validator(mode="after")
    def _inputs(self) -> DispatchStalls:
        if self.rate_per_hour > 0 and not self.durations:
            raise ValueError("durations: expected observed stall lengths (seconds)")
        if any(d <= 0 for d in self.durations):
            raise ValueError("durations: expected positive seconds")
        return self


class DispatchOverhead(Strict):
    """Seconds a submitted task's dispatch takes beyond the modelled path, drawn per task.

    The spec's model charges a task's way to its agent link by link (the
    chief's log, the network, the coordinators' queues). A real control plane
    adds what no link shows — its process being scheduled, its broker's
    writes, a collection pause — and that is not one constant: most tasks
    pay a little and a few pay a lot. The tail of a lightly loaded fleet's
    waits is exactly that spread, so ``orchestra calibrate`` fits it from a
    live run as ``empirical`` quantiles. A stall of the host is not a draw:
    every task that arrives in it waits for its end together, so calibrate
    writes live's stalls as ``pauses`` at the times they happened, as a
    replay plays live's chaos. ``none`` with no pauses (the default) draws
    nothing, so a scenario without it replays bit for bit. The draw is
    charged between the zone's placing and the agent: the chief's link
    delivers in order and the zone places in that order, as live's
    coordinator decides, and then each task reaches its agent after its own
    draw, as live's agents each wake on their own. Charged on the ordered
    link, one slow draw held every task behind it: full-fleet replays at x20
    waited 21-22 % longer than live at the median, and ``burst`` agreed task
    by task for 65.5 % of its tasks, against 74.0 % placed after.
    """

    dist: Literal["none", "deterministic", "exponential", "lognormal", "gamma", "empirical"] = (
        Field(
            "none",
            description=(
                "none: no overhead; empirical: each task draws one of samples; else a "
                "distribution with this mean (and cv: lognormal, gamma)."
            ),
        )
    )
    mean: Duration = Field(0.0, ge=0, description="Mean seconds (not used by empirical).")
    cv: NonNegativeFloat = Field(1.0, description="Coefficient of variation (lognormal, gamma).")
    samples: list[Duration] = Field(
        default_factory=list,
        description="dist=empirical: observed overheads in seconds, each equally likely.",
    )
    pauses: list[tuple[Duration, Duration]] = Field(
        default_factory=list,
        description=(
            "[start, end] seconds in which the control plane dispatched nothing (a host's "
            "stall, as calibrate finds in a live run): a task submitted inside waits for the "
            "end, then its draw."
        ),
    )
    stalls: DispatchStalls = Field(
        default_factory=DispatchStalls,
        description="Stalls at random (a rate and their lengths): a forecast's pauses.",
    )

    @model_validator(mode="after")
    def _inputs(self) -> DispatchOverhead:
        for index, (start, end) in enumerate(self.pauses):
            if end <= start:
                raise ValueError(f"pauses[{index}]: expected a start before its end")
        if self.dist == "empirical":
            if not self.samples:
                raise ValueError("samples: expected observed overheads (seconds) for empirical")
            if min(self.samples) < 0:
                raise ValueError("samples: expected non-negative seconds")
        elif self.dist not in ("none", "deterministic") and self.mean <= 0:
            raise ValueError(f"mean: expected a positive mean for {self.dist}")
        return self


class Coordination(Strict):
    """How the hierarchy carries its traffic, and what that costs the coordinators."""

    design: Literal["hierarchical", "flat"] = Field(
        "hierarchical",
        description=(
            "hierarchical: chief -> zone coordinator -> team lead -> specialist (the spec); "
            "flat: the chief talks to every specialist itself (heartbeats and status included)."
        ),
    )
    capacity: bool = Field(
        True, description="Model coordinator processing capacity and queues (false: infinite)."
    )
    message_cpu_ms: PositiveFloat = Field(
        2.0,
        description=(
            "CPU milliseconds one message costs a coordinator on one vCPU; capacity in messages "
            "per second is vCPU x 1000 / message_cpu_ms (4 vCPU: 2,000 msg/s)."
        ),
    )
    chief_vcpu: PositiveFloat | None = Field(
        None, description="vCPU of the chief; default: topology.resources.coordinator.base."
    )
    zone_vcpu: PositiveFloat | None = Field(
        None, description="vCPU of a zone coordinator; default: the coordinator's base."
    )
    team_lead_vcpu: PositiveFloat | None = Field(
        None, description="vCPU of a team lead; default: topology.resources.team_lead.base."
    )
    status_interval: Duration = Field(
        30.0,
        gt=0,
        description=(
            "Each coordinator polls the ones below it (STATUS_REQUEST/STATUS_RESPONSE) this often."
        ),
    )
    handoff_overhead: Duration = Field(
        0.0,
        ge=0,
        description=(
            "Seconds a freed slot waits for queued work beyond the modelled pull (its round "
            "trip and the coordinators' queues): what a live fleet's broker writes and "
            "coordinator intake add between one task's end and the next one's start. 0 in "
            "the spec's model; orchestra calibrate fits it from a live run."
        ),
    )
    dispatch_overhead: DispatchOverhead = Field(
        default_factory=DispatchOverhead,
        description=(
            "Seconds each submitted task's dispatch takes beyond the modelled path, drawn per "
            "task (none in the spec's model; orchestra calibrate fits live's spread)."
        ),
    )
    message_bytes: dict[str, NonNegativeInt] = Field(
        default_factory=lambda: dict(DEFAULT_MESSAGE_BYTES),
        description="Bytes per message type, for the control-traffic metrics.",
    )

    @field_validator("message_bytes")
    @classmethod
    def _known_types(cls, given: dict[str, int]) -> dict[str, int]:
        """Sizes given are merged over the defaults; an unknown type is an error."""
        for name in given:
            if name not in DEFAULT_MESSAGE_BYTES:
                known = ", ".join(DEFAULT_MESSAGE_BYTES)
                raise ValueError(f"{name}: unknown message type; expected one of {known}")
        return {**DEFAULT_MESSAGE_BYTES, **given}
