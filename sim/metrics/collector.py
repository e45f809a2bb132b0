"""The spec's agent-, zone- and global-level metrics (section 6.1), sampled on an interval.

A shell tells the collector about each finished task as it happens (cheap:
a counter and a list append) and hands it a snapshot of the fleet on every
sampling tick; the collector turns both into rows of ``metrics.parquet``.
Latency percentiles per interval are computed from the tasks finished in
that interval, which is what a monitoring system's histogram would show.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.metrics.traffic import CoordinatorRow, TrafficRow

VALUE_COLUMNS = (
    "total_agents",
    "active_agents",
    "busy_agents",
    "offline_agents",
    "queue_depth",
    "in_flight",
    "in_system",
    "tasks_completed",
    "tasks_failed",
    "throughput_per_min",
    "error_rate",
    "p50_latency_s",
    "p99_latency_s",
    "avg_latency_s",
    "p50_wait_s",
    "p99_wait_s",
    "avg_wait_s",
    "utilization",
    "cpu_usage",
    "memory_usage",
    "error_count",
    "avg_task_duration_s",
    "cost_usd",
    "messages",
    "message_bytes",
    "queue_delay_s",
)


@dataclass(frozen=True, slots=True)
class ZoneSnapshot:
    """A zone at one instant, as its coordinator knows it."""

    zone: str
    total_agents: int  # specialists provisioned (any status)
    active_agents: int  # specialists online (idle or busy)
    busy_agents: int  # specialists serving at least one task
    queue_depth: int  # tasks waiting in the zone (its queues plus agents' local queues)
    in_flight: int  # tasks held by the zone's agents (queued locally, transferring or serving)
    in_system: int  # tasks held by agents or waiting in the zone's queues (Little's L)
    slots: int  # concurrency slots online
    busy_slots: int  # slots serving
    offline_agents: int = 0  # failed and not yet restarted or replaced


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """One specialist at one instant (the spec's agent-level metrics)."""

    agent_id: str
    zone: str
    status: str  # idle | busy | error | offline
    current_task: int  # -1 when idle
    cpu_usage: float  # share of its slots busy over the last agent interval
    memory_usage: (
        float  # share of its memory in use (model: 25 % idle footprint + 75 % x busy share)
    )
    tasks_completed: int
    error_count: int
    avg_task_duration_s: float


@dataclass(frozen=True, slots=True)
class AgentColumns:
    """Every specialist at one instant, one column per metric: a tick's agent rows at once.

    The simulator samples hundreds to thousands of agents per tick; a row
    object and a dict per agent were most of the sampling's cost and most of
    the rows the metrics frame is built from. Numbers are float64 arrays in
    the order of ``agent_id`` (``current_task`` -1 when idle,
    ``avg_task_duration_s`` NaN before a first completion).
    """

    agent_id: list[str]
    zone: list[str]
    status: list[str]
    current_task: np.ndarray
    cpu_usage: np.ndarray
    memory_usage: np.ndarray
    tasks_completed: np.ndarray
    error_count: np.ndarray
    avg_task_duration_s: np.ndarray

    @classmethod
    def of(cls, agents: Iterable[AgentSnapshot]) -> AgentColumns:
        """The columns of a list of one-agent snapshots."""
        rows = list(agents)

        def numbers(name: str) -> np.ndarray:
            return np.asarray([float(getattr(a, name)) for a in rows], dtype=np.float64)

        return cls(
            agent_id=[a.agent_id for a in rows],
            zone=[a.zone for a in rows],
            status=[a.status for a in rows],
            current_task=numbers("current_task"),
            cpu_usage=numbers("cpu_usage"),
            memory_usage=numbers("memory_usage"),
            tasks_completed=numbers("tasks_completed"),
            error_count=numbers("error_count"),
            avg_task_duration_s=numbers("avg_task_duration_s"),
        )

    def __len__(self) -> int:
        return len(self.agent_id)


_AGENT_NUMBERS = (
    "current_task",
    "cpu_usage",
    "memory_usage",
    "tasks_completed",
    "error_count",
    "avg_task_duration_s",
)


class MetricsCollector:
    """Accumulates completions between ticks and emits the documented metric rows."""

    def __init__(self, zones: Sequence[str], interval_s: float) -> None:
        self._zones = list(zones)
        self._interval = interval_s
        self._latencies: list[float] = []
        self._waits: list[float] = []
        self._zone_latencies: dict[str, list[float]] = {z: [] for z in zones}
        self._completed: dict[str, int] = dict.fromkeys(zones, 0)
        self._failed: dict[str, int] = dict.fromkeys(zones, 0)
        #: Failures for the error rate: failed attempts, plus tasks failed for good otherwise.
        self._errors: dict[str, int] = dict.fromkeys(zones, 0)
        self._total_completed = 0
        self._last_time = 0.0
        self._rows: list[dict[str, Any]] = []
        #: Value columns beyond the spec's, added by an opt-in model (the llm providers' rows).
        self.extra_columns: tuple[str, ...] = ()
        #: Agent rows, a block per tick: (rows before it in _rows, time, columns).
        self._agent_blocks: list[tuple[int, float, AgentColumns]] = []

    @property
    def since(self) -> float:
        """When the current interval began: the last sample's time (0: none yet)."""
        return self._last_time

    def resume(self, last_sample_s: float, total_completed: int) -> None:
        """Go on from a predecessor's last sample: its time, and the completions counted
        up to it (a live takeover: the spec's chiefs keep their metrics through Raft,
        so the first interval after it is as long as any, and the count runs on)."""
        self._last_time = last_sample_s
        self._total_completed = total_completed

    def task_finished(
        self,
        zone: str,
        latency_s: float,
        wait_s: float = 0.0,
        *,
        failed: bool = False,
        attempt_counted: bool = False,
    ) -> None:
        """Count one finished task (latency: arrival to completion; wait: to service start).

        A task that failed for good counts as an error unless its last attempt's
        failure was already counted (*attempt_counted*).
        """
        if failed:
            self._failed[zone] += 1
            if not attempt_counted:
                self._errors[zone] += 1
            return
        self._completed[zone] += 1
        self._latencies.append(latency_s)
        self._waits.append(wait_s)
        self._zone_latencies[zone].append(latency_s)

    def attempt_failed(self, zone: str) -> None:
        """An attempt ended in an error or a timeout (the task may yet succeed on a retry)."""
        self._errors[zone] += 1

    def sample_traffic(
        self, now: float, messages: Iterable[TrafficRow], coordinators: Iterable[CoordinatorRow]
    ) -> None:
        """Rows for the control traffic (per message type and path) and each coordinator's load."""
        for m in messages:
            self._rows.append(
                {
                    "time_s": now,
                    "level": "message",
                    "id": f"{m.type}:{m.path}",
                    "zone": None,
                    "status": None,
                    "messages": m.messages,
                    "message_bytes": m.bytes,
                }
            )
        for c in coordinators:
            self._rows.append(
                {
                    "time_s": now,
                    "level": "coordinator",
                    "id": c.name,
                    "zone": None,
                    "status": c.role,
                    "utilization": c.utilization,
                    "messages": c.messages,
                    "queue_delay_s": c.queue_delay_s,
                }
            )

    def sample(
        self, now: float, zones: Sequence[ZoneSnapshot], cost_usd: float = math.nan
    ) -> dict[str, Any]:
        """Emit one global row and one row per zone for the interval ending at *now*.

        *cost_usd* is the fleet's cumulative cost so far (global rows only).
        The interval's counters are reset once its rows are out, so the next
        tick's percentiles see only the tasks finished after this one.
        """
        span = max(now - self._last_time, 1e-9)
        self._last_time = now
        global_row = self._global_row(now, span, zones, cost_usd)
        self._rows.append(global_row)
        for z in zones:
            self._rows.append(self._zone_row(now, span, z))
            self._reset_zone(z.zone)
        self._latencies = []
        self._waits = []
        return global_row

    def _global_row(
        self, now: float, span: float, zones: Sequence[ZoneSnapshot], cost_usd: float
    ) -> dict[str, Any]:
        """The fleet's row: zone snapshots summed, this interval's completions over *span*."""
        total_done = sum(self._completed.values())
        total_failed = sum(self._failed.values())
        total_errors = sum(self._errors.values())
        self._total_completed += total_done
        p50, p99, avg = _percentiles(self._latencies)
        w50, w99, w_avg = _percentiles(self._waits)
        slots = sum(z.slots for z in zones)
        busy_slots = sum(z.busy_slots for z in zones)
        return {
            "time_s": now,
            "level": "global",
            "id": "global",
            "total_agents": float(sum(z.total_agents for z in zones)),
            "active_agents": float(sum(z.active_agents for z in zones)),
            "busy_agents": float(sum(z.busy_agents for z in zones)),
            "offline_agents": float(sum(z.offline_agents for z in zones)),
            "queue_depth": float(sum(z.queue_depth for z in zones)),
            "in_flight": float(sum(z.in_flight for z in zones)),
            "in_system": float(sum(z.in_system for z in zones)),
            # cumulative here, per interval in the zone rows (the documented meaning)
            "tasks_completed": float(self._total_completed),
            "tasks_failed": float(total_failed),
            "throughput_per_min": total_done * 60.0 / span,
            "error_rate": _ratio(total_errors, total_done + total_errors),
            "p50_latency_s": p50,
            "p99_latency_s": p99,
            "avg_latency_s": avg,
            "p50_wait_s": w50,
            "p99_wait_s": w99,
            "avg_wait_s": w_avg,
            "utilization": _ratio(busy_slots, slots),
            "cost_usd": cost_usd,
            "status": None,
        }

    def _zone_row(self, now: float, span: float, z: ZoneSnapshot) -> dict[str, Any]:
        """One zone's row for the interval: its snapshot and its own completions."""
        done, failed = self._completed[z.zone], self._failed[z.zone]
        errors = self._errors[z.zone]
        p50, p99, avg = _percentiles(self._zone_latencies[z.zone])
        return {
            "time_s": now,
            "level": "zone",
            "id": z.zone,
            "total_agents": float(z.total_agents),
            "active_agents": float(z.active_agents),
            "busy_agents": float(z.busy_agents),
            "offline_agents": float(z.offline_agents),
            "queue_depth": float(z.queue_depth),
            "in_flight": float(z.in_flight),
            "in_system": float(z.in_system),
            "tasks_completed": float(done),
            "tasks_failed": float(failed),
            "throughput_per_min": done * 60.0 / span,
            "error_rate": _ratio(errors, done + errors),
            "p50_latency_s": p50,
            "p99_latency_s": p99,
            "avg_latency_s": avg,
            "utilization": _ratio(z.busy_slots, z.slots),
            "status": None,
        }

    def _reset_zone(self, zone: str) -> None:
        """Start the zone's next interval from zero."""
        self._completed[zone] = 0
        self._failed[zone] = 0
        self._errors[zone] = 0
        self._zone_latencies[zone] = []

    def recent(self, count: int, level: str = "global") -> list[dict[str, Any]]:
        """The last *count* rows of *level*, oldest first (for live displays; not agent rows)."""
        found: list[dict[str, Any]] = []
        for row in reversed(self._rows):
            if row["level"] == level:
                found.append(row)
                if len(found) == count:
                    break
        return found[::-1]

    def sample_agents(self, now: float, agents: Iterable[AgentSnapshot]) -> None:
        """Emit one row per agent (on the slower agent interval: 200 rows a tick add up)."""
        self.sample_agent_columns(now, AgentColumns.of(agents))

    def sample_agent_columns(self, now: float, agents: AgentColumns) -> None:
        """Emit one row per agent from columns (kept as a block until :meth:`frame`)."""
        self._agent_blocks.append((len(self._rows), now, agents))

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add rows sampled elsewhere (a live coordinator's, read back from the broker)."""
        self._rows.extend(rows)

    def frame(self, replication: int) -> pd.DataFrame:
        """All rows as the documented ``metrics.parquet`` table (in the order they were sampled)."""
        values = (*VALUE_COLUMNS, *self.extra_columns)
        columns = ["time_s", "level", "id", "zone", "status", "current_task", *values]
        frame = pd.DataFrame(self._rows, columns=columns)
        if self._agent_blocks:
            frame = self._with_agent_rows(frame, columns)
        frame.insert(0, "replication", np.full(len(frame), replication, dtype=np.int64))
        frame["zone"] = frame["zone"].where(frame["level"] != "zone", frame["id"])
        for column in ("current_task", *values, "time_s"):
            frame[column] = frame[column].astype("float64")
        for column in ("level", "id", "zone", "status"):
            frame[column] = frame[column].astype("object")
        return frame

    def _with_agent_rows(self, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        """*frame* with the agent blocks' rows put back where each tick sampled them.

        Built column by column into preallocated arrays (numbers as float64,
        text as objects with NaN for missing, as pandas infers a column of
        strings) — what one frame of every row as a dict held.
        """
        blocks = self._agent_blocks
        sizes = [len(block) for _, _, block in blocks]
        agent_count, main_count = sum(sizes), len(frame)
        total = main_count + agent_count
        # A block sampled after the n-th dict row sorts between rows n-1 and n (stable).
        keys = np.concatenate(
            [
                2 * np.arange(main_count, dtype=np.int64) + 1,
                np.repeat([2 * position for position, _, _ in blocks], sizes).astype(np.int64),
            ]
        )
        where = np.empty(total, dtype=np.int64)
        where[np.argsort(keys, kind="stable")] = np.arange(total, dtype=np.int64)
        main_at, agent_at = where[:main_count], where[main_count:]
        agent_text: dict[str, list[str]] = {
            "level": ["agent"] * agent_count,
            "id": [value for _, _, block in blocks for value in block.agent_id],
            "zone": [value for _, _, block in blocks for value in block.zone],
            "status": [value for _, _, block in blocks for value in block.status],
        }
        agent_numbers = {
            name: [getattr(block, name) for _, _, block in blocks] for name in _AGENT_NUMBERS
        }
        agent_numbers["time_s"] = [
            np.full(size, now) for (_, now, _), size in zip(blocks, sizes, strict=True)
        ]
        data: dict[str, np.ndarray] = {}
        for name in columns:
            if name in agent_text:
                text = np.empty(total, dtype=object)
                text[main_at] = frame[name].to_numpy(dtype=object)
                text[agent_at] = agent_text[name]
                text[pd.isna(text)] = math.nan
                data[name] = text
            else:
                numbers = np.full(total, math.nan)
                numbers[main_at] = frame[name].astype("float64").to_numpy()
                if name in agent_numbers:
                    numbers[agent_at] = np.concatenate(agent_numbers[name])
                data[name] = numbers
        return pd.DataFrame(data, columns=columns)


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and mean, as numpy's default (linear) percentile computes them.

    Written out because np.percentile costs ~50 us a call whatever the size, and a
    sample takes several of them over a minute's worth (a few hundred) of values.
    """
    n = len(values)
    if not n:
        return math.nan, math.nan, math.nan
    ordered = sorted(values)
    return _quantile(ordered, 0.50), _quantile(ordered, 0.99), math.fsum(ordered) / n


def _quantile(ordered: list[float], q: float) -> float:
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0
