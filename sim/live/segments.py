"""Continuous records: a service's broker streams cut into windows, each written as a run.

Scenario: a service runs for days. Every ``segment_s`` (an hour by default)
its primary reads what the streams hold for the window that just closed —
the submissions that arrived in it, their routing, assignments, starts and
ends, the events and metric samples — and folds them with the live run's
own fold (``sim.live.records.build_records``) into the very tables
``orchestra run`` writes. Each window is a directory of its own, written
into a hidden temporary directory first and renamed into place, so a reader
never sees half a segment and a crash leaves none.

A window is a run of its own: times are shifted to start at 0, its
``scenario.yaml`` has the window's length as its duration and the window's
real arrivals as a trace (``trace.parquet``: arrival, category, zone,
work), and its DAG jobs as the clients sent them, edges and all
(``sim.live.segment_dags``: a DAG file each, released at its arrival). So
``orchestra replay SEGMENT`` plays yesterday's traffic again in the simulator,
under the same or another policy, and ``orchestra calibrate`` reads it like any live directory.

The table of a window describes it as it stood at its end, as a live run's
does at its duration: a task still in flight is an ``in_flight`` row, and its
end (in the next window's time) is not counted again there — a window holds
the tasks that *arrived* in it.

Which windows are written is the broker's: the key ``records`` of
``orch_lease`` holds the end of the last one written, so a restarted or a
new primary goes on from there, and the fleet present at that end (the
*roster*): a window's agents are the ones present at its start (written as
``agent_joined`` at second 0, detail ``carried``) and those that joined in
it, and its replay scenario has exactly those specialists, zone by zone and
category by category, and the window's work as its mix — the real fleet, not
the scenario's nominal one (``sim.live.segment_fleet``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import math
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from nats.js import JetStreamContext

from sim.live.broker import decode, encode, unbundle
from sim.live.cancel import stop_if_cancelled
from sim.live.clock import Clock
from sim.live.records import build_records
from sim.live.segment_dags import with_recorded_jobs, write_dag_files
from sim.live.segment_fleet import (
    Roster,
    carried,
    join_records,
    roster_after,
    self_joins,
    with_window_fleet,
    work_mix,
)
from sim.live.stream_window import reader_from
from sim.live.task_message import InvalidMessage, Pools, validate
from sim.live.transport import (
    EVENTS,
    LEASE_BUCKET,
    METRICS,
    SUBMIT,
    merge_records,
    record_streams,
)
from sim.scenario.schema import ChaosEvent, Scenario
from sim.world.topology import World

RECORDS_KEY = "records"
#: Wall seconds before a window's start from which its streams are read: a submission is
#: stamped by its client before it is stored, and clocks of hosts differ a little.
LOOKBACK_S = 120.0
#: Wall seconds after a window's end before it is written: the results of work that ended
#: just before it are still on their way.
SETTLE_S = 2.0
#: Age after which a temporary segment directory is a dead writer's leftover (a window is
#: written in seconds; ten minutes leaves a slow one alone).
STALE_TMP_S = 600.0
TIME_FIELDS = ("arrival_s", "dispatch_s", "assign_s", "start_s", "end_s", "time_s")


@dataclass(frozen=True)
class Window:
    """Scenario seconds [start_s, end_s) of the service's clock."""

    start_s: float
    end_s: float

    def name(self, clock: Clock) -> str:
        """``segment-<UTC start>``: sorts in time order, says when without arithmetic."""
        wall = clock.epoch + self.start_s / clock.scale
        stamp = datetime.datetime.fromtimestamp(wall, datetime.UTC)
        return f"segment-{stamp:%Y%m%dT%H%M%S}Z-{self.start_s:.0f}s"


async def read_since(
    js: JetStreamContext, stream: str, subject: str, since_wall: float
) -> list[dict[str, Any]]:
    """Every message of *stream* stored from *since_wall* (wall s) up to its last one now."""
    info = await js.stream_info(stream)
    last = int(info.state.last_seq)
    if last == 0 or int(info.state.messages) == 0:
        return []
    out: list[dict[str, Any]] = []
    async with reader_from(js, stream, subject, "seg", wall=since_wall) as sub:
        while True:
            try:
                batch = await sub.fetch(1024, timeout=1.0)
            except TimeoutError:
                stop_if_cancelled()  # a cancel nats-py reported as a timeout
                break
            for message in batch:
                out.append(decode(message.data))
            if int(batch[-1].metadata.sequence.stream) >= last:
                break
    return out


def _shift(doc: dict[str, Any], by: float) -> dict[str, Any]:
    out = dict(doc)
    for key in TIME_FIELDS:
        if out.get(key) is not None:
            out[key] = float(out[key]) - by
    return out


