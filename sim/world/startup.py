"""How long each new agent takes to start: ``scaling.spawn_delay`` and its spread.

Scenario: the reserve pool lends an agent (a scale-up, a replacement of a
dead or reclaimed one) and the agent serves one start-up later. The default
is the same start-up for every agent, which draws no random number, so a
scenario that does not set ``scaling.spawn_delay_dist`` replays bit for bit
as before. A spread draws each start-up from its own stream (``"startup"``):
the arrivals and the work are the same with and without it (common random
numbers), and only the joins move.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.scenario.scaling import Scaling
from sim.scenario.workload import ServiceTime
from sim.world.workload import service_sampler


def startup_sampler(scaling: Scaling, rng: np.random.Generator) -> Callable[[], float]:
    """A function returning one agent's start-up in seconds, with mean ``spawn_delay``."""
    mean = float(scaling.spawn_delay)
    spread = scaling.spawn_delay_dist
    if spread.dist == "deterministic" or mean <= 0:
        return lambda: mean
    if spread.dist in ("empirical", "sequence"):
        observed = np.asarray(spread.samples, dtype=float)
        shape = observed * (mean / float(observed.mean()))
        if spread.dist == "sequence":
            return _in_order(shape.tolist(), lambda: float(rng.choice(shape)))
        return lambda: float(rng.choice(shape))
    # The service-time shapes, parametrised the same way (mean and coefficient of variation).
    draw = service_sampler(ServiceTime(dist=spread.dist, mean=mean, cv=spread.cv), rng)
    return lambda: float(draw(1)[0])


def _in_order(samples: list[float], after: Callable[[], float]) -> Callable[[], float]:
    """Each sample in turn, then *after*'s draws: the recorded run's start-ups, as they came."""
    remaining = iter(samples)

    def draw() -> float:
        taken = next(remaining, None)
        return after() if taken is None else taken

    return draw
