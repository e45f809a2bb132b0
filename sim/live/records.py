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
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.live.llm_records import llm_frame
from sim.live.task import attempt_failure
from sim.metrics.collector import MetricsCollector
from sim.metrics.records import EventLog, TaskLog, canonical_sha256, coordinator_rows, jobs_frame
from sim.metrics.result import RunResult
from sim.metrics.summary import summarize
from sim.metrics.tier_summary import tier_frame
from sim.scenario.schema import Scenario
from sim.world.spot_books import initial_spot
from sim.world.topology import World, specialist_template

#: Wall seconds between a routing (or an assignment) and a start that are transport, not queueing.
TRANSPORT_SLACK_WALL_S = 0.05

#: Columns of the ``drained`` table: work that ended after the window, one row per task.
DRAINED_COLUMNS = (
    "task_id",
    "job_id",
    "attempt",
    "agent",
    "zone",
    "outcome",
    "arrival_s",
    "start_s",
    "complete_s",
)


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
    #: Tasks whose first end came after the window (DRAINED_COLUMNS), in completion order.
    drained: pd.DataFrame
    #: Submitted tasks that never ended, not even while the run drained.
    unfinished: int
    #: The per-attempt model calls (``llm.parquet``; None: the scenario has no llm section).
    llm: pd.DataFrame | None = None
    #: One row per admission verdict (``tiers.parquet``; None: the scenario has no tiers).
    tiers: pd.DataFrame | None = None

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
        )


@dataclass
class _Results:
    """The zones' dispatch records and results by task: routing, assignments, starts, ends."""

    routed: dict[int, tuple[float, str]] = field(default_factory=dict)
    assigned: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    starts: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    ends: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: The admission verdicts by task (tiers), the first one written per task.
    admissions: dict[int, dict[str, Any]] = field(default_factory=dict)


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
    books = _sort_results(results)
    log = TaskLog()
    counts = dict.fromkeys(("submitted", "completed", "failed", "shed", "in_flight", "retried"), 0)
    folder = _Folder(end_s, TRANSPORT_SLACK_WALL_S * time_scale, books, log, counts)
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
    collector.extend(
        {k: (math.nan if v is None else v) for k, v in row.items()}
        for row in sorted(metric_rows, key=lambda r: (float(r["time_s"]), r["level"] != "global"))
        if float(row["time_s"]) <= end_s + 1e-9
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
    )


def _tiers_table(scenario: Scenario, books: _Results) -> pd.DataFrame | None:
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
    scenario: Scenario, tasks: dict[int, dict[str, Any]], books: _Results, end_s: float
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


def _sort_results(results: Iterable[dict[str, Any]]) -> _Results:
    books = _Results()
    for doc in results:
        task_id = int(doc["task_id"])
        kind = doc["kind"]
        if kind == "admission":
            books.admissions.setdefault(task_id, doc)
        elif kind == "dispatch":
            books.routed.setdefault(task_id, (float(doc["dispatch_s"]), str(doc["zone"])))
        elif kind == "assign":
            books.assigned.setdefault(task_id, {}).setdefault(int(doc["attempt"]), doc)
        elif kind == "start":
            books.starts.setdefault(task_id, {})[int(doc["attempt"])] = doc
        else:
            books.ends.setdefault(task_id, []).append(doc)
    return books


