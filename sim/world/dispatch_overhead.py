"""Each submitted task's dispatch overhead: ``coordination.dispatch_overhead`` as a draw.

Scenario: a real control plane adds a spread of delay to every dispatch
beyond the links the model charges (``sim.scenario.coordination``). The
draws come from a stream of their own (``"dispatch_overhead"``), in blocks:
the arrivals, the work and the network are the same with and without it
(common random numbers), and the default (``none``) draws nothing at all,
so a scenario without it runs bit for bit as before.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.scenario.coordination import DispatchOverhead, DispatchStalls
from sim.scenario.workload import ServiceTime
from sim.world.streams import Batched, Streams
from sim.world.workload import service_sampler


def overhead_sampler(
    spec: DispatchOverhead, streams: Streams, horizon: float
) -> Callable[[float], float] | None:
    """A function of a submission's time returning its overhead in seconds; None: none.

    The streams are taken only when there is something to draw; stalls at
    random are drawn up front over [0, *horizon*] and join the pauses.
    """
    draw = _draw(spec, streams)
    pauses = _merged([*spec.pauses, *stalls_at_random(spec.stalls, streams, horizon)])
    if not pauses:
        return None if draw is None else lambda now: draw()
    return _Paused(pauses, draw)


def stalls_at_random(
    stalls: DispatchStalls, streams: Streams, horizon: float
) -> list[tuple[float, float]]:
    """(start, end) of each stall: Poisson starts at the rate, each a drawn length."""
    if stalls.rate_per_hour <= 0 or horizon <= 0:
        return []
    rng = streams.get("dispatch_stalls")
    mean_gap = 3600.0 / stalls.rate_per_hour
    drawn: list[tuple[float, float]] = []
    t = float(rng.exponential(mean_gap))
    while t < horizon:
        drawn.append((t, t + float(rng.choice(stalls.durations))))
        t += float(rng.exponential(mean_gap))
    return drawn


def _merged(pauses: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping pauses as one: a task held by the first is still held by the second."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(pauses):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _draw(spec: DispatchOverhead, streams: Streams) -> Callable[[], float] | None:
    if spec.dist == "none" or (spec.dist == "deterministic" and spec.mean <= 0):
        return None
    if spec.dist == "deterministic":
        mean = float(spec.mean)
        return lambda: mean
    rng = streams.get("dispatch_overhead")
    if spec.dist == "empirical":
        observed = np.asarray(spec.samples, dtype=float)
        return Batched(lambda n: rng.choice(observed, n))
    shape = ServiceTime(dist=spec.dist, mean=spec.mean, cv=spec.cv)
    return Batched(service_sampler(shape, rng, "coordination.dispatch_overhead"))


class _Paused:
    """The draw, after the end of the pause a submission falls in (submissions come in
    time order, so the pauses behind are dropped as the run passes them)."""

    def __init__(self, pauses: list[tuple[float, float]], draw: Callable[[], float] | None) -> None:
        self._pauses = pauses[::-1]  # the next one last
        self._draw = draw

    def __call__(self, now: float) -> float:
        pauses = self._pauses
        while pauses and pauses[-1][1] <= now:
            pauses.pop()
        held = pauses[-1][1] - now if pauses and pauses[-1][0] <= now else 0.0
        return held + (self._draw() if self._draw is not None else 0.0)
