"""WfCommons workflows as our DAGs: conversion, files, and the table runner's edges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wfcommons.common.file import File
from wfcommons.common.task import Task
from wfcommons.common.workflow import Workflow

from sim.analysis import workflow_table
from sim.analysis.workflows import (
    WorkflowError,
    from_wfcommons,
    generate_workflow,
    read_dag_json,
    write_dag_json,
)
from sim.policies.dag import DagEdge


def test_edge_data_is_the_size_of_the_files_the_child_reads_from_the_parent() -> None:
    """a writes x (3 MB) and y (5 MB); b reads x and an input of its own; c reads x and y."""
    x, y, raw = File("x", 3_000_000), File("y", 5_000_000), File("raw", 7_000_000)
    wf = Workflow(name="tiny")
    wf.add_task(Task(name="a", task_id="a", runtime=12.5, output_files=[x, y]))
    wf.add_task(Task(name="b", task_id="b", runtime=3.0, input_files=[x, raw]))
    wf.add_task(Task(name="c", task_id="c", runtime=0.25, input_files=[x, y]))
    wf.add_dependency("a", "b")
    wf.add_dependency("a", "c")
    dag = from_wfcommons(wf, "tiny")
    assert [(n.node_id, n.category, n.work_s) for n in dag.nodes] == [
        (0, "Generic", 12.5),
        (1, "Generic", 3.0),
        (2, "Generic", 0.25),
    ]
    assert set(dag.edges) == {DagEdge(0, 1, 3.0), DagEdge(0, 2, 8.0)}


def test_a_written_workflow_reads_back_equal(tmp_path: Path) -> None:
    dag = generate_workflow("cycles", 120, seed=3)
    path = write_dag_json(dag, tmp_path / "deep" / "cycles.json")
    assert read_dag_json(path) == dag
    assert json.loads(path.read_text())["name"] == "cycles-120"
    assert generate_workflow("cycles", 120, seed=4) != dag  # the seed matters


def test_generation_leaves_the_global_generators_as_it_found_them() -> None:
    import random

    import numpy as np

    random.seed(11)
    np.random.seed(11)
    expected = (random.random(), float(np.random.random()))
    random.seed(11)
    np.random.seed(11)
    generate_workflow("blast", 100, seed=1)
    assert (random.random(), float(np.random.random())) == expected


@pytest.mark.parametrize(
    ("recipe", "size", "message"),
    [
        ("montagee", 200, "unknown recipe 'montagee'; expected one of montage, epigenomics"),
        ("seismology", 50, "seismology with 50 tasks: Cannot create synthetic graph"),
    ],
)
def test_workflows_that_cannot_be_made_are_one_line(recipe: str, size: int, message: str) -> None:
    with pytest.raises(WorkflowError) as info:
        generate_workflow(recipe, size, seed=1)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_table_runner_writes_and_prints_its_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = workflow_table.main(
        ["--recipes", "epigenomics", "--sizes", "200", "--agents", "2,8", "--out", str(tmp_path)]
    )
    assert status == 0
    printed = capsys.readouterr().out
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [(r["workflow"], r["agents"]) for r in rows] == [
        ("epigenomics-200", 2),
        ("epigenomics-200", 8),
    ]
    assert (tmp_path / "dags" / "epigenomics-200.json").exists()
    table = (tmp_path / "table.md").read_text()
    assert table in printed
    assert table.count("| epigenomics-200 |") == 2


def test_the_table_runner_refuses_a_size_wfcommons_cannot_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = workflow_table.main(
        ["--recipes", "seismology", "--sizes", "40", "--no-sim", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert err.strip().splitlines() == [
        "error: seismology with 40 tasks: Cannot create synthetic graph with 40 nodes from base "
        "graph with 103 nodes"
    ]
