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
from itertools import chain
from operator import itemgetter
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
#: Positions in a row of the integer and of the float columns, in column order.
_INT_INDEXES = tuple(TASK_COLUMNS.index(name) for name in _INT_COLUMNS)
_FLOAT_INDEXES = tuple(
    i
    for i, name in enumerate(TASK_COLUMNS)
    if name not in (*_INT_COLUMNS, *_STR_COLUMNS, "outcome", "critical")
)

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
        rows, count = self._rows, len(self._rows)
        data: dict[str, Any] = {"replication": np.full(count, replication, dtype=np.int64)}
        ints = _block(rows, _INT_INDEXES, np.int64)
        floats = _block(rows, _FLOAT_INDEXES, np.float64)
        for index, name in enumerate(TASK_COLUMNS):
            if name in _INT_COLUMNS:
                data[name] = ints[_INT_INDEXES.index(index)]
            elif name in _STR_COLUMNS:
                data[name] = _categorical(list(map(itemgetter(index), rows)))
            elif name == "outcome":
                data[name] = _categorical(list(map(itemgetter(index), rows)), list(OUTCOMES))
            elif name == "critical":
                data[name] = np.fromiter(map(itemgetter(index), rows), dtype=bool, count=count)
            else:
                data[name] = floats[_FLOAT_INDEXES.index(index)]
        frame = pd.DataFrame(data)
        for name in ("dispatch_s", "start_s"):  # -1 in the shells means "not yet"
            frame[name] = frame[name].where(frame[name] >= 0)
        frame["wait_s"] = frame["start_s"] - frame["arrival_s"]
        frame["latency_s"] = frame["complete_s"] - frame["arrival_s"]
        frame["warm"] = frame["arrival_s"] >= warmup_s
        return frame


def _block(rows: list[tuple[Any, ...]], indexes: tuple[int, ...], dtype: type) -> np.ndarray:
    """The columns at *indexes* of *rows* as one contiguous array per column (``out[k]``).

    One pass over the rows for all of them, in C: each row's fields are picked
    as a tuple and flattened into a single ``fromiter`` (a pass per column
    through ``map(itemgetter(i), rows)`` cost two and a half times as much).
    """
    width, count = len(indexes), len(rows)
    flat: np.ndarray = np.fromiter(
        chain.from_iterable(map(itemgetter(*indexes), rows)), dtype=dtype, count=count * width
    )
    return np.ascontiguousarray(flat.reshape(count, width).T)


def _categorical(
    values: Collection[str], categories: list[str] | None = None
) -> pd.Categorical[Any]:
    """``pd.Categorical(values, categories)`` for a column of a few distinct strings, built faster.

    pandas factorises a list of Python strings through an Arrow array (about
    50 ms per quarter-million rows, five columns a run); a dict gives each
    distinct string its code in one pass. The categories are the sorted
    distinct values, as pandas infers them, unless *categories* are given.
    """
    found = list(dict.fromkeys(values))
    if not found or not all(type(value) is str for value in found):
        # Nothing, None or numbers: pandas' own rules (and its inferred category type).
        if categories is None:
            return pd.Categorical(list(values))
        return pd.Categorical(list(values), categories=categories)
    if categories is None:
        categories = sorted(found)
    position = dict.fromkeys(found, -1)  # a value outside given categories: missing
    position.update((category, code) for code, category in enumerate(categories))
    codes = np.fromiter(map(position.__getitem__, values), dtype=np.int64, count=len(values))
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype="str"))


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
    microsecond — changes the digest. Text is hashed as its values joined by
    ``\x1f``; a categorical column's text is looked up from its codes in one
    numpy take rather than converted value by value (the same bytes).
    """
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(str(len(frame)).encode())
        for column in frame.columns:
            values = frame[column]
            if isinstance(values.dtype, pd.CategoricalDtype):
                digest.update("\x1f".join(_category_text(values)).encode())
            elif values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
                digest.update("\x1f".join(map(str, values.tolist())).encode())
            else:
                digest.update(np.ascontiguousarray(values.to_numpy()).tobytes())
    return digest.hexdigest()


def _category_text(values: pd.Series) -> list[str]:
    """The column's values as text, as ``str(value)`` of ``values.astype(str)`` gives them."""
    names = [str(category) for category in values.cat.categories.tolist()]
    names.append("nan")  # code -1: a missing value
    table = np.asarray(names, dtype=object)
    text: list[str] = table[values.cat.codes.to_numpy()].tolist()
    return text


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
