"""The synthetic shapes' structures: pipeline, fork-join and layered random graphs.

Each builder returns a :data:`Structure`, (task types, edges) with node ids
0..n-1 in topological order; :mod:`~sim.world.dag_shapes.generate` draws work
and data onto it.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Builder", "Structure", "fork_join", "layered", "pipeline", "split_evenly"]

#: (task type of each node, edges as (src, dst)), node ids 0..n-1 in topological order.
Structure = tuple[list[str], list[tuple[int, int]]]


class Builder:
    """Collects typed nodes and edges as a structure is laid out."""

    def __init__(self) -> None:
        self.types: list[str] = []
        self.edges: list[tuple[int, int]] = []

    def add(self, task_type: str, *preds: int) -> int:
        nid = len(self.types)
        self.types.append(task_type)
        self.edges.extend((p, nid) for p in preds)
        return nid

    def result(self) -> Structure:
        return self.types, self.edges


def pipeline(size: int) -> Structure:
    b = Builder()
    prev = b.add("stage")
    for _ in range(size - 1):
        prev = b.add("stage", prev)
    return b.result()


def split_evenly(total: int, parts: int) -> list[int]:
    """*total* items in *parts* nearly equal parts, larger parts first."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def fork_join(size: int) -> Structure:
    """Source, then stages of parallel branches each closed by a join (the next stage's source).

    About sqrt(size)/2 stages, so a 100-task job has 5 barriers of ~19
    branches. A job too small for one fork and join degenerates to a chain.
    """
    stages = max(1, round(math.sqrt(size) / 2))
    branch_total = size - 1 - stages
    if branch_total < stages:
        stages = max(1, (size - 1) // 2)
        branch_total = size - 1 - stages
    if branch_total < 1:
        return pipeline(size)
    b = Builder()
    src = b.add("fork")
    for width in split_evenly(branch_total, stages):
        branches = [b.add("branch", src) for _ in range(width)]
        src = b.add("join", *branches)
    return b.result()


def layered(size: int, rng: np.random.Generator) -> Structure:
    """About sqrt(size) layers; each later node has 1-3 parents, one in the layer just above.

    Requiring a parent in the previous layer keeps the depth equal to the
    number of layers; the other parents come from any earlier layer, which
    gives the long edges real build graphs have.
    """
    n_layers = max(1, min(size, round(math.sqrt(size))))
    counts = np.ones(n_layers, dtype=np.int64)
    if size > n_layers:
        extra = rng.integers(0, n_layers, size=size - n_layers)
        counts += np.bincount(extra, minlength=n_layers)
    b = Builder()
    bounds: list[tuple[int, int]] = []  # [start, end) of each layer
    for layer, count in enumerate(counts.tolist()):
        start = len(b.types)
        for _ in range(count):
            if layer == 0:
                b.add("layer0")
                continue
            prev_lo, prev_hi = bounds[-1]
            parents = {int(rng.integers(prev_lo, prev_hi))}
            want = min(int(rng.integers(1, 4)), start)
            while len(parents) < want:
                parents.add(int(rng.integers(0, start)))
            b.add(f"layer{layer}", *sorted(parents))
        bounds.append((start, len(b.types)))
    return b.result()
