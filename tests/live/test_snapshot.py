"""The snapshot fold: finished work leaves ids and counters, open work keeps its records.

No broker: each test writes the record streams' documents as the
coordinator and the agents would, and folds them. The properties a takeover
relies on: the counters of forgotten work are what a catch-up of its records
would count; a resubmitted or re-ended id is recognised; folding in two
steps (any cut per stream) equals folding once; the dedupe window bounds the
ids; the stored snapshot reads back whole, in chunks; and, on the in-memory
broker, a replica taking over from the snapshot and the streams' tails
(half the folded messages purged, half not) builds the books a replica
reading the whole history builds.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from conftest import agents_answer_calls, small
from test_coordinator_logic import EPOCH, Provisioner

import sim.live.snapshot as snapshot_module
from sim.live.clock import Clock
from sim.live.coordinator import Coordinator, CoordinatorConfig
from sim.live.coordinator.restore import forget
from sim.live.coordinator.state import Books
from sim.live.memory_broker import MemoryBroker
from sim.live.snapshot import Snapshot, expire, fold, load, store
from sim.live.task import LiveTask
from sim.live.task_message import Pools
from sim.live.transport import (
    SUBMIT,
    dispatch_stream,
    dispatch_subject,
    result_subject,
    results_stream,
)

POOLS = Pools(frozenset({"A", "B"}), frozenset({"CodeGen", "Review"}))
DISPATCH, RESULTS = dispatch_stream("A"), results_stream("A")
STREAMS = (DISPATCH, RESULTS, SUBMIT)


def task(task_id: int, arrival: float = 0.0) -> dict[str, Any]:
    return {
        "kind": "task",
        "task_id": task_id,
        "category": "CodeGen",
        "zone": "A",
        "work_s": 1.0,
        "arrival_s": arrival,
    }


def job(job_id: int, ids: list[int]) -> dict[str, Any]:
    nodes = [
        {"node": n, "task_id": t, "category": "Review", "work_s": 1.0} for n, t in enumerate(ids)
    ]
    edges = [[n, n + 1, 1.0] for n in range(len(ids) - 1)]
    return {"kind": "job", "job_id": job_id, "zone": "B", "arrival_s": 0.0, "nodes": nodes,
            "edges": edges}  # fmt: skip


def assign(task_id: int, attempt: int = 1) -> dict[str, Any]:
    return {"kind": "assign", "task_id": task_id, "attempt": attempt, "agent": "a1", "zone": "A",
            "assign_s": 1.0}  # fmt: skip


def start(task_id: int, attempt: int = 1) -> dict[str, Any]:
    return {"kind": "start", "task_id": task_id, "attempt": attempt, "agent": "a1", "zone": "A",
            "start_s": 2.0}  # fmt: skip


def end(
    task_id: int, attempt: int = 1, outcome: str = "completed", final: bool = False
) -> dict[str, Any]:
    doc = {"kind": "end", "task_id": task_id, "attempt": attempt, "agent": "a1", "zone": "A",
           "outcome": outcome, "start_s": 2.0, "end_s": 5.0}  # fmt: skip
    return {**doc, "final": True} if final else doc


def streams(**docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {DISPATCH: docs.get("dispatch", []), RESULTS: docs.get("results", []),
            SUBMIT: docs.get("submit", [])}  # fmt: skip


def seqs(fresh: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {s: len(fresh[s]) for s in STREAMS}


def test_finished_work_leaves_ids_and_counters_and_open_work_keeps_its_records() -> None:
    fresh = streams(
        submit=[
            task(1),
            task(2),
            job(5, [10, 11]),
            task(3),
            task(4),
            task(1, 9.0),
            {"kind": "task", "task_id": 6},
        ],
        dispatch=[assign(1), assign(2), assign(10), assign(3), assign(4)],
        results=[
            start(1),
            end(1),
            start(2),
            end(2, outcome="failed"),  # an attempt failed: escalated, the task stays open
            start(10),
            end(10),
            end(3),
            end(3, 2),
            end(4, outcome="failed", final=True),  # the coordinator's failure for good
        ],
    )
    out = fold(Snapshot(), fresh, seqs(fresh), 100.0, 3600.0, POOLS)
    # Tasks 1, 3, 4 finished: forgotten with their outcomes; task 3 ended twice.
    assert {k: v[0] for k, v in out.done.items()} == {1: "completed", 3: "completed", 4: "failed"}
    assert out.base == {"submitted": 3, "completed": 2, "failed": 1, "shed": 0,
                        "duplicates": 1, "busy_s": 12.0}  # fmt: skip
    # Task 2 and job 5 (node 11 open) keep every record; the resubmission and the invalid
    # submission are gone (the coordinator books neither).
    assert out.kept[SUBMIT] == [task(2), job(5, [10, 11])]
    assert out.kept[DISPATCH] == [assign(2), assign(10)]
    assert out.kept[RESULTS] == [start(2), end(2, outcome="failed"), start(10), end(10)]
    assert out.seqs == {DISPATCH: 5, RESULTS: 9, SUBMIT: 7} and out.generation == 1


def test_forgotten_ids_are_recognised_in_the_next_fold() -> None:
    first = streams(submit=[task(1), job(5, [10])], dispatch=[assign(1)],
                    results=[end(1), end(10)])  # fmt: skip
    one = fold(Snapshot(), first, seqs(first), 100.0, 3600.0, POOLS)
    assert set(one.done) == {1, 10} and set(one.done_jobs) == {5}
    # Later: both resubmitted, task 1 ends again (a redelivery), a late assignment record.
    again = streams(submit=[task(1, 50.0), job(5, [10])], dispatch=[assign(1, 2)],
                    results=[end(1, 2)])  # fmt: skip
    two = fold(one, again, {s: one.seqs[s] + len(again[s]) for s in STREAMS}, 200.0, 3600.0, POOLS)
    assert two.open_records() == 0
    assert two.base["submitted"] == 2 and two.base["duplicates"] == 1
    assert two.base["completed"] == 2 and two.base["busy_s"] == 9.0


def test_the_dedupe_window_bounds_the_ids() -> None:
    fresh = streams(submit=[task(1), task(2)], results=[end(1), end(2)])
    out = fold(Snapshot(), fresh, seqs(fresh), 100.0, 50.0, POOLS)
    out.done[2] = ("completed", 140.0)
    expire(out, 160.0, 50.0)
    assert set(out.done) == {2}  # 1 was compacted 60 s ago, past the 50 s window
    later = fold(out, streams(submit=[task(1)]), out.seqs, 200.0, 50.0, POOLS)
    assert later.done == {} and later.kept[SUBMIT] == [task(1)]  # new work now


def history(rng: random.Random, count: int) -> dict[str, list[dict[str, Any]]]:
    """Random record streams: each stream in time order, tasks interleaved, some unfinished."""
    events: list[tuple[float, str, dict[str, Any]]] = []
    for task_id in range(count):
        t = rng.uniform(0, 100)
        as_job = rng.random() < 0.2
        ids = [1000 + task_id * 10, 1001 + task_id * 10] if as_job else [task_id]
        submission = job(task_id, ids) if as_job else task(task_id)
        events.append((t, SUBMIT, submission))
        if rng.random() < 0.3:
            events.append((t + 0.1, SUBMIT, submission))  # resubmitted
        for i in ids:
            t += rng.uniform(0.1, 5)
            events.append((t, DISPATCH, assign(i)))
            events.append((t + 0.1, RESULTS, start(i)))
            if rng.random() < 0.8:
                outcome = "completed" if rng.random() < 0.9 else "failed"
                events.append((t + 1, RESULTS, end(i, outcome=outcome)))
                if rng.random() < 0.1:
                    events.append((t + 2, RESULTS, end(i, 2)))  # a second end
    events.sort(key=lambda e: e[0])
    return {s: [doc for _, stream, doc in events if stream == s] for s in STREAMS}


@pytest.mark.parametrize("seed", range(20))
def test_folding_in_steps_equals_folding_once(seed: int) -> None:
    rng = random.Random(seed)
    full = history(rng, 40)
    cut = {s: rng.randint(0, len(full[s])) for s in STREAMS}  # each stream cut on its own
    head = {s: full[s][: cut[s]] for s in STREAMS}
    tail = {s: full[s][cut[s] :] for s in STREAMS}
    once = fold(Snapshot(), full, seqs(full), 10.0, 3600.0, POOLS)
    step = fold(Snapshot(), head, cut, 10.0, 3600.0, POOLS)
    twice = fold(step, tail, seqs(full), 10.0, 3600.0, POOLS)
    assert once.done and once.kept[SUBMIT]  # both kinds of work, or the test says little
    assert twice.base == once.base
    assert twice.done == once.done and twice.done_jobs == once.done_jobs
    assert twice.kept == once.kept and twice.seqs == once.seqs
    # And what was forgotten plus what is open is every submitted task once.
    submitted = twice.base["submitted"] + sum(
        len(d["nodes"]) if d["kind"] == "job" else 1 for d in twice.kept[SUBMIT]
    )
    booked = {
        (d["kind"], d["job_id"] if d["kind"] == "job" else d["task_id"]) for d in full[SUBMIT]
    }
    assert submitted == sum(2 if k == "job" else 1 for k, _ in booked)


def test_a_stored_snapshot_reads_back_whole_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_module, "CHUNK_BYTES", 64)
    full = history(random.Random(3), 30)
    first = fold(Snapshot(), full, seqs(full), 10.0, 3600.0, POOLS)
    second = fold(first, streams(), first.seqs, 20.0, 3600.0, POOLS)
    broker = MemoryBroker()

    async def roundtrip() -> tuple[Snapshot | None, Snapshot | None, int]:
        assert await load(broker) is None
        await store(broker, first)
        chunks = await snapshot_module.chunks_of(broker)
        back = await load(broker)
        await store(broker, second, chunks)
        left = [k for k in await broker.kv_keys(snapshot_module.SNAPSHOT_BUCKET) if k[0] == "g"]
        assert all(k.startswith(f"g{second.generation}.") for k in left)  # the old chunks went
        return back, await load(broker), chunks

    back, latest, chunks = asyncio.run(roundtrip())
    assert chunks > 1
    assert back == first and latest == second


def test_the_primary_forgets_compacted_work_and_the_ids_past_the_window() -> None:
    books = Books()
    for task_id, done in ((1, True), (2, False), (3, True)):
        books.tasks[task_id] = LiveTask(task_id, "CodeGen", "A", 0.0, 1.0, done=done)
    books.forgotten = {99: "completed"}  # compacted before, now past the window
    snapshot = Snapshot(done={1: ("completed", 5.0), 2: ("failed", 5.0)})
    assert forget(books, snapshot) == 1
    # 1 went (finished here too); 2 stays: these books have not seen it end yet.
    assert set(books.tasks) == {2, 3}
    assert books.forgotten == {1: "completed", 2: "failed"}


SUBJECTS = {SUBMIT: "orch.submit", DISPATCH: dispatch_subject("A"), RESULTS: result_subject("A")}


async def takeover_books(
    full: dict[str, list[dict[str, Any]]],
    cut: dict[str, int] | None,
    subjects: dict[str, str] = SUBJECTS,
) -> Any:
    """A replica's books after a takeover on a broker holding *full*, compacted at *cut* (per
    stream: the sequence folded into the snapshot and purged below), or not at all."""
    wall = lambda: EPOCH  # noqa: E731
    broker = MemoryBroker.orchestra(("A", "B"), wall=wall)
    agents_answer_calls(broker)
    for stream in full:
        if stream not in broker.streams:  # an earlier layout's fleet-wide record stream
            broker.add_stream(stream, [subjects[stream]])
        for doc in full[stream]:
            await broker.publish(subjects[stream], doc)
    if cut is not None:
        head = {s: full[s][: cut[s]] for s in full}
        await store(broker, fold(Snapshot(), head, cut, EPOCH, 3600.0, POOLS))
        for stream in full:
            for seq in range(1, cut[stream] + 1):
                if seq % 2:  # half purged: the snapshot's sequences must skip the rest
                    del broker.streams[stream].messages[seq]
    config = CoordinatorConfig(
        "memory://", None, Clock(EPOCH, 1.0), wall=wall, autoscale=False, snapshots=True
    )
    coordinator = Coordinator(
        "c", small(), config, Provisioner(), ("A", "B"), ("CodeGen", "Review"), broker=broker
    )
    await coordinator.take_over()
    books = coordinator.books
    c = books.counters
    open_tasks = {
        t.task_id: (t.dispatched, t.started, t.attempts, t.job_id)
        for t in books.tasks.values()
        if not t.done
    }
    finished = {t.task_id for t in books.tasks.values() if t.done} | set(books.forgotten)
    return (
        (c.submitted, c.completed, c.failed, c.duplicates, c.busy_s),
        open_tasks,
        finished,
        set(books.in_flight),
        coordinator.queue_depth(),
    )


@pytest.mark.parametrize("seed", range(8))
def test_a_takeover_from_the_snapshot_builds_the_books_full_history_builds(seed: int) -> None:
    rng = random.Random(100 + seed)
    full = history(rng, 30)
    cut = {s: rng.randint(0, len(full[s])) for s in STREAMS}
    whole = asyncio.run(takeover_books(full, None))
    compacted = asyncio.run(takeover_books(full, cut))
    assert whole[0][0] > 0 and whole[1] and whole[2]  # open and finished work, both
    assert compacted == whole


ZONE_SUBJECTS = {
    SUBMIT: "orch.submit",
    **{dispatch_stream(z): dispatch_subject(z) for z in ("A", "B")},
    **{results_stream(z): result_subject(z) for z in ("A", "B")},
}


def zoned(rng: random.Random, full: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """*full*'s records spread over zones A and B (a task's records on one zone's streams),
    the dispatch records bundled (``{kind: records}``, 1-4 per message) as the outbox does."""
    zone = {}
    for doc in full[DISPATCH] + full[RESULTS]:
        zone.setdefault(int(doc["task_id"]), rng.choice("AB"))
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in ZONE_SUBJECTS}
    out[SUBMIT] = list(full[SUBMIT])
    for doc in full[RESULTS]:
        out[results_stream(zone[int(doc["task_id"])])].append(doc)
    for z in "AB":
        records = [d for d in full[DISPATCH] if zone[int(d["task_id"])] == z]
        while records:
            size = rng.randint(1, 4)
            out[dispatch_stream(z)].append({"kind": "records", "records": records[:size]})
            records = records[size:]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_zone_streams_and_bundles_fold_record_by_record(seed: int) -> None:
    """Per-zone streams, each cut on its own sequence; a bundle is one sequence, opened by the
    fold: the snapshot equals the one-stream layout's, open work's records kept one by one."""
    rng = random.Random(200 + seed)
    flat = history(rng, 40)
    full = zoned(rng, flat)
    once = fold(Snapshot(), full, {s: len(v) for s, v in full.items()}, 10.0, 3600.0, POOLS)
    reference = fold(Snapshot(), flat, seqs(flat), 10.0, 3600.0, POOLS)
    assert once.done and once.kept[SUBMIT]
    assert once.done == reference.done and once.base == reference.base
    for stream, kept in once.kept.items():
        assert all(doc["kind"] != "records" for doc in kept), stream
    opened = sorted(
        (d["task_id"], d["kind"]) for s, docs in once.kept.items() if s != SUBMIT for d in docs
    )
    flat_kept = [d for s in (DISPATCH, RESULTS) for d in reference.kept[s]]
    assert opened == sorted((d["task_id"], d["kind"]) for d in flat_kept)
    cut = {s: rng.randint(0, len(v)) for s, v in full.items()}
    step = fold(Snapshot(), {s: v[: cut[s]] for s, v in full.items()}, cut, 10.0, 3600.0, POOLS)
    tail = {s: v[cut[s] :] for s, v in full.items()}
    twice = fold(step, tail, {s: len(v) for s, v in full.items()}, 10.0, 3600.0, POOLS)
    assert twice.done == once.done and twice.base == once.base and twice.kept == once.kept
    assert twice.seqs == once.seqs == {s: len(v) for s, v in full.items()}


@pytest.mark.parametrize("seed", range(4))
def test_a_takeover_on_zone_streams_from_the_snapshot_builds_the_full_books(seed: int) -> None:
    """The takeover's skip works per stream: each zone's streams cut (and half purged) at
    their own sequences, bundles among them, give the books the whole history gives."""
    rng = random.Random(300 + seed)
    full = zoned(rng, history(rng, 30))
    cut = {s: rng.randint(0, len(v)) for s, v in full.items()}
    whole = asyncio.run(takeover_books(full, None, ZONE_SUBJECTS))
    compacted = asyncio.run(takeover_books(full, cut, ZONE_SUBJECTS))
    assert whole[0][0] > 0 and whole[1] and whole[2]
    assert compacted == whole


@pytest.mark.parametrize("seed", range(3))
def test_a_takeover_folds_the_earlier_layouts_fleet_wide_streams_too(seed: int) -> None:
    """A store upgraded in place: its ORCH_DISPATCH / ORCH_RESULTS are compacted and skipped
    on their own sequences, beside the zones' streams, and give the books the whole gives."""
    rng = random.Random(400 + seed)
    old = history(rng, 30)
    new = zoned(rng, history(rng, 30))
    shift = 10_000  # the new layout's tasks: ids of their own
    for docs in new.values():
        for i, doc in enumerate(docs):
            docs[i] = renumber(doc, shift)
    legacy = {"ORCH_DISPATCH": old[DISPATCH], "ORCH_RESULTS": old[RESULTS]}
    full = {**legacy, **new, SUBMIT: old[SUBMIT] + new[SUBMIT]}
    subjects = {**ZONE_SUBJECTS, "ORCH_DISPATCH": "orch.dispatch", "ORCH_RESULTS": "orch.result"}
    cut = {s: rng.randint(0, len(v)) for s, v in full.items()}
    whole = asyncio.run(takeover_books(full, None, subjects))
    compacted = asyncio.run(takeover_books(full, cut, subjects))
    layouts = {t >= shift for t in whole[1]}  # open work from the old layout and the new
    assert whole[0][0] > 0 and layouts == {False, True}
    assert compacted == whole


def renumber(doc: dict[str, Any], shift: int) -> dict[str, Any]:
    """*doc* with its task and job ids moved up by *shift* (bundles and jobs' nodes too)."""
    out = dict(doc)
    if "records" in out:
        out["records"] = [renumber(r, shift) for r in out["records"]]
    for key in ("task_id", "job_id"):
        if key in out:
            out[key] = int(out[key]) + shift
    if "nodes" in out:
        out["nodes"] = [{**n, "task_id": int(n["task_id"]) + shift} for n in out["nodes"]]
    return out
