"""Job shapes: random and published task graphs, and task graphs read from files.

The fleet's jobs are DAGs of tasks (see :mod:`sim.policies.dag`). Scenarios
name a *shape* and a size; this module turns that into a concrete graph with
work and data sizes drawn from the scenario's random stream, or reads a graph
a user wrote by hand.

Synthetic shapes (``layered``, ``fork_join``, ``pipeline``) stress different
things: a pipeline has no parallelism at all, fork-join alternates full
fan-out with barriers, a layered random graph sits in between. The scientific
shapes reproduce the published structure of four Pegasus workflows
(Bharathi et al. 2008, "Characterization of scientific workflows"; Juve et
al. 2013, "Characterizing and profiling scientific workflows") because
scheduling results on them are widely reported and their mix of wide fan-outs
and long serial aggregation steps is hard to invent. Their fan-out width grows
with ``size``; their task types keep fixed relative runtimes, approximately as
measured in those papers.

Determinism: every random draw comes from the ``rng`` passed in, in a fixed
order, so one seed always yields the identical graph. Scientific task types
are mapped to categories by a CRC of the type name, never by Python's salted
``hash``.

Layout: ``synthetic`` and ``scientific`` lay out each shape's structure (task
types and edges); ``generate`` draws work, data and categories onto a
structure; ``loader`` reads a graph from a YAML or JSON file.
"""

from __future__ import annotations

from sim.world.dag_shapes.generate import (
    SCIENTIFIC_SHAPES,
    SHAPES,
    SYNTHETIC_SHAPES,
    generate_dag,
    generate_typed_dag,
    task_type_category,
)
from sim.world.dag_shapes.loader import DagFileError, load_dag_file, parse_dag_document

__all__ = [
    "SCIENTIFIC_SHAPES",
    "SHAPES",
    "SYNTHETIC_SHAPES",
    "DagFileError",
    "generate_dag",
    "generate_typed_dag",
    "load_dag_file",
    "parse_dag_document",
    "task_type_category",
]
