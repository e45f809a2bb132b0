"""A segment's DAG jobs, as the clients submitted them, for the simulator to replay.

Scenario: a client submitted DAG jobs to a service (``kind: job`` with
nodes and edges). The segment that holds their arrivals writes each one as
a DAG file (``dags/job-<id>.json``, the format ``sim.world.dag_shapes``
reads: nodes with id, category and work, edges with their data) and lists
it in the window's scenario as a fixed release (``workload.dags.jobs``: the
file, its arrival second in the window, its home zone). ``orchestra
replay SEGMENT`` then runs the very workflows the clients sent, at the times
they came, with their edges — not a Poisson stream of generated shapes at
the window's job rate, and not their nodes as independent tasks.

The window's synthetic DAG sources (rate, generated shapes, files, inline
DAGs) are switched off: the recorded jobs are the window's whole DAG traffic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim.scenario.schema import DagRelease, Scenario

#: Sub-directory of a segment holding its jobs' DAG files.
DAGS_DIR = "dags"


def dag_document(submit: dict[str, Any]) -> dict[str, Any]:
    """A job submission as a DAG file document (its node numbers are the file's ids)."""
    nodes = [
        {"id": int(n["node"]), "category": str(n["category"]), "work_s": float(n["work_s"])}
        for n in submit["nodes"]
    ]
    edges = [
        {"src": int(src), "dst": int(dst), "data_mb": float(mb)} for src, dst, mb in submit["edges"]
    ]
    return {"name": f"job-{int(submit['job_id'])}", "nodes": nodes, "edges": edges}


def job_file(root: Path, submit: dict[str, Any]) -> Path:
    return root / DAGS_DIR / f"job-{int(submit['job_id'])}.json"


def write_dag_files(directory: Path, submits: list[dict[str, Any]]) -> list[Path]:
    """Write each job submission of *submits* under *directory*/dags; the paths written."""
    out = []
    for doc in submits:
        if doc.get("kind") != "job":
            continue
        path = job_file(directory, doc)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dag_document(doc), indent=1, sort_keys=True))
        out.append(path)
    return out


def with_recorded_jobs(scenario: Scenario, submits: list[dict[str, Any]], root: Path) -> Scenario:
    """*scenario* whose DAG traffic is the window's recorded jobs (files under *root*/dags).

    *submits* are the window's accepted submissions, times already shifted to
    the window; *root* is where the segment will live (absolute paths, as for
    the trace: ``orchestra calibrate`` rewrites the scenario elsewhere).
    """
    jobs = sorted(
        (d for d in submits if d.get("kind") == "job"),
        key=lambda d: (float(d["arrival_s"]), int(d["job_id"])),
    )
    releases = [
        DagRelease(file=job_file(root, d).resolve(), at=float(d["arrival_s"]), zone=str(d["zone"]))
        for d in jobs
    ]
    dags = scenario.workload.dags.model_copy(
        update={"rate_per_min": 0.0, "jobs": releases, "files": [], "inline": [], "file_share": 0.0}
    )
    workload = scenario.workload.model_copy(update={"dags": dags})
    return scenario.model_copy(update={"workload": workload})
