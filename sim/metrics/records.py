"""One record format for both shells: task attempts, sampled metrics, events, agents.

The SimPy model and the live adapter both fill these logs, and everything
downstream (summary, report, sweeps, regression, replay) reads only the
DataFrames they produce, so an analysis written for a simulation works on a
live run unchanged. Logs are columnar (``array`` for numbers) because a
simulated day holds a quarter of a million task rows: a row of Python objects
per task would cost several times the memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable
from typing import Any, Protocol

import numpy as np
import pandas as pd

#: Columns of ``tasks.parquet`` in the order a row is recorded.
TASK_COLUMNS = (
    "task_id",
    "job_id",
    "node",
    "attempt",
    "category",
    "home_zone",
    "zone",
    "agent",
    "outcome",
    "reason",
    "critical",
    "arrival_s",
    "dispatch_s",
    "start_s",
    "end_s",
    "complete_s",
    "work_s",
    "service_s",
    "transfer_s",
    "queue_s",
)
_INT_COLUMNS = ("task_id", "job_id", "node", "attempt")
_STR_COLUMNS = ("category", "home_zone", "zone", "agent", "reason")

OUTCOMES = ("completed", "failed", "retried", "in_flight")


class TaskAttempt(Protocol):
    """What a shell's task object must offer to be recorded (the model's Task does)."""

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

    @property
    def job_id(self) -> int: ...


class TaskLog:
    """Task attempts, recorded as they end (completed, failed, retried) or at the end of a run.

    A row is one tuple appended to a list — the cheapest thing Python can do
    per task on the hot path; the columns are built once, in :meth:`frame`.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[Any, ...]] = []

    def record(
        self,
        task: TaskAttempt,
        outcome: str,
        end_s: float,
        complete_s: float,
        service_s: float,
        reason: str = "",
    ) -> None:
        self._rows.append(
            (
                task.id,
                task.job_id,
                task.node,
                task.attempt,
                task.category,
                task.home_zone,
                task.zone,
                task.agent,
                outcome,
                reason,
                task.critical,
                task.arrival,
                task.dispatch,
                task.start,
                end_s,
                complete_s,
                task.work,
                service_s,
                task.transfer,
                task.queued,
            )
        )

    def __len__(self) -> int:
        return len(self._rows)

    def frame(self, replication: int, warmup_s: float) -> pd.DataFrame:
        """The log as the documented ``tasks.parquet`` table."""
        columns = list(zip(*self._rows, strict=True)) if self._rows else [()] * len(TASK_COLUMNS)
        data: dict[str, Any] = {"replication": np.full(len(self), replication, dtype=np.int64)}
        for name, values in zip(TASK_COLUMNS, columns, strict=True):
            if name in _INT_COLUMNS:
                data[name] = np.asarray(values, dtype=np.int64)
            elif name in _STR_COLUMNS:
                data[name] = pd.Categorical(values)
            elif name == "outcome":
                data[name] = pd.Categorical(values, categories=list(OUTCOMES))
            elif name == "critical":
                data[name] = np.asarray(values, dtype=bool)
            else:
                data[name] = np.asarray(values, dtype=np.float64)
        frame = pd.DataFrame(data)
        for name in ("dispatch_s", "start_s"):  # -1 in the shells means "not yet"
            frame[name] = frame[name].where(frame[name] >= 0)
        frame["wait_s"] = frame["start_s"] - frame["arrival_s"]
        frame["latency_s"] = frame["complete_s"] - frame["arrival_s"]
        frame["warm"] = frame["arrival_s"] >= warmup_s
        return frame


class EventLog:
    """What happens to the orchestra rather than to one task: failures, elections, scaling."""

    def __init__(self) -> None:
        self._rows: list[tuple[float, str, str, str]] = []

    def add(self, time_s: float, kind: str, subject: str = "", **detail: Any) -> None:
        text = json.dumps(detail, sort_keys=True, separators=(",", ":")) if detail else "{}"
        self._rows.append((float(time_s), kind, subject, text))

    def __len__(self) -> int:
        return len(self._rows)

    def tail(self, count: int, skip: Collection[str] = ()) -> list[tuple[float, str, str, str]]:
        """The last *count* events whose kind is not in *skip*, oldest first."""
        found = []
        for row in reversed(self._rows):
            if row[1] not in skip:
                found.append(row)
                if len(found) == count:
                    break
        return found[::-1]

    def frame(self, replication: int) -> pd.DataFrame:
        frame = pd.DataFrame(self._rows, columns=["time_s", "kind", "subject", "detail"])
        frame.insert(0, "replication", np.full(len(frame), replication, dtype=np.int64))
        return frame.astype({"time_s": "float64", "kind": "str", "subject": "str", "detail": "str"})


def canonical_sha256(*frames: pd.DataFrame) -> str:
    """A hash of the frames' contents that is identical bit for bit across identical runs.

    Each frame's columns are hashed in a fixed order from their raw values
    (floats by their IEEE bytes), so any difference — one event, one
    microsecond — changes the digest.
    """
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(str(len(frame)).encode())
        for column in frame.columns:
            values = frame[column]
            if isinstance(values.dtype, pd.CategoricalDtype):
                values = values.astype(str)
            if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
                digest.update("\x1f".join(map(str, values.tolist())).encode())
            else:
                digest.update(np.ascontiguousarray(values.to_numpy()).tobytes())
    return digest.hexdigest()


class Coordinating(Protocol):
    """A coordinating agent as ``agents.parquet`` lists it (the world's CoordinatorSpec)."""

    @property
    def agent_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def zone(self) -> str | None: ...
    @property
    def region(self) -> str: ...
    @property
    def vcpu(self) -> float: ...
    @property
    def mem_gb(self) -> float: ...


def coordinator_rows(coordinators: Iterable[Coordinating], end_s: float) -> list[dict[str, Any]]:
    """``agents.parquet`` rows for the coordinators: there from the start to *end_s*, no slots."""
    return [
        {
            "agent": c.agent_id,
            "role": c.role,
            "category": "",
            "zone": c.zone or "",
            "team": "",
            "region": c.region,
            "vcpu": c.vcpu,
            "mem_gb": c.mem_gb,
            "speed": 1.0,
            "slots": 0,
            "from_reserve": False,
            "joined_s": 0.0,
            "left_s": end_s,
            "failed": False,
        }
        for c in coordinators
    ]


#: ``jobs.parquet``'s columns and their types, the same in both shells whether or not a job
#: finished (an empty frame would otherwise be all ``object`` columns).
JOB_COLUMNS: dict[str, str] = {
    "replication": "int64",
    "job_id": "int64",
    "shape": "object",
    "nodes": "int64",
    "arrival_s": "float64",
    "complete_s": "float64",
    "cp_bound_s": "float64",
    "work_s": "float64",
    "makespan_s": "float64",
}


def jobs_frame(rows: list[dict[str, Any]], replication: int) -> pd.DataFrame:
    """The finished DAG jobs as ``jobs.parquet``'s frame, typed even when empty.

    Each row holds ``job_id, shape, nodes, arrival_s, complete_s, cp_bound_s, work_s``.
    """
    given = [c for c in JOB_COLUMNS if c not in ("replication", "makespan_s")]
    frame = pd.DataFrame(rows, columns=given)
    frame["makespan_s"] = frame["complete_s"] - frame["arrival_s"]
    frame.insert(0, "replication", replication)
    return frame.astype(JOB_COLUMNS)[list(JOB_COLUMNS)]
