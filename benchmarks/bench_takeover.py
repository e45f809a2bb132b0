"""A takeover's catch-up after a long history: the whole streams against snapshot + tail.

Covers: sim.live.snapshot (the fold, the store), the coordinator's catch-up.
Scenario: a service has finished TASKS tasks (a submission, a routing and
an assignment record, a start and an end each) and holds OPEN more in
flight. A replica takes over twice on a real nats-server: once reading the
streams from their first message, once after a compaction (the snapshot,
then the streams' tails). Both must rebuild the same counters; the second
reads only the open work. Prints the wall seconds of each and their ratio.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_takeover.py [TASKS]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sim.live.clock import Clock
from sim.live.coordinator import Coordinator, CoordinatorConfig
from sim.live.nats_broker import NatsBroker
from sim.live.provisioner import LocalProcessProvisioner
from sim.live.retention import ensure_snapshot_bucket, read_range
from sim.live.snapshot import Snapshot, fold, store
from sim.live.task_message import Pools
from sim.live.transport import (
    SUBMIT,
    EmbeddedServer,
    Layout,
    connect,
    dispatch_subject,
    ensure_layout,
    ensure_replies_stream,
    publish,
    record_streams,
    result_subject,
)
from sim.scenario.load import load_scenario

TASKS = 20_000  # finished
OPEN = 200  # started, not ended
SCENARIO = Path(__file__).parents[1] / "tests" / "live" / "small.yaml"
EPOCH = time.time() - 3600.0


def records(task_id: int, finished: bool) -> list[tuple[str, dict[str, Any]]]:
    zone, category = ("A", "CodeGen") if task_id % 2 else ("B", "Review")
    base = {"task_id": task_id, "zone": zone}
    out = [
        ("orch.submit", {"kind": "task", "category": category, "arrival_s": 1.0, "work_s": 1.0}),
        (dispatch_subject(zone), {"kind": "dispatch", "dispatch_s": 1.0}),
        (dispatch_subject(zone), {"kind": "assign", "attempt": 1, "agent": "x", "assign_s": 1.0}),
        (result_subject(zone), {"kind": "start", "attempt": 1, "agent": "x", "start_s": 2.0}),
    ]
    if finished:
        end = {"kind": "end", "attempt": 1, "agent": "x", "outcome": "completed"}
        out.append((result_subject(zone), {**end, "start_s": 2.0, "end_s": 3.0}))
    return [(subject, {**base, **doc}) for subject, doc in out]


async def takeover(url: str, token: str, snapshots: bool) -> tuple[float, Any]:
    scenario = load_scenario(SCENARIO)
    config = CoordinatorConfig(url, token, Clock(EPOCH, 1.0), autoscale=False, snapshots=snapshots)
    broker = await NatsBroker.connect(url, token, "bench")
    provisioner = LocalProcessProvisioner(url, token, 1.0)
    coordinator = Coordinator(
        "bench", scenario, config, provisioner, ("A", "B"), ("CodeGen", "Review"), broker=broker
    )
    started = time.perf_counter()
    await coordinator.take_over()
    elapsed = time.perf_counter() - started
    assert coordinator.follow is not None
    await coordinator.follow.close()
    await broker.close()
    return elapsed, coordinator.counters


async def main(server: EmbeddedServer, tasks: int) -> None:
    nc = await connect(server.url, server.token, "bench")
    js = nc.jetstream()
    await ensure_layout(js, Layout(("A", "B"), ("CodeGen", "Review"), 5.0, 10.0))
    await ensure_replies_stream(js)
    await ensure_snapshot_bucket(js)
    pending = []
    for task_id in range(tasks + OPEN):
        for subject, doc in records(task_id, task_id < tasks):
            pending.append(publish(js, subject, doc))
        if len(pending) >= 500:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    full_s, full = await takeover(server.url, server.token, snapshots=False)

    broker = NatsBroker(nc)
    fresh, seqs = {}, {}
    for stream, subject in (*record_streams(("A", "B")), (SUBMIT, "orch.submit")):
        seqs[stream] = int((await js.stream_info(stream)).state.last_seq)
        fresh[stream] = await read_range(js, stream, subject, 0, seqs[stream])
    pools = Pools(frozenset({"A", "B"}), frozenset({"CodeGen", "Review"}))
    started = time.perf_counter()
    snapshot = fold(Snapshot(), fresh, seqs, time.time(), 86_400.0, pools)
    size = await store(broker, snapshot)
    compact_s = time.perf_counter() - started
    for stream, last in seqs.items():
        await js.purge_stream(stream, seq=last + 1)
    tail_s, tail = await takeover(server.url, server.token, snapshots=True)
    await nc.close()
    same = (full.submitted, full.completed) == (tail.submitted, tail.completed)
    print(f"tasks finished {tasks}, open {OPEN}; records {sum(seqs.values())}")
    print(f"catch-up, whole streams:    {full_s:7.3f} s  (completed {full.completed})")
    print(f"compaction (fold + store):  {compact_s:7.3f} s  (snapshot {size} B compressed)")
    print(f"catch-up, snapshot + tail:  {tail_s:7.3f} s  (completed {tail.completed})")
    print(f"ratio whole / snapshot:     {full_s / tail_s:7.1f}x   same books: {same}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else TASKS
    with tempfile.TemporaryDirectory() as store_dir, EmbeddedServer(Path(store_dir)) as server:
        asyncio.run(main(server, count))
