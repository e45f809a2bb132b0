"""Plain observations shared by every policy.

A policy sees the world only through these frozen records, handed to it by a
shell (the SimPy model or the live adapter) together with ``now`` in float
seconds. Nothing here knows about SimPy, asyncio or NATS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """A specialist as a load balancer sees it.

    ``speed`` is work per second relative to the spec's base specialist
    (1 vCPU, 2 GB == 1.0). ``capacity`` is the most tasks the agent may hold
    at once: its concurrency slots plus the length of its local queue. An
    agent at capacity is never chosen.
    """

    agent_id: str
    category: str
    zone: str
    speed: float = 1.0
    slots: int = 1
    capacity: int = 1
    #: The team the agent belongs to ("": none; no team bulkhead holds it).
    team: str = ""

    @property
    def weight(self) -> float:
        """Throughput capacity used by weighted strategies (speed times slots)."""
        return self.speed * self.slots


class TaskInfo(NamedTuple):
    """A task as the dispatching coordinator sees it.

    ``zone`` is the zone whose pool should serve it (the dispatching zone
    coordinator's own). ``affinity_key`` groups tasks that share state (a
    session, a repository); affinity strategies keep a key on one agent.
    ``critical`` marks a task on a DAG's critical path: every strategy sends
    it to the fastest eligible agent.

    A named tuple rather than a frozen dataclass: as immutable, but one is
    built for every task placed, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field) cost 2.5x as much on that hot path.
    """

    task_id: int
    category: str
    zone: str
    affinity_key: int | None = None
    priority: float = 0.0
    critical: bool = False