def _accepted(doc: dict[str, Any], pools: Pools) -> bool:
    """Whether the coordinator took the submission (it rejects what breaks the schema)."""
    try:
        validate(doc, pools)
    except InvalidMessage:
        return False
    return True


def window_docs(
    window: Window,
    submits: list[dict[str, Any]],
    results: list[dict[str, Any]],
    events: list[dict[str, Any]],
    metric_rows: list[dict[str, Any]],
    pools: Pools | None = None,
) -> tuple[list[dict[str, Any]], ...]:
    """The window's share of the streams (accepted submissions only), shifted to start at 0."""
    t0, t1 = window.start_s, window.end_s
    submits = list(unbundle(submits))  # (a client's batch submits several at once)
    mine = [
        d for d in submits if t0 <= float(d["arrival_s"]) < t1 and _accepted(d, pools or Pools())
    ]
    ids: set[int] = set()
    for doc in mine:
        if doc["kind"] == "task":
            ids.add(int(doc["task_id"]))
        else:
            ids.update(int(n["task_id"]) for n in doc["nodes"])
    return (
        [_shift(d, t0) for d in mine],
        [_shift(d, t0) for d in results if int(d["task_id"]) in ids],
        [_shift(d, t0) for d in events if t0 <= float(d["time_s"]) < t1],
        [_shift(d, t0) for d in metric_rows if t0 < float(d["time_s"]) <= t1 + 1e-9],
    )


def window_scenario(
    scenario: Scenario,
    window: Window,
    submits: list[dict[str, Any]],
    fleet: Roster,
    trace: Path = Path("trace.parquet"),
    joins: list[ChaosEvent] | None = None,
) -> Scenario:
    """The scenario a window replays as: its length, its arrivals as a trace and their mix,
    its DAG rate, its fleet at its start and the agents that joined it on their own
    (``sim.live.segment_fleet``)."""
    length = window.end_s - window.start_s
    jobs = sum(1 for d in submits if d["kind"] == "job")
    workload = scenario.workload
    arrivals = workload.arrivals.model_copy(
        update={"process": "trace", "trace": trace, "bursts": []}
    )
    dags = workload.dags.model_copy(update={"rate_per_min": jobs / (length / 60.0)})
    mix = work_mix(submits, scenario.topology.categories) or workload.mix
    workload = workload.model_copy(update={"arrivals": arrivals, "dags": dags, "mix": mix})
    windowed = scenario.model_copy(
        update={"duration": length, "warmup": 0.0, "workload": workload, "chaos": []}
    )
    return with_window_fleet(windowed, fleet, joins)


