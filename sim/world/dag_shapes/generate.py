"""Generation: a named shape's structure with work, data and categories drawn onto it."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.policies.dag import Dag, DagEdge, DagNode
from sim.world.dag_shapes.scientific import (
    RELATIVE_WORK,
    cybershake,
    epigenomics,
    ligo,
    montage,
)
from sim.world.dag_shapes.synthetic import Structure, fork_join, layered, pipeline

__all__ = [
    "SCIENTIFIC_SHAPES",
    "SHAPES",
    "SYNTHETIC_SHAPES",
    "generate_dag",
    "generate_typed_dag",
    "task_type_category",
]

SYNTHETIC_SHAPES: tuple[str, ...] = ("layered", "fork_join", "pipeline")
SCIENTIFIC_SHAPES: tuple[str, ...] = ("montage", "epigenomics", "cybershake", "ligo")
SHAPES: tuple[str, ...] = SYNTHETIC_SHAPES + SCIENTIFIC_SHAPES

# Lognormal with coefficient of variation 1: sigma^2 = ln(1 + cv^2).
_LOGN_SIGMA = math.sqrt(math.log(2.0))


def _structure(shape: str, size: int, rng: np.random.Generator) -> Structure:
    if shape == "layered":
        return layered(size, rng)
    if shape == "fork_join":
        return fork_join(size)
    if shape == "pipeline":
        return pipeline(size)
    if shape == "montage":
        return montage(size)
    if shape == "epigenomics":
        return epigenomics(size)
    if shape == "cybershake":
        return cybershake(size)
    if shape == "ligo":
        return ligo(size)
    raise ValueError(f"unknown DAG shape {shape!r}; expected one of {', '.join(SHAPES)}")


def task_type_category(task_type: str, categories: Sequence[str]) -> str:
    """The category every task of *task_type* gets: a CRC-32 of the name, modulo the list.

    A stable hash (unlike Python's per-process salted ``hash``) keeps every
    mProjectPP on one category across runs and machines.
    """
    if not categories:
        raise ValueError("categories must not be empty")
    return categories[zlib.crc32(task_type.encode("utf-8")) % len(categories)]


def _probabilities(categories: Sequence[str], weights: Sequence[float]) -> np.ndarray[Any, Any]:
    if not categories:
        raise ValueError("categories must not be empty")
    if len(weights) != len(categories):
        raise ValueError(f"{len(categories)} categories but {len(weights)} weights")
    w = np.asarray(weights, dtype=float)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"category weights must be non-negative with a positive sum: {weights}")
    probs: np.ndarray[Any, Any] = w / w.sum()
    return probs


def generate_typed_dag(
    shape: str,
    size: int,
    rng: np.random.Generator,
    categories: Sequence[str],
    weights: Sequence[float],
    work_mean_s: float,
    data_mb_mean: float,
    name: str = "",
) -> tuple[Dag, tuple[str, ...]]:
    """:func:`generate_dag`, also returning each node's task type (indexed by node id).

    Types are the Pegasus job names for the scientific shapes and
    descriptive labels (``stage``, ``fork``, ``branch``, ``join``,
    ``layerK``) for the synthetic ones. Reports and tests use them; the
    simulator needs only the Dag.
    """
    if size < 1:
        raise ValueError(f"DAG size must be at least 1, got {size}")
    if not (work_mean_s >= 0 and math.isfinite(work_mean_s)):
        raise ValueError(f"work_mean_s must be a non-negative number, got {work_mean_s!r}")
    if not (data_mb_mean >= 0 and math.isfinite(data_mb_mean)):
        raise ValueError(f"data_mb_mean must be a non-negative number, got {data_mb_mean!r}")
    probs = _probabilities(categories, weights)
    types, edges = _structure(shape, size, rng)
    n = len(types)

    # Expected work per task: flat for synthetic shapes, by task type for the
    # scientific ones, rescaled so the graph's mean task takes work_mean_s.
    if shape in SCIENTIFIC_SHAPES:
        rel = np.array([RELATIVE_WORK[t] for t in types])
        cats = [task_type_category(t, categories) for t in types]
    else:
        rel = np.ones(n)
        picks = rng.choice(len(categories), size=n, p=probs)
        cats = [categories[i] for i in picks.tolist()]
    means = rel * (work_mean_s / rel.mean())
    noise = np.exp(_LOGN_SIGMA * rng.standard_normal(n) - _LOGN_SIGMA**2 / 2)
    work = (means * noise).tolist()

    if data_mb_mean > 0 and edges:
        data = rng.exponential(data_mb_mean, size=len(edges)).tolist()
    else:
        data = [0.0] * len(edges)

    dag = Dag(
        name=name or f"{shape}-{size}",
        nodes=tuple(DagNode(i, cats[i], float(work[i])) for i in range(n)),
        edges=tuple(DagEdge(s, d, float(mb)) for (s, d), mb in zip(edges, data, strict=True)),
    )
    return dag, tuple(types)


def generate_dag(
    shape: str,
    size: int,
    rng: np.random.Generator,
    categories: Sequence[str],
    weights: Sequence[float],
    work_mean_s: float,
    data_mb_mean: float,
    name: str = "",
) -> Dag:
    """A task graph of the named *shape* with about *size* tasks.

    ``pipeline``, ``fork_join`` and ``layered`` hit *size* exactly (a
    fork-join needs at least three tasks); the scientific shapes grow their
    fan-out in whole units (an image, a read chunk, a segment) and land on
    the nearest size they can make. Work per task is lognormal with
    coefficient of variation 1 around its type's mean (the graph-wide mean
    being *work_mean_s*); data per edge is exponential with mean
    *data_mb_mean* (0 gives no data). Synthetic shapes draw each task's
    category from *categories* with *weights*; scientific ones give each task
    type one fixed category (:func:`task_type_category`). Node ids are
    0..n-1 in a topological order.
    """
    dag, _types = generate_typed_dag(
        shape, size, rng, categories, weights, work_mean_s, data_mb_mean, name
    )
    return dag
