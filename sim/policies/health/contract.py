"""What a failure detector declares, and what the shell needs from every detector."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

__all__ = ["FailureDetector", "HealthState", "HealthTransition"]


class HealthState(Enum):
    """What a detector declares an agent to be."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class HealthTransition:
    """A detector changed its verdict on *agent_id* at *time* (seconds)."""

    agent_id: str
    time: float
    from_state: HealthState
    to_state: HealthState
    reason: str


class FailureDetector(Protocol):
    """What the shell needs from a detector, whichever algorithm it runs."""

    def observe(self, agent_id: str, now: float, ok: bool) -> HealthTransition | None:
        """Per-message face: one check result or heartbeat slot at *now*."""
        ...

    def detection_time(self, agent_id: str, failed_at: float) -> float:
        """Analytic face: the agent is down from *failed_at*; when is it declared?"""
        ...

    def recovered(self, agent_id: str, now: float) -> tuple[HealthTransition, ...]:
        """Analytic face: the agent is up again from *now*; the transitions to come."""
        ...

    def forget(self, agent_id: str) -> None:
        """Drop all state kept for *agent_id* (it left the fleet)."""
        ...
