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
from array import array
from typing import Any

import numpy as np
import pandas as pd

TASK_FLOAT_COLUMNS = (
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
TASK_INT_COLUMNS = ("task_id", "job_id", "node", "attempt")
TASK_STR_COLUMNS = ("category", "home_zone", "zone", "agent", "outcome", "reason")

OUTCOMES = ("completed", "failed", "retried", "in_flight")


class TaskLog:
    """Task attempts, appended as they end (completed, failed, retried) or at the end of a run."""

    def __init__(self) -> None:
        self._floats = {name: array("d") for name in TASK_FLOAT_COLUMNS}
        self._ints = {name: array("q") for name in TASK_INT_COLUMNS}
        self._strs: dict[str, list[str]] = {name: [] for name in TASK_STR_COLUMNS}
        self._critical = array("b")

    def append(
        self,
        *,
        task_id: int,
        job_id: int,
        node: int,
        attempt: int,
        category: str,
        home_zone: str,
        zone: str,
        agent: str,
        outcome: str,
        critical: bool,
        arrival_s: float,
        dispatch_s: float,
        start_s: float,
        end_s: float,
        complete_s: float,
        work_s: float,
        service_s: float,
        transfer_s: float,
        queue_s: float,
        reason: str = "",
    ) -> None:
        f, i, s = self._floats, self._ints, self._strs
        f["arrival_s"].append(arrival_s)
        f["dispatch_s"].append(dispatch_s)
        f["start_s"].append(start_s)
        f["end_s"].append(end_s)
        f["complete_s"].append(complete_s)
        f["work_s"].append(work_s)
        f["service_s"].append(service_s)
        f["transfer_s"].append(transfer_s)
        f["queue_s"].append(queue_s)
        i["task_id"].append(task_id)
        i["job_id"].append(job_id)
        i["node"].append(node)
        i["attempt"].append(attempt)
        s["category"].append(category)
        s["home_zone"].append(home_zone)
        s["zone"].append(zone)
        s["agent"].append(agent)
        s["outcome"].append(outcome)
        s["reason"].append(reason)
        self._critical.append(1 if critical else 0)

    def __len__(self) -> int:
        return len(self._critical)

    def frame(self, replication: int, warmup_s: float) -> pd.DataFrame:
        """The log as the documented ``tasks.parquet`` table."""
        data: dict[str, Any] = {"replication": np.full(len(self), replication, dtype=np.int64)}
        for name in TASK_INT_COLUMNS:
            data[name] = np.frombuffer(self._ints[name], dtype=np.int64).copy()
        for name in TASK_STR_COLUMNS:
            data[name] = pd.Categorical(self._strs[name])
        data["critical"] = np.frombuffer(self._critical, dtype=np.int8).astype(bool)
        for name in TASK_FLOAT_COLUMNS:
            data[name] = np.frombuffer(self._floats[name], dtype=np.float64).copy()
        frame = pd.DataFrame(data)
        frame["wait_s"] = frame["start_s"] - frame["arrival_s"]
        frame["latency_s"] = frame["complete_s"] - frame["arrival_s"]
        frame["warm"] = frame["arrival_s"] >= warmup_s
        frame["outcome"] = frame["outcome"].cat.set_categories(list(OUTCOMES))
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