class _Folder:
    """Turns one task's reports into the rows the simulator would have recorded at *end_s*."""

    def __init__(
        self,
        end_s: float,
        slack_s: float,
        books: _Results,
        log: TaskLog,
        counts: dict[str, int],
    ) -> None:
        self.end_s, self.slack_s, self.books, self.log, self.counts = (
            end_s,
            slack_s,
            books,
            log,
            counts,
        )
        self.duplicates = 0
        self.unfinished = 0
        self.finished_at: dict[int, float] = {}
        self.drained: list[tuple[Any, ...]] = []

    def fold(self, task_id: int, info: dict[str, Any]) -> None:
        end_s, books = self.end_s, self.books
        self.counts["submitted"] += 1
        admission = books.admissions.get(task_id)
        if admission is not None and admission["admission"] == "shed":
            self.counts["shed"] += 1  # shed at the door: no attempt, as in the simulator
            return
        routed_s, routed_zone = books.routed.get(task_id, (-1.0, str(info["zone"])))
        if info.get("released") and routed_s >= 0:
            # A DAG node arrives when its predecessors' ends released it (the simulator's
            # _release): the coordinator routed it then.
            info = {**info, "arrival_s": routed_s}
        reports = sorted(books.ends.get(task_id, []), key=lambda d: float(d["end_s"]))
        # An agent's failed attempt is not the task's end (the escalation placed it again, or
        # ended it with a final report of its own): a retried row, as the simulator logs it.
        failures = {
            int(d["attempt"]): d
            for d in reports
            if attempt_failure(d) and float(d["end_s"]) <= end_s
        }
        ends = [d for d in reports if not attempt_failure(d)]
        self.duplicates += max(0, len(ends) - 1)
        first_end = ends[0] if ends else None
        if first_end is None:
            self.unfinished += 1
        elif float(first_end["end_s"]) > end_s:
            self.drained.append(_drained_row(task_id, info, first_end))
        final = first_end if first_end is not None and float(first_end["end_s"]) <= end_s else None
        # What the window saw: assignments and starts by its end.
        assigned = {
            n: d
            for n, d in books.assigned.get(task_id, {}).items()
            if float(d["assign_s"]) <= end_s
        }
        started = {
            n: d for n, d in books.starts.get(task_id, {}).items() if float(d["start_s"]) <= end_s
        }
        for number, report in failures.items():
            started.setdefault(number, report)  # (an end report carries its start)
        if final is not None:
            last = int(final["attempt"])
            started[last] = final
        else:
            last = max([*assigned, *started], default=1)
        numbers = sorted(n for n in {*assigned, *started} if n <= last)
        if not numbers:  # never assigned by the end: in its pool's queue all along
            self.counts["in_flight"] += 1
            if routed_s < 0 and int(info["job_id"]) >= 0:
                return  # a DAG node not yet released: counted, no row (as the simulator)
            waited = self._waited(end_s - routed_s, routed_s)
            attempt = _attempt(task_id, info, 1, None, routed_zone, waited)
            self.log.record(attempt, "in_flight", math.nan, math.nan, 0.0)
            return
        queued, ready, after_start = 0.0, routed_s, False
        for number in numbers:
            doc, assign = started.get(number), assigned.get(number)
            if after_start:
                ready = _assign_time(assign)  # placed again after a failed attempt
            if doc is not None:
                queued += self._waited(float(doc["start_s"]) - ready, ready)
            elif number == last:
                queued += self._waited(end_s - ready, ready)  # still waiting at the end
            after_start = doc is not None
            attempt = _attempt(task_id, info, number, doc or assign, routed_zone, queued)
            attempt.dispatch = _assign_time(assign)
            failure = failures.get(number)
            if failure is not None:
                self.counts["retried"] += 1
                end = float(failure["end_s"])
                reason = str(failure.get("reason") or "failed")
                self.log.record(attempt, "retried", end, end, end - attempt.start, reason)
                if number == last:  # waiting out a backoff, or placed and not assigned yet
                    self.counts["in_flight"] += 1
                    waiting = queued + self._waited(end_s - end, end)
                    pending = _attempt(task_id, info, number + 1, None, routed_zone, waiting)
                    self.log.record(pending, "in_flight", math.nan, math.nan, 0.0)
                continue
            if number < last:
                if doc is None:
                    continue  # assigned, never started, placed again: no attempt of its own
                self.counts["retried"] += 1
                again = self._reassigned(number, assigned, started)
                self.log.record(attempt, "retried", again, again, again - attempt.start)
            elif final is not None:
                end = float(final["end_s"])
                outcome = str(final["outcome"])
                self.counts[outcome] += 1
                self.finished_at[task_id] = end
                reason = str(final.get("reason", ""))  # the coordinator's failure for good
                self.log.record(attempt, outcome, end, end, end - attempt.start, reason)
            else:
                self.counts["in_flight"] += 1
                served = end_s - attempt.start if attempt.start >= 0 else 0.0
                self.log.record(attempt, "in_flight", math.nan, math.nan, served)

    def _waited(self, span_s: float, since: float) -> float:
        """Queueing in *span_s* from *since*: none if unknown or within the transport's slack."""
        return span_s if since >= 0 and span_s > self.slack_s else 0.0

    @staticmethod
    def _reassigned(
        number: int,
        assigned: dict[int, dict[str, Any]],
        started: dict[int, dict[str, Any]],
    ) -> float:
        """When a failed attempt *number* was given up: the task's next assignment (or start)."""
        later = [float(d["assign_s"]) for n, d in assigned.items() if n > number]
        later += [float(d["start_s"]) for n, d in started.items() if n > number]
        return min(later)


