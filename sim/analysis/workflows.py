"""Real scientific workflows for the DAG validation suite, generated with WfCommons.

WfCommons (wfcommons.org) ships *recipes* fitted to execution traces of real
workflows — Montage, Epigenomics, Cycles, BLAST, SRA Search, 1000Genome,
Seismology, SoyKB — and generates synthetic instances of any size from them:
the task graph's structure from the traces' recurring sub-graphs, each task's
runtime and files from distributions fitted per task type.

This module turns such an instance into our DAG format: one node per task
(``work_s`` = the task's runtime in seconds, on a speed-1.0 agent; every node
of one ``category``, since the validation fleet is identical agents), one edge
per dependency, whose ``data_mb`` is the total size of the files the parent
writes and the child reads (bytes / 10^6). Node ids are the tasks' positions
in the generated graph.

Reproducibility: WfCommons draws from Python's ``random`` and NumPy's global
generator; :func:`generate_workflow` seeds both, restores them afterwards,
and is deterministic for a pinned version (``WFCOMMONS_VERSION``, checked by a
test that regenerates the committed fixtures). Workflows the tests use are
committed as JSON under ``scenarios/workflows/``, so the tests do not depend
on a future WfCommons drawing the same graphs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from sim.policies.dag import Dag, DagEdge, DagNode, validate_dag
from sim.world.dag_shapes import load_dag_file

#: The version the committed fixtures were generated with (pinned in pyproject's dev extras).
WFCOMMONS_VERSION = "1.6"

#: Our recipe names (the issue's spelling, lower case) -> WfCommons recipe classes.
RECIPES: dict[str, str] = {
    "montage": "MontageRecipe",
    "epigenomics": "EpigenomicsRecipe",
    "cycles": "CyclesRecipe",
    "blast": "BlastRecipe",
    "srasearch": "SrasearchRecipe",
    "1000genome": "GenomeRecipe",
    "seismology": "SeismologyRecipe",
    "soykb": "SoykbRecipe",
}

#: The one category of the validation fleet.
CATEGORY = "Generic"

#: Where the committed workflows live (inside the repository, beside the scenarios).
FIXTURES = Path(__file__).resolve().parents[2] / "scenarios" / "workflows"


class WorkflowError(Exception):
    """A workflow cannot be generated or read; ``str()`` is one line for the user."""


def workflow_name(recipe: str, num_tasks: int) -> str:
    """The name (and fixture stem) of a generated workflow: ``montage-200``."""
    return f"{recipe}-{num_tasks}"


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed the global generators WfCommons draws from; put them back afterwards."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)  # WfCommons draws from the global generator, not a Generator
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def generate_workflow(recipe: str, num_tasks: int, seed: int, category: str = CATEGORY) -> Dag:
    """A WfCommons instance of *recipe* with at most *num_tasks* tasks, as our DAG.

    WfCommons builds each instance from a real base graph plus replicated
    sub-graphs, so the task count lands at or a little under *num_tasks*;
    below the recipe's smallest base graph it refuses (a :class:`WorkflowError`).
    """
    if recipe not in RECIPES:
        raise WorkflowError(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    try:
        recipes = import_module("wfcommons.wfchef.recipes")
        generator_cls = import_module("wfcommons").WorkflowGenerator
    except ImportError:
        raise WorkflowError(
            f"wfcommons is not installed (pip install wfcommons=={WFCOMMONS_VERSION})"
        ) from None
    recipe_cls = getattr(recipes, RECIPES[recipe])
    with _seeded(seed):
        try:
            workflow = generator_cls(recipe_cls.from_num_tasks(num_tasks)).build_workflow()
        except ValueError as exc:
            raise WorkflowError(f"{recipe} with {num_tasks} tasks: {exc}") from None
    return from_wfcommons(workflow, workflow_name(recipe, num_tasks), category)


def from_wfcommons(workflow: Any, name: str, category: str = CATEGORY) -> Dag:
    """A WfCommons Workflow (a networkx DiGraph of Task objects) as our Dag (see the module)."""
    tasks = {key: workflow.nodes[key]["task"] for key in workflow.nodes}
    ids = {key: index for index, key in enumerate(tasks)}
    nodes = tuple(DagNode(ids[key], category, float(task.runtime)) for key, task in tasks.items())
    edges = []
    for parent, child in workflow.edges:
        written = {f.file_id: f.size for f in tasks[parent].output_files}
        read = {f.file_id for f in tasks[child].input_files}
        size_bytes = sum(size for file_id, size in written.items() if file_id in read)
        edges.append(DagEdge(ids[parent], ids[child], size_bytes / 1e6))
    dag = Dag(name, nodes, tuple(edges))
    validate_dag(dag)
    return dag


def dag_document(dag: Dag) -> dict[str, Any]:
    """Our DAG file format (see sim.world.dag_shapes.parse_dag_document) for *dag*."""
    return {
        "name": dag.name,
        "nodes": [{"id": n.node_id, "category": n.category, "work_s": n.work_s} for n in dag.nodes],
        "edges": [{"src": e.src, "dst": e.dst, "data_mb": e.data_mb} for e in dag.edges],
    }


def write_dag_json(dag: Dag, path: Path) -> Path:
    """Write *dag* as JSON, one node or edge per line (diffable, and small enough to commit)."""
    doc = dag_document(dag)
    lines = ["{", f'  "name": {json.dumps(doc["name"])},', '  "nodes": [']
    lines.append(",\n".join("    " + json.dumps(n) for n in doc["nodes"]))
    lines.append("  ],")
    lines.append('  "edges": [')
    lines.append(",\n".join("    " + json.dumps(e) for e in doc["edges"]))
    lines.append("  ]")
    lines.append("}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_dag_json(path: Path, category: str = CATEGORY) -> Dag:
    """A committed (or written) workflow, through the scenario loader's own checks."""
    try:
        return load_dag_file(path, [category])
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None


def fixture_path(recipe: str, num_tasks: int, folder: Path = FIXTURES) -> Path:
    return folder / f"{workflow_name(recipe, num_tasks)}.json"


def workflow(
    recipe: str, num_tasks: int, seed: int, *, folder: Path = FIXTURES, generate: bool = False
) -> Dag:
    """The committed fixture if there is one (and *generate* is off), else a fresh instance."""
    path = fixture_path(recipe, num_tasks, folder)
    if path.exists() and not generate:
        return read_dag_json(path)
    return generate_workflow(recipe, num_tasks, seed)


def write_fixtures(
    recipes: Sequence[str], sizes: Sequence[int], seed: int, folder: Path = FIXTURES
) -> list[Path]:
    """(Re)generate the committed workflows: every recipe at every size."""
    return [
        write_dag_json(generate_workflow(r, n, seed), fixture_path(r, n, folder))
        for r in recipes
        for n in sizes
    ]
