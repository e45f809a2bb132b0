"""A live run's broker contents turned into the shared record format.

The streams are the run's ground truth — every arrival (``ORCH_SUBMIT``),
every attempt's start and end (``ORCH_RESULTS``), every event and metrics
sample — whichever coordinator was primary at the time. This module folds
them into the very tables a simulation writes, so summary, report, compare
and replay read a live directory unchanged.

Attempts: the first attempt of a task to end is its outcome; an attempt that
started and never ended (its agent died) is ``retried``; an end reported
after the task had already ended (a redelivery of finished work) is ignored
and counted in ``duplicates``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.metrics.collector import MetricsCollector
from sim.metrics.records import EventLog, TaskLog, coordinator_rows
from sim.scenario.schema import Scenario
from sim.world.topology import World, specialist_template

#: Wall seconds between a dispatch and a start that are transport, not queueing.
TRANSPORT_SLACK_WALL_S = 0.05


@dataclass
class _Attempt:
    """A task attempt as TaskLog records it (the TaskAttempt protocol)."""

    id: int
    node: int
    attempt: int
    category: str
    home_zone: str
    zone: str
    agent: str
    critical: bool
    arrival: float
    dispatch: float
    start: float
    work: float
    transfer: float
    queued: float
    job: int

    @property
    def job_id(self) -> int:
        return self.job


@dataclass(frozen=True)
class LiveRecords:
    tasks: pd.DataFrame
    metrics: pd.DataFrame
    events: pd.DataFrame
    agents: pd.DataFrame
    jobs: pd.DataFrame
    counts: dict[str, int]
    duplicates: int


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
    tasks: dict[int, dict[str, Any]] = {}
    job_docs: dict[int, dict[str, Any]] = {}
    for doc in submits:
        if doc["kind"] == "task":
            tasks[int(doc["task_id"])] = {**doc, "job_id": -1, "node": -1}
            continue
        job_docs[int(doc["job_id"])] = doc
        for n in doc["nodes"]:
            tasks[int(n["task_id"])] = {
                "task_id": int(n["task_id"]),
                "category": n["category"],
                "zone": doc["zone"],
                "arrival_s": doc["arrival_s"],
                "work_s": n["work_s"],
                "job_id": int(doc["job_id"]),
                "node": int(n["node"]),
            }
    dispatch: dict[int, tuple[float, str]] = {}
    starts: dict[int, dict[int, dict[str, Any]]] = {}
    ends: dict[int, list[dict[str, Any]]] = {}
    for doc in results:
        task_id = int(doc["task_id"])
        if doc["kind"] == "dispatch":
            dispatch.setdefault(task_id, (float(doc["dispatch_s"]), doc["zone"]))
        elif doc["kind"] == "assign":
            continue  # the coordinator's books (which agent's subject); attempts say the rest
        elif doc["kind"] == "start":
            starts.setdefault(task_id, {})[int(doc["attempt"])] = doc
        else:
            ends.setdefault(task_id, []).append(doc)

    log = TaskLog()
    counts = dict.fromkeys(("submitted", "completed", "failed", "in_flight", "retried"), 0)
    duplicates = 0
    finished_at: dict[int, float] = {}
    slack = TRANSPORT_SLACK_WALL_S * time_scale
    for task_id in sorted(tasks):
        info = tasks[task_id]
        counts["submitted"] += 1
        dispatch_s, zone = dispatch.get(task_id, (-1.0, info["zone"]))
        by_attempt = starts.get(task_id, {})
        done = sorted(ends.get(task_id, []), key=lambda d: float(d["end_s"]))
        final = done[0] if done else None
        duplicates += max(0, len(done) - 1)

        final_attempt = int(final["attempt"]) if final else max(by_attempt, default=0)
        for number in sorted(by_attempt):
            if number == final_attempt:
                continue
            if final is None or number < final_attempt:
                counts["retried"] += 1
                log.record(
                    _attempt(task_id, info, dispatch_s, zone, slack, by_attempt[number], number),
                    "retried",
                    math.nan,
                    math.nan,
                    0.0,
                )
        if final is not None:
            record = _attempt(task_id, info, dispatch_s, zone, slack, final, final_attempt)
            end = float(final["end_s"])
            outcome = str(final["outcome"])
            counts[outcome] += 1
            finished_at[task_id] = end
            reason = str(final.get("reason", ""))  # the coordinator's failure for good
            log.record(record, outcome, end, end, end - record.start, reason)
        else:
            counts["in_flight"] += 1
            last = by_attempt.get(final_attempt)
            log.record(
                _attempt(task_id, info, dispatch_s, zone, slack, last, final_attempt),
                "in_flight",
                math.nan,
                math.nan,
                0.0,
            )
    counts["lost"] = (
        counts["submitted"] - counts["completed"] - counts["failed"] - counts["in_flight"]
    )

    event_log = EventLog()
    for doc in sorted(events, key=lambda d: float(d["time_s"])):
        event_log.add(
            float(doc["time_s"]), doc["kind"], doc["subject"], **json.loads(doc["detail"])
        )
    events_frame = event_log.frame(0)

    collector = MetricsCollector(list(world.zones), scenario.metrics.interval)
    collector.extend(
        {k: (math.nan if v is None else v) for k, v in row.items()}
        for row in sorted(metric_rows, key=lambda r: (float(r["time_s"]), r["level"] != "global"))
    )

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
    columns = ["job_id", "shape", "nodes", "arrival_s", "complete_s", "cp_bound_s", "work_s"]
    jobs_frame = pd.DataFrame(jobs, columns=columns)
    jobs_frame["makespan_s"] = jobs_frame["complete_s"] - jobs_frame["arrival_s"]
    jobs_frame.insert(0, "replication", np.zeros(len(jobs_frame), dtype=np.int64))

    return LiveRecords(
        tasks=log.frame(0, scenario.warmup),
        metrics=collector.frame(0),
        events=events_frame,
        agents=agents_frame(scenario, world, events_frame, end_s),
        jobs=jobs_frame,
        counts=counts,
        duplicates=duplicates,
    )


def _attempt(
    task_id: int,
    info: dict[str, Any],
    dispatch_s: float,
    zone: str,
    slack: float,
    doc: dict[str, Any] | None,
    number: int,
) -> _Attempt:
    """One attempt of *task_id*; *doc* is its start report (None: never started)."""
    start = float(doc["start_s"]) if doc else -1.0
    waited = start - dispatch_s if doc and dispatch_s >= 0 else 0.0
    return _Attempt(
        id=task_id,
        node=int(info["node"]),
        attempt=number,
        category=str(info["category"]),
        home_zone=str(info["zone"]),
        zone=str(doc["zone"]) if doc else zone,
        agent=str(doc["agent"]) if doc else "",
        critical=False,
        arrival=float(info["arrival_s"]),
        dispatch=dispatch_s,
        start=start,
        work=float(info["work_s"]),
        transfer=0.0,
        queued=waited if waited > slack else 0.0,
        job=int(info["job_id"]),
    )


def agents_frame(
    scenario: Scenario, world: World, events: pd.DataFrame, end_s: float
) -> pd.DataFrame:
    """``agents.parquet`` from the fleet at start and the join / leave / failure events."""
    template = specialist_template(scenario)
    rows: dict[str, dict[str, Any]] = {}
    for spec in world.specialists:
        rows[spec.agent_id] = {
            "agent": spec.agent_id,
            "role": "specialist",
            "category": spec.category,
            "zone": spec.zone,
            "team": spec.team,
            "region": world.regions[spec.zone],
            "vcpu": spec.vcpu,
            "mem_gb": spec.mem_gb,
            "speed": spec.speed,
            "slots": spec.slots,
            "from_reserve": False,
            "joined_s": 0.0,
            "left_s": end_s,
            "failed": False,
        }
    for row in events.itertuples(index=False):
        subject, kind, detail = str(row.subject), str(row.kind), json.loads(str(row.detail))
        if kind == "agent_joined" and subject not in rows:
            time_s = float(str(row.time_s))
            rows[subject] = {
                "agent": subject,
                "role": "specialist",
                "category": detail.get("category", ""),
                "zone": detail.get("zone", ""),
                "team": "",
                "region": world.regions.get(detail.get("zone", ""), ""),
                "vcpu": template.vcpu,
                "mem_gb": template.mem_gb,
                "speed": template.speed,
                "slots": template.slots,
                "from_reserve": True,
                "joined_s": time_s,
                "left_s": end_s,
                "failed": False,
            }
        elif kind in ("agent_left", "agent_failed") and subject in rows:
            rows[subject]["left_s"] = min(rows[subject]["left_s"], float(str(row.time_s)))
            rows[subject]["failed"] = rows[subject]["failed"] or kind == "agent_failed"
    listed = list(rows.values()) + coordinator_rows(world.coordinators, end_s)
    frame = pd.DataFrame(listed)
    frame.insert(0, "replication", np.zeros(len(frame), dtype=np.int64))
    return frame
