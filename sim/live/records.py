"""A live run's broker contents turned into the shared record format, on the simulator's window.

The streams are the run's ground truth — every arrival (``ORCH_SUBMIT``),
every routing and assignment (``ORCH_DISPATCH_<zone>``), every start and end
(``ORCH_RESULTS_<zone>``; the zones' streams merged by ``subjects.merge_records``),
every event and metrics sample — whichever coordinator
was primary at the time. This module
folds them into the very tables a simulation writes, with the very meanings,
so summary, report, compare, replay and calibrate read a live directory
unchanged and compare like with like.

The window. A simulation stops at the scenario's duration; a live run keeps
going until the work in flight has drained. The tables describe the run *as
it stood at the duration*, exactly as the simulator records it: a task
completed by then is ``completed``; one still waiting or being served is an
``in_flight`` row (its attempt, agent, dispatch and start as they were, end
and completion empty); what happened after the duration is left out of the
tasks, events, agents and metrics tables and reported apart in the
``drained`` table (the post-window completions, with their times), so it
never counts into throughput, utilisation or cost.

The columns mean what the simulator's mean. ``attempt`` counts from 1 (the
coordinator numbers its assignments so). ``dispatch_s`` is when the attempt
was assigned to its agent (the simulator's ``_assign`` or pull), not when the
task was first routed; ``queue_s`` is the time the task spent waiting for an
agent (routing to start, beyond what the transport takes), summed over its
attempts. A retried attempt (its agent died) ends when the task was assigned
again, as the simulator records it when it re-dispatches. The agents table
has one row per incarnation: an agent leaves when it drains, is declared dead
(``agent_detected``) or its zone goes dark, and a restarted agent is a new row.

Admission (a scenario with ``tiers``): the coordinator's verdict on each
independent task is a record on the dispatch streams; a shed task has no
attempt row, counts in ``tasks.shed`` (submitted = completed + failed + shed
+ in flight), and every verdict is a row of ``tiers.parquet``, as the
simulator writes it. Spot (``purchase.spot``): the agents table says which
agents ran on spot (the starting fleet by the same rule and order as the
simulator's, later ones as their ``agent_joined`` event says), and a
reclaimed agent leaves at its ``agent_reclaimed``.

Attempts: the first attempt of a task to end is its outcome; a later end (a
redelivery of finished work) is ignored and counted in ``duplicates``.

Where the parts live: ``task_fold`` folds one task's reports into its rows
(the window, attempts, queueing), ``agents_table`` reads the agents table
from the events; this module gathers the streams and builds the tables.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sim.live.agents_table import agents_frame
from sim.live.llm_records import llm_frame
from sim.live.task_fold import DRAINED_COLUMNS, TaskFolder, TaskReports, sort_reports
from sim.metrics.collector import MetricsCollector
from sim.metrics.records import EventLog, TaskLog, canonical_sha256, jobs_frame
from sim.metrics.result import RunResult
from sim.metrics.scaling_rows import SCALING_LEVEL, scaling_frame
from sim.metrics.summary import summarize
from sim.metrics.tier_summary import tier_frame
from sim.scenario.schema import Scenario
from sim.world.topology import World

__all__ = [
    "DRAINED_COLUMNS",
    "TRANSPORT_SLACK_WALL_S",
    "LiveRecords",
    "agents_frame",
    "build_records",
]

#: Wall seconds between a routing (or an assignment) and a start that are transport, not queueing.
TRANSPORT_SLACK_WALL_S = 0.05


@dataclass(frozen=True)
class LiveRecords:
    tasks: pd.DataFrame
    metrics: pd.DataFrame
    events: pd.DataFrame
    agents: pd.DataFrame
    jobs: pd.DataFrame
    counts: dict[str, int]
    duplicates: int
    #: Tasks whose first end came after the window (DRAINED_COLUMNS), in completion order.
    drained: pd.DataFrame
    #: Submitted tasks that never ended, not even while the run drained.
    unfinished: int
    #: The per-attempt model calls (``llm.parquet``; None: the scenario has no llm section).
    llm: pd.DataFrame | None = None
    #: One row per admission verdict (``tiers.parquet``; None: the scenario has no tiers).
    tiers: pd.DataFrame | None = None
    #: One row per autoscaler evaluation (``scaling.parquet``; None: autoscaling is off).
    scaling: pd.DataFrame | None = None

    def summary(self, scenario: Scenario) -> tuple[dict[str, Any], str]:
        """``summary.json`` of these records on *scenario*'s window, and the events' digest."""
        sha = canonical_sha256(self.events)
        summary = summarize(
            scenario,
            self.tasks,
            self.metrics,
            self.events,
            self.agents,
            self.jobs,
            self.counts,
            sha,
            drained=self.drained,
            llm=self.llm,
            tiers=self.tiers,
        )
        summary["drained"]["unfinished"] = self.unfinished
        return summary, sha

    def result(self, scenario: Scenario, sha: str, wall_s: float) -> RunResult:
        """The records as the one replication a simulation would have returned."""
        return RunResult(
            scenario=scenario,
            replication=0,
            tasks=self.tasks,
            metrics=self.metrics,
            events=self.events,
            agents=self.agents,
            jobs=self.jobs,
            counts=self.counts,
            events_sha256=sha,
            wall_s=wall_s,
            sim_events=0,
            llm=self.llm,
            tiers=self.tiers,
            scaling=self.scaling,
        )


def build_records(
    scenario: Scenario,
    world: World,
    time_scale: float,
    end_s: float,
    submits: Iterable[dict[str, Any]],
    results: Iterable[dict[str, Any]],
    events: Iterable[dict[str, Any]],
    metric_rows: Iterable[dict[str, Any]],
) -> LiveRecords:
    """The shared tables of a live run, as it stood at *end_s* (the scenario's duration)."""
    tasks, job_docs = _submissions(submits)
    books = sort_reports(results)
    log = TaskLog()
    counts = dict.fromkeys(("submitted", "completed", "failed", "shed", "in_flight", "retried"), 0)
    folder = TaskFolder(end_s, TRANSPORT_SLACK_WALL_S * time_scale, books, log, counts)
    for task_id in sorted(tasks):
        folder.fold(task_id, tasks[task_id])
    counts["lost"] = (
        counts["submitted"]
        - counts["completed"]
        - counts["failed"]
        - counts["shed"]
        - counts["in_flight"]
    )

    event_log = EventLog()
    for doc in sorted(events, key=lambda d: float(d["time_s"])):
        if float(doc["time_s"]) <= end_s:
            event_log.add(
                float(doc["time_s"]), doc["kind"], doc["subject"], **json.loads(doc["detail"])
            )
    events_frame = event_log.frame(0)

    collector = MetricsCollector(list(world.zones), scenario.metrics.interval)
    if scenario.tiers is not None:
        collector.extra_columns += ("tasks_shed",)  # the tier rows' column, as the simulator's
    evaluations = [row for row in metric_rows if row.get("level") == SCALING_LEVEL]
    collector.extend(
        {k: (math.nan if v is None else v) for k, v in row.items()}
        for row in sorted(metric_rows, key=lambda r: (float(r["time_s"]), r["level"] != "global"))
        if float(row["time_s"]) <= end_s + 1e-9 and row.get("level") != SCALING_LEVEL
    )
    drained_rows: list[tuple[Any, ...]] = sorted(folder.drained, key=lambda r: float(r[-1]))
    drained = pd.DataFrame(drained_rows, columns=list(DRAINED_COLUMNS))
    return LiveRecords(
        tasks=log.frame(0, scenario.warmup),
        metrics=collector.frame(0),
        events=events_frame,
        agents=agents_frame(scenario, world, events_frame, end_s),
        jobs=_jobs_frame(job_docs, folder.finished_at),
        counts=counts,
        duplicates=folder.duplicates,
        drained=drained.astype({"task_id": "int64", "job_id": "int64", "attempt": "int64"}),
        unfinished=folder.unfinished,
        llm=_llm_table(scenario, tasks, books, end_s),
        tiers=_tiers_table(scenario, books),
        scaling=_scaling_table(scenario, evaluations, end_s),
    )


def _scaling_table(
    scenario: Scenario, rows: list[dict[str, Any]], end_s: float
) -> pd.DataFrame | None:
    """``scaling.parquet``: the primaries' evaluations before the window's end, as the
    simulator's (which stops before its horizon); None where autoscaling is off."""
    if not scenario.scaling.auto_scale.enabled:
        return None
    return scaling_frame((row for row in rows if float(row["time_s"]) < end_s - 1e-9), 0)


def _tiers_table(scenario: Scenario, books: TaskReports) -> pd.DataFrame | None:
    """``tiers.parquet``: every admission verdict, by task id (None: no tiers section)."""
    if scenario.tiers is None:
        return None
    rows = [
        (
            task_id,
            str(doc["category"]),
            str(doc["tier"]),
            str(doc["tenant"]),
            float(doc["arrival_s"]),
            str(doc["admission"]),
            str(doc.get("reason", "")),
        )
        for task_id, doc in sorted(books.admissions.items())
    ]
    return tier_frame(rows, 0)


def _llm_table(
    scenario: Scenario, tasks: dict[int, dict[str, Any]], books: TaskReports, end_s: float
) -> pd.DataFrame | None:
    """The model calls of attempts that ended in the window (None: no llm section)."""
    if scenario.llm is None:
        return None
    categories = {task_id: str(doc["category"]) for task_id, doc in tasks.items()}
    ends = (d for docs in books.ends.values() for d in docs if float(d["end_s"]) <= end_s)
    return llm_frame(scenario.llm, categories, ends)


def _submissions(
    submits: Iterable[dict[str, Any]],
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """Every submitted task by id (DAG nodes as tasks of their job), and the job documents."""
    tasks: dict[int, dict[str, Any]] = {}
    job_docs: dict[int, dict[str, Any]] = {}
    for doc in submits:
        if doc["kind"] == "task":
            tasks[int(doc["task_id"])] = {**doc, "job_id": -1, "node": -1}
            continue
        job_docs[int(doc["job_id"])] = doc
        # Entry nodes arrive with their job; the others when released (their routing).
        inner = {int(dst) for _, dst, _ in doc["edges"]}
        for n in doc["nodes"]:
            tasks[int(n["task_id"])] = {
                "task_id": int(n["task_id"]),
                "category": n["category"],
                "zone": doc["zone"],
                "arrival_s": doc["arrival_s"],
                "work_s": n["work_s"],
                "job_id": int(doc["job_id"]),
                "node": int(n["node"]),
                "released": int(n["node"]) in inner,
            }
    return tasks, job_docs


def _jobs_frame(job_docs: dict[int, dict[str, Any]], finished_at: dict[int, float]) -> pd.DataFrame:
    """``jobs.parquet``: the DAG jobs whose every node ended within the window."""
    jobs = []
    for job_id, doc in sorted(job_docs.items()):
        node_ids = [int(n["task_id"]) for n in doc["nodes"]]
        if all(t in finished_at for t in node_ids):
            jobs.append(
                {
                    "job_id": job_id,
                    "shape": doc.get("shape", ""),
                    "nodes": len(node_ids),
                    "arrival_s": float(doc["arrival_s"]),
                    "complete_s": max(finished_at[t] for t in node_ids),
                    "cp_bound_s": float(doc.get("cp_bound_s", math.nan)),
                    "work_s": float(sum(float(n["work_s"]) for n in doc["nodes"])),
                }
            )
    return jobs_frame(jobs, 0)
