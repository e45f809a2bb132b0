"""A zone's running totals, as the sampler and the autoscaler read them.

Scenario: every zone has a coordinator (and its queue of messages), agents
that join, serve, fail and leave, and tasks in flight. The dispatch side,
the fleet and the failover each move these counts as things happen; the
sampler reads them every interval without scanning the agents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.model.task import Task
from sim.model.traffic import Coordinator


@dataclass(slots=True)
class ZoneState:
    """A zone coordinator's running totals for the metrics (its queues are the core's)."""

    name: str
    region: str
    local_queued: int = 0
    in_flight: int = 0
    busy_agents: int = 0
    busy_slots: int = 0
    total_agents: int = 0
    active_agents: int = 0
    slots: int = 0
    #: Agents failed and not yet back or replaced (the spec's offline agents).
    offline_agents: int = 0
    #: The zone coordinator is unreachable (region outage); whether the chief knows, and
    #: whether it sends the zone work, is the core's zone gate's (``core.zones``).
    down: bool = False
    #: TASK_ASSIGN messages that reached the zone while its coordinator was down.
    stranded: list[Task] = field(default_factory=list)
    #: The queue of the coordinator that processes the zone's messages (None: unlimited).
    coord: Coordinator | None = None
