"""What the autoscaler tests share: the spec's scaling block, an observation, the profile."""

from __future__ import annotations

from hypothesis import settings

from sim.policies.autoscale import FleetObservation
from sim.scenario.schema import Scaling

PROPS = settings(max_examples=40, deadline=None)
SPEC = Scaling()


def obs(
    agents: int = 200,
    *,
    ready: int | None = None,
    queue: float = 50.0,
    rt: float = 1.0,
    cpu: float = 0.5,
    idle: float = 0.1,
    in_flight: float = 0.0,
) -> FleetObservation:
    ready = agents if ready is None else ready
    return FleetObservation(
        agents=agents,
        ready=ready,
        starting=agents - ready,
        queue_depth=queue,
        avg_response_time_s=rt,
        cpu_utilization=cpu,
        idle_fraction=idle,
        in_flight=in_flight,
    )
