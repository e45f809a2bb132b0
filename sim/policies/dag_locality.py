"""Data locality for DAG dispatch: where a node's largest input sits, when a slot frees.

A dispatcher that wants to run a DAG node next to its data asks two
questions: which agent holds the node's largest input, and how soon would
that agent have a slot for it. Both are pure answers from what the
scheduler was told (stated work, the agents predecessors ran on), shared by
the simulator and the live coordinator so they decide alike. They sit apart
from :mod:`sim.policies.dag`, which is graph arithmetic, and know nothing of
SimPy, asyncio or NATS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

__all__ = ["largest_input", "slot_frees_in"]


def slot_frees_in(
    now: float, speed: float, serving: Iterable[tuple[float, float | None]], waiting: bool
) -> float:
    """Expected seconds until one of an agent's slots frees, by stated work (inf: unknown).

    *serving* holds (start, the DAG node's stated work, or None for a task
    without one) per task in service; *waiting* is true when work already
    waits at the agent. The scheduler's knowledge, not the simulator's: a
    node's stated work over the agent's speed, as HEFT plans with.
    """
    if waiting:
        return math.inf
    soonest = math.inf
    for start, work_s in serving:
        if work_s is None:
            return math.inf
        soonest = min(soonest, start + work_s / speed - now)
    return max(0.0, soonest) if soonest < math.inf else math.inf


def largest_input(
    inputs: Iterable[tuple[int, float]], ran_on: Callable[[int], str | None]
) -> tuple[str, float] | None:
    """The agent holding a node's largest input, and that input's size in MB (None: no data).

    *inputs* are the node's (predecessor, data_mb) pairs; *ran_on* names the
    agent each predecessor ran on (None: unknown). Ties go to the first edge.
    """
    best: tuple[str, float] | None = None
    for pred, data_mb in inputs:
        if data_mb <= 0 or (best is not None and data_mb <= best[1]):
            continue
        agent = ran_on(pred)
        if agent is not None:
            best = (agent, data_mb)
    return best
