"""``scaling.parquet``: every autoscaler evaluation, what it saw and what it decided.

The event log keeps a ``scale`` event only where an evaluation changed the
fleet, so a run that did not scale cannot say how close it came: whether the
average response was 4.9 s against a 5 s threshold or 0.3 s. Users tuning a
threshold, gating a policy change in CI, or asking why live scaled where its
replay did not, need every evaluation: the window's observation (the numbers
the autoscaler decided on, not the metrics samples, which are not averaged
over its window) beside the decision and its reason. Both shells write the
same rows from one builder: the simulator's control loop, live's primary
(published on its metrics stream, so a takeover's successor goes on from its
predecessor's rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from sim.policies.scaling_loop import ScalePlan

__all__ = ["OBSERVED", "SCALING_COLUMNS", "SCALING_LEVEL", "evaluation_row", "scaling_frame"]

#: How live's primary tags an evaluation's row on its metrics stream (not a metrics sample).
SCALING_LEVEL = "scaling"

#: The observation's fields, as the autoscaler saw them (``FleetObservation``).
OBSERVED = (
    "agents",
    "ready",
    "starting",
    "queue_depth",
    "avg_response_time_s",
    "cpu_utilization",
    "idle_fraction",
    "in_flight",
    "arrival_rate",
)
#: One row per evaluation: when, the policy, what it saw, what it asked for, and why.
SCALING_COLUMNS = ("time_s", "policy", *OBSERVED, "asked", "target", "reason")


def evaluation_row(time_s: float, plan: ScalePlan) -> dict[str, Any]:
    """The row of the evaluation at *time_s* that produced *plan*.

    ``asked`` is the decision's delta (+ add, - drain, 0 hold): what the
    policy asked for, whatever the shell then managed to do (the ``scale``
    event's ``delta``). A metric the pipeline had not delivered is None (NaN
    in the table), so the row is a JSON document as it stands.
    """
    observed = plan.observation
    decision = plan.decision
    row: dict[str, Any] = {"time_s": float(time_s), "policy": decision.policy}
    for name in OBSERVED:
        value = math.nan if observed is None else float(getattr(observed, name))
        row[name] = None if math.isnan(value) else value
    row.update(asked=int(decision.delta), target=int(decision.target), reason=decision.reason)
    return row


def scaling_frame(rows: Iterable[Mapping[str, Any]], replication: int) -> pd.DataFrame:
    """The documented table from *rows* (:func:`evaluation_row`), in time order."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(SCALING_COLUMNS))
    frame = frame.sort_values("time_s", kind="stable", ignore_index=True)
    frame.insert(0, "replication", np.full(len(frame), replication, dtype=np.int64))
    for column in ("time_s", *OBSERVED):
        frame[column] = frame[column].astype("float64")
    for column in ("asked", "target"):
        frame[column] = frame[column].astype("int64")
    for column in ("policy", "reason"):
        frame[column] = frame[column].astype("object")
    return frame