def _attempt(
    task_id: int,
    info: dict[str, Any],
    number: int,
    doc: dict[str, Any] | None,
    zone: str,
    queued: float,
) -> _Attempt:
    """Attempt *number* of a task; *doc* is its start (or else its assignment) report."""
    start = float(doc["start_s"]) if doc is not None and "start_s" in doc else -1.0
    return _Attempt(
        id=task_id,
        node=int(info["node"]),
        attempt=number,
        category=str(info["category"]),
        home_zone=str(info["zone"]),
        zone=str(doc["zone"]) if doc is not None else zone,
        agent=str(doc["agent"]) if doc is not None else "",
        critical=False,
        arrival=float(info["arrival_s"]),
        dispatch=-1.0,
        start=start,
        work=float(info["work_s"]),
        transfer=0.0,
        queued=queued,
        job=int(info["job_id"]),
    )


def _assign_time(doc: dict[str, Any] | None) -> float:
    return float(doc["assign_s"]) if doc is not None else -1.0


def _drained_row(task_id: int, info: dict[str, Any], end: dict[str, Any]) -> tuple[Any, ...]:
    return (
        task_id,
        int(info["job_id"]),
        int(end["attempt"]),
        str(end["agent"]),
        str(end["zone"]),
        str(end["outcome"]),
        float(info["arrival_s"]),
        float(end["start_s"]),
        float(end["end_s"]),
    )


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


def agents_frame(
    scenario: Scenario, world: World, events: pd.DataFrame, end_s: float
) -> pd.DataFrame:
    """``agents.parquet``: one row per agent incarnation, its presence clipped to the window.

    As in the simulator, an agent is present from its join until it drained
    (``agent_left``), was declared dead (``agent_detected``) or its zone went
    dark (``zone_down``); a crashed agent nobody has detected yet is still on
    the books. An agent back under its id (``agent_rejoined``) is a new row.
    *events* is the window's event log.
    """
    template = specialist_template(scenario)
    spot = scenario.purchase.spot
    on_spot = initial_spot(spot, ((s.agent_id, s.zone, s.category) for s in world.specialists))
    current: dict[str, dict[str, Any]] = {}
    gone: list[dict[str, Any]] = []
    for spec in world.specialists:
        current[spec.agent_id] = {
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
        if spot is not None:
            current[spec.agent_id]["spot"] = spec.agent_id in on_spot
    last_row: dict[str, dict[str, Any]] = dict(current)
    for row in events.itertuples(index=False):
        subject, kind, time_s = str(row.subject), str(row.kind), float(str(row.time_s))
        if kind == "agent_joined" and subject not in last_row:
            detail = json.loads(str(row.detail))
            zone = str(detail.get("zone", ""))
            current[subject] = last_row[subject] = {
                "agent": subject,
                "role": "specialist",
                "category": detail.get("category", ""),
                "zone": zone,
                "team": str(detail.get("team", "")),  # what its heartbeats said
                "region": world.regions.get(zone, ""),
                "vcpu": template.vcpu,
                "mem_gb": template.mem_gb,
                "speed": template.speed,
                "slots": template.slots,
                "from_reserve": True,
                "joined_s": time_s,
                "left_s": end_s,
                "failed": False,
            }
            if spot is not None:
                current[subject]["spot"] = bool(detail.get("spot", False))
        elif kind in ("agent_rejoined", "agent_joined") and subject not in current:
            if subject in last_row:
                current[subject] = {**last_row[subject], "joined_s": time_s, "left_s": end_s}
                current[subject]["failed"] = False
                last_row[subject] = current[subject]
        elif kind in ("agent_left", "agent_detected", "agent_reclaimed") and subject in current:
            leaving = current.pop(subject)
            leaving["left_s"] = time_s
            leaving["failed"] = kind == "agent_detected"
            gone.append(leaving)
        elif kind == "zone_down":
            for agent_id in [a for a, r in current.items() if r["zone"] == subject]:
                leaving = current.pop(agent_id)
                leaving["left_s"] = time_s
                leaving["failed"] = True
                gone.append(leaving)
    listed = gone + list(current.values()) + coordinator_rows(world.coordinators, end_s)
    frame = pd.DataFrame(listed)
    frame.insert(0, "replication", np.zeros(len(frame), dtype=np.int64))
    return frame
