"""Records of control traffic and coordinator load, as either shell reports them per interval."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TrafficRow:
    """Messages of one type on one path over one sampling interval."""

    type: str
    path: str
    messages: float
    bytes: float


@dataclass(frozen=True, slots=True)
class CoordinatorRow:
    """One coordinator over one sampling interval."""

    name: str
    role: str
    utilization: float  # share of its capacity used, background included
    messages: float  # messages processed, background included
    queue_delay_s: float  # mean wait in its queue of the task messages it processed
