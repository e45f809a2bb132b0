"""The books' snapshot: what a takeover reads instead of a service's whole history.

Scenario: a service has run for months. Its record streams (``ORCH_SUBMIT``,
every zone's ``ORCH_DISPATCH_<zone>`` and ``ORCH_RESULTS_<zone>``, and the
fleet-wide ``ORCH_DISPATCH`` / ``ORCH_RESULTS`` of a store laid out before
the zones had their own) would hold every task it ever ran, and
a standby taking over would read them all to rebuild its books
(``sim.live.coordinator.catch_up``). Instead the primary compacts them now
and then (``sim.live.retention``): it folds the snapshot it wrote last and
the streams' messages since, up to a cut, into a new snapshot, stores it,
and only then purges the streams below the cut. A takeover loads the
snapshot and reads each stream's tail after it.

The snapshot is a compacted log, not a copy of anyone's memory, so it needs
no pause of the coordinator and cannot disagree with the streams:

* the **records of open work** — every task or DAG job with a node not yet
  ended: its (first) submission, routing, assignments, starts and ends, as
  written, in stream order (``kept``). A takeover replays them through the
  same handlers as the streams, so the books they build are the ones full
  history would build;
* the **forgotten work**: work whose every task has ended leaves only its
  ids with their outcome (``done``, ``done_jobs``) and its share of the
  counters (``base``: submitted, completed, failed, shed, duplicates, busy time —
  exactly what a catch-up of those records would have counted). A
  resubmitted id in there is recognised (booked once, answered from the
  reply stream) and a late second end of it counts as a duplicate, as
  before the compaction;
* the **dedupe window**: an id is forgotten for good ``dedupe_s`` after its
  work was compacted (``expire``), so the snapshot stays bounded on a
  service that runs for ever; a resubmission after that is new work.
  (Message ids — a client's retried publish, a re-dispatch — are JetStream's
  own ``duplicate_window`` per stream, which a purge keeps.)
* ``seqs``: the last sequence of each stream folded in; a takeover skips
  messages up to it (the purge may not have happened yet). Each stream has
  its own (a zone's streams are numbered on their own), and a bundle
  (``{kind: records}``, several records in one message) is one sequence: the
  fold opens it, and keeps open work's records one by one.

Stored in the key-value bucket ``orch_snapshot`` as zlib-compressed JSON in
chunks (a NATS message is at most 1 MB by default): the chunks of a new
generation first, then the ``head`` naming them, then the old chunks go, so
a reader sees one whole snapshot or the previous one.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sim.live.broker import Broker, decode, encode, unbundle
from sim.live.task import attempt_failure
from sim.live.task_message import InvalidMessage, Pools, validate
from sim.live.transport import SUBMIT

SNAPSHOT_BUCKET = "orch_snapshot"
HEAD_KEY = "head"
#: Bytes of compressed snapshot per key (well under NATS's default 1 MB payload).
CHUNK_BYTES = 256 * 1024
#: The counters a snapshot carries for the work it forgot (``Counters`` fields).
BASE_COUNTERS = ("submitted", "completed", "failed", "shed", "duplicates", "busy_s")


@dataclass
class Snapshot:
    """The compacted books (see the module docstring). Wall seconds for stamps."""

    #: Stream -> the last sequence folded in (a stream not named: none yet).
    seqs: dict[str, int] = field(default_factory=dict)
    #: Stream -> the records of open work it held, bundles opened, in stream order.
    kept: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Task id -> (outcome, wall s it was forgotten at).
    done: dict[int, tuple[str, float]] = field(default_factory=dict)
    #: Job id -> wall s it was forgotten at.
    done_jobs: dict[int, float] = field(default_factory=dict)
    base: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BASE_COUNTERS, 0.0))
    generation: int = 0

    def document(self) -> dict[str, Any]:
        """Plain JSON; the ids grouped by (stamp, outcome): a few bytes per id, not ~35."""
        doc = asdict(self)
        groups: dict[tuple[float, str], list[int]] = {}
        for task_id, (outcome, stamp) in self.done.items():
            groups.setdefault((stamp, outcome), []).append(task_id)
        doc["done"] = [[stamp, outcome, ids] for (stamp, outcome), ids in groups.items()]
        jobs: dict[float, list[int]] = {}
        for job_id, stamp in self.done_jobs.items():
            jobs.setdefault(stamp, []).append(job_id)
        doc["done_jobs"] = [[stamp, ids] for stamp, ids in jobs.items()]
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Snapshot:
        return cls(
            seqs={str(k): int(v) for k, v in doc["seqs"].items()},
            kept={str(k): list(v) for k, v in doc["kept"].items()},
            done={
                int(i): (str(outcome), float(stamp))
                for stamp, outcome, ids in doc["done"]
                for i in ids
            },
            done_jobs={int(i): float(stamp) for stamp, ids in doc["done_jobs"] for i in ids},
            base={str(k): float(v) for k, v in doc["base"].items()},
            generation=int(doc["generation"]),
        )

    def open_records(self) -> int:
        return sum(len(v) for v in self.kept.values())


# --------------------------------------------------------------------------- the fold


def _unit_of(doc: dict[str, Any]) -> tuple[str, int]:
    return ("job", int(doc["job_id"])) if doc["kind"] == "job" else ("task", int(doc["task_id"]))


def _task_ids(doc: dict[str, Any]) -> list[int]:
    if doc["kind"] == "job":
        return [int(n["task_id"]) for n in doc["nodes"]]
    return [int(doc["task_id"])]


def expire(snapshot: Snapshot, now: float, dedupe_s: float) -> None:
    """Forget for good the ids compacted more than *dedupe_s* ago (the dedupe window)."""
    snapshot.done = {k: v for k, v in snapshot.done.items() if now - v[1] <= dedupe_s}
    snapshot.done_jobs = {k: t for k, t in snapshot.done_jobs.items() if now - t <= dedupe_s}


def fold(
    previous: Snapshot,
    fresh: dict[str, list[dict[str, Any]]],
    seqs: dict[str, int],
    now: float,
    dedupe_s: float,
    pools: Pools,
) -> Snapshot:
    """The snapshot after *fresh* (each stream's messages after ``previous.seqs`` up to *seqs*).

    Pure: no clock (*now* is the wall time the forgotten ids are stamped
    with), no I/O. Work whose every task has an end is forgotten (its ids
    and counters kept); the records of the rest are kept as written.
    """
    records = _record_streams(previous, fresh, seqs)
    out = _successor(previous, records, seqs)
    expire(out, now, dedupe_s)
    docs = {s: previous.kept.get(s, []) + list(unbundle(fresh.get(s, []))) for s in records}
    docs[SUBMIT] = previous.kept.get(SUBMIT, []) + fresh.get(SUBMIT, [])
    units = _booked_units(docs[SUBMIT], out, pools)
    ends = _task_ends(doc for stream in records for doc in docs[stream])
    finished = {
        unit
        for unit, doc in units.items()
        if all(i in ends.ends or i in ends.shed for i in _task_ids(doc))
    }
    for unit in finished:
        _forget_unit(out, unit, _task_ids(units[unit]), ends, now)
    gone = {i for unit in finished for i in _task_ids(units[unit])}
    for stream in records:
        out.kept[stream] = _unfinished_records(docs[stream], gone, previous.done, out.base)
    out.kept[SUBMIT] = [doc for unit, doc in units.items() if unit not in finished]
    return out


def _record_streams(
    previous: Snapshot, fresh: dict[str, list[dict[str, Any]]], seqs: dict[str, int]
) -> list[str]:
    """The record streams (every one but the submissions), in the order first named.

    That is the order the caller reads them in, which breaks ties between a task's ends.
    """
    return [
        stream
        for stream in dict.fromkeys([*previous.kept, *previous.seqs, *fresh, *seqs])
        if stream != SUBMIT
    ]


def _successor(previous: Snapshot, records: list[str], seqs: dict[str, int]) -> Snapshot:
    """The next generation: *previous*'s counters and forgotten ids, the later sequences."""
    return Snapshot(
        seqs={
            s: max(previous.seqs.get(s, 0), seqs.get(s, 0))
            for s in dict.fromkeys([*records, SUBMIT])
        },
        done=dict(previous.done),
        done_jobs=dict(previous.done_jobs),
        base=dict(previous.base),
        generation=previous.generation + 1,
    )


def _booked_units(
    submissions: list[dict[str, Any]], out: Snapshot, pools: Pools
) -> dict[tuple[str, int], dict[str, Any]]:
    """The submissions the coordinator books: valid, the first per id, not forgotten work."""
    units: dict[tuple[str, int], dict[str, Any]] = {}
    owner: dict[int, tuple[str, int]] = {}
    for doc in submissions:
        try:
            validate(doc, pools)
        except InvalidMessage:
            continue  # rejected (an event and a reply said so); nothing to rebuild
        unit = _unit_of(doc)
        ids = _task_ids(doc)
        # As ``Intake.on_submit`` books them: a task id once, a job id once.
        if unit[0] == "job":
            booked = unit in units or unit[1] in out.done_jobs
        else:
            booked = ids[0] in owner or ids[0] in out.done
        if booked:
            continue
        units[unit] = doc
        for task_id in ids:
            owner[task_id] = unit
    return units


@dataclass
class _Ends:
    """What the records say of each task's end.

    ``ends``: completions and the coordinator's final failures. An agent's failed
    attempt is not one (the escalation placed the task again), but its time was
    busy (``busy``). ``shed``: tasks the admission shed (tiers), ended at the door,
    never dispatched.
    """

    ends: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    busy: dict[int, float] = field(default_factory=dict)
    shed: set[int] = field(default_factory=set)


def _task_ends(docs: Iterable[dict[str, Any]]) -> _Ends:
    """Each task's ends, busy time and shedding, from the records in stream order."""
    found = _Ends()
    for doc in docs:
        if doc["kind"] == "admission" and doc.get("admission") == "shed":
            found.shed.add(int(doc["task_id"]))
        elif doc["kind"] == "end":
            task_id = int(doc["task_id"])
            found.busy[task_id] = (
                found.busy.get(task_id, 0.0) + float(doc["end_s"]) - float(doc["start_s"])
            )
            if not attempt_failure(doc):
                found.ends.setdefault(task_id, []).append(doc)
    return found


def _forget_unit(
    out: Snapshot, unit: tuple[str, int], task_ids: list[int], ends: _Ends, now: float
) -> None:
    """Fold a finished unit's tasks into *out*'s counters and forgotten ids."""
    base = out.base
    for task_id in task_ids:
        if task_id not in ends.ends:  # shed
            base["submitted"] += 1
            base["shed"] = base.get("shed", 0.0) + 1  # (a snapshot written before tiers)
            out.done[task_id] = ("shed", now)
            continue
        first, *again = ends.ends[task_id]
        outcome = str(first["outcome"])
        base["submitted"] += 1
        base["completed" if outcome == "completed" else "failed"] += 1
        base["duplicates"] += len(again)
        base["busy_s"] += ends.busy.get(task_id, 0.0)
        out.done[task_id] = (outcome, now)
    if unit[0] == "job":
        out.done_jobs[unit[1]] = now


def _unfinished_records(
    docs: list[dict[str, Any]],
    gone: set[int],
    forgotten: dict[int, tuple[str, float]],
    base: dict[str, float],
) -> list[dict[str, Any]]:
    """A stream's records still to keep; a late second end of forgotten work is counted."""
    kept = []
    for doc in docs:
        task_id = int(doc["task_id"])
        if task_id in gone:
            continue  # folded above
        if task_id in forgotten:
            if doc["kind"] == "end":  # a late second end of forgotten work
                base["duplicates"] += 1
                base["busy_s"] += float(doc["end_s"]) - float(doc["start_s"])
            continue
        kept.append(doc)
    return kept


# --------------------------------------------------------------------------- storage


async def load(broker: Broker) -> Snapshot | None:
    """The last snapshot stored, None if there is none (a service never compacted)."""
    head = await broker.kv_get(SNAPSHOT_BUCKET, HEAD_KEY)
    if head is None:
        return None
    doc = head.document()
    parts = []
    for index in range(int(doc["chunks"])):
        entry = await broker.kv_get(SNAPSHOT_BUCKET, f"g{int(doc['generation'])}.{index}")
        if entry is None:
            raise RuntimeError(f"snapshot {doc['generation']}: chunk {index} is missing")
        parts.append(entry.value)
    data = b"".join(parts)
    return await asyncio.to_thread(lambda: Snapshot.from_document(decode(zlib.decompress(data))))


async def store(broker: Broker, snapshot: Snapshot, previous_chunks: int = 0) -> int:
    """Write *snapshot* (chunks, then the head, then the old generation's chunks go).

    Returns the number of bytes stored (compressed).
    """
    # Off the event loop: a large snapshot takes a while to encode, and the primary's
    # lease and followers must not wait for it.
    data = await asyncio.to_thread(lambda: zlib.compress(encode(snapshot.document()), 6))
    count = max(1, math.ceil(len(data) / CHUNK_BYTES))
    generation = snapshot.generation
    for index in range(count):
        chunk = data[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES]
        await broker.kv_put(SNAPSHOT_BUCKET, f"g{generation}.{index}", chunk)
    head = {"generation": generation, "chunks": count, "bytes": len(data), "seqs": snapshot.seqs}
    await broker.kv_put(SNAPSHOT_BUCKET, HEAD_KEY, encode(head))
    for index in range(previous_chunks):
        await broker.kv_delete(SNAPSHOT_BUCKET, f"g{generation - 1}.{index}")
    return len(data)


async def chunks_of(broker: Broker) -> int:
    """How many chunks the stored snapshot has (0: none)."""
    head = await broker.kv_get(SNAPSHOT_BUCKET, HEAD_KEY)
    return int(head.document()["chunks"]) if head is not None else 0