def trace_frame(submits: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [
        (float(d["arrival_s"]), d["category"], d["zone"], float(d["work_s"]))
        for d in submits
        if d["kind"] == "task"
    ]
    return pd.DataFrame(rows, columns=["arrival_s", "category", "zone", "work_s"])


def write_segment(
    root: Path,
    name: str,
    scenario: Scenario,
    world: World,
    window: Window,
    docs: tuple[list[dict[str, Any]], ...],
    roster: Roster,
) -> Path:
    """Fold the window's documents into a run directory, written atomically (module docstring)."""
    from sim.metrics.store import atomic_write_text, write_parquet
    from sim.runner import Outcome, write_outputs
    from sim.scenario.load import scenario_yaml

    submits, results, events, metric_rows = docs
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    # An absolute trace path: ``orchestra calibrate`` writes an overlay of the scenario in
    # its own directory, where a relative one would no longer resolve.
    joins = self_joins(roster, events)
    replayable = window_scenario(
        scenario, window, submits, roster, (final / "trace.parquet").resolve(), joins
    )
    replayable = with_recorded_jobs(replayable, submits, final)  # the jobs, with their edges
    length = window.end_s - window.start_s
    # The fleet is the one that heartbeats (the roster and the joins), not the nominal one.
    fleet = dataclasses.replace(world, specialists=())
    events = carried(roster) + events + join_records(joins)
    records = build_records(replayable, fleet, 1.0, length, submits, results, events, metric_rows)
    summary, sha = records.summary(replayable)
    summary["live"] = {
        "segment": {"start_s": window.start_s, "end_s": window.end_s},
        "duplicates_ignored": records.duplicates,
    }
    result = records.result(replayable, sha, 0.0)
    temporary = root / f".{name}.{secrets.token_hex(3)}.tmp"
    try:
        write_outputs(Outcome(summary, [result]), temporary, report=False)
        write_parquet(temporary / "drained.parquet", records.drained)
        write_parquet(temporary / "trace.parquet", trace_frame(submits))
        write_dag_files(temporary, submits)
        atomic_write_text(temporary / "scenario.yaml", scenario_yaml(replayable))
        if final.exists():  # written before by a primary that died before saying so
            shutil.rmtree(final)
        os.replace(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return final


def next_edge(through: float, segment_s: float) -> float:
    """The end of the window that starts at *through*: the next multiple of *segment_s*, so
    a partial window (a drain's) does not shift every later one off the grid."""
    return (math.floor(through / segment_s + 1e-9) + 1) * segment_s


def sweep_stale(root: Path, older_than_s: float = STALE_TMP_S) -> list[Path]:
    """Remove temporary segment directories a killed writer left (never a fresh one)."""
    removed = []
    if root.is_dir():
        for path in root.glob(".segment-*.tmp"):
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > older_than_s:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
    return removed


class SegmentWriter:
    """Writes each closed window while its replica is the primary (see the module docstring)."""

    def __init__(
        self,
        js: JetStreamContext,
        scenario: Scenario,
        world: World,
        clock: Clock,
        root: Path,
        segment_s: float,
        is_primary: Callable[[], bool],
    ) -> None:
        self.js, self.scenario, self.world, self.clock = js, scenario, world, clock
        self.root, self.segment_s, self.is_primary = root, segment_s, is_primary
        self.written: list[Path] = []
        self.pools = Pools(frozenset(world.zones), frozenset(world.categories))
        #: Wall seconds before a window's start its streams are read from (clock skew).
        self.lookback_s = LOOKBACK_S

    async def _state(self) -> tuple[float, Roster]:
        """The end of the last window written (the first starts at 0) and the fleet then."""
        lease = await self.js.key_value(LEASE_BUCKET)
        with contextlib.suppress(Exception):
            entry = await lease.get(RECORDS_KEY)
            doc = decode(entry.value or b"{}")
            roster = {a: (str(z), str(c)) for a, (z, c) in doc.get("roster", {}).items()}
            return float(doc["through_s"]), roster
        return 0.0, {}

    async def _through(self) -> float:
        return (await self._state())[0]

    async def write_due(self, until_s: float | None = None) -> list[Path]:
        """Write every closed window (or, with *until_s*, the windows up to it, the last cut
        short there: a drained service's final, partial window)."""
        now = self.clock.now() - SETTLE_S * self.clock.scale
        limit = now if until_s is None else until_s
        await asyncio.to_thread(sweep_stale, self.root)
        through = await self._through()
        out: list[Path] = []
        while True:
            end = next_edge(through, self.segment_s)
            if end > limit:
                if until_s is None or limit - through <= 1e-6:
                    break
                end = limit
            out.append(await self.write(Window(through, end)))
            through = end
        return out

    async def write(self, window: Window) -> Path:
        since = self.clock.epoch + window.start_s / self.clock.scale - self.lookback_s
        streams = ((SUBMIT, "orch.submit"), (EVENTS, "orch.event"), (METRICS, "orch.metric"))
        submits, events, metric_rows = [
            await read_since(self.js, stream, subject, since) for stream, subject in streams
        ]
        # Every zone's dispatch records and results, in one order their contents fix.
        results = merge_records(
            [
                await read_since(self.js, stream, subject, since)
                for stream, subject in record_streams(self.world.zones)
            ]
        )
        docs = window_docs(window, submits, results, events, metric_rows, self.pools)
        _, roster = await self._state()
        name = window.name(self.clock)
        path = await asyncio.to_thread(
            write_segment, self.root, name, self.scenario, self.world, window, docs, roster
        )
        inside = [e for e in events if window.start_s <= float(e["time_s"]) < window.end_s]
        after = {a: list(zc) for a, zc in roster_after(roster, inside).items()}
        state = {"through_s": window.end_s, "last": name, "roster": after}
        lease = await self.js.key_value(LEASE_BUCKET)
        await lease.put(RECORDS_KEY, encode(state))
        self.written.append(path)
        return path

    async def run(self) -> None:
        """Until cancelled: at each window's end (plus the settling time), write what is due."""
        while True:
            stop_if_cancelled()
            through = await self._through()
            due = next_edge(through, self.segment_s)
            await asyncio.sleep(max(0.2, self.clock.until(due) + SETTLE_S))
            if not self.is_primary():
                continue
            try:
                await self.write_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker hiccup: the window is written next time
                stop_if_cancelled()  # (nats-py may turn a cancel into its own error)
                print(
                    f"records: window from {through:g} s: {type(exc).__name__}: {exc}", flush=True
                )
