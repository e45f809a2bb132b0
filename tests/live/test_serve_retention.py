"""A compacting service keeps its broker bounded, and a standby takes over from the snapshot.

Scenario: a primary and a standby ``orchestra live serve`` compact every
second (``--retain 1s``, segments of 2 s, ``--clock-skew 1s``); four agent
processes started here serve the pools. 200 tasks come in through the
Python client in waves; once they are done, the record streams hold a few
seconds of records while their sequences count every one of them, and the
snapshot in ``orch_snapshot`` has moved on; the primary's books hold only
the work not compacted yet. The primary is killed with -9: the standby
takes the lease and rebuilds its books from the snapshot and the streams'
tails. Twenty compacted ids come in again (as published after the broker's
message dedupe window, so the coordinator sees them): none runs again;
their replies stay the first ones. Fifty new tasks complete once. The new
primary's books count every task once (submitted = completed = 250), and
after its drain the segments hold every arrival exactly once: what left the
broker is in the records.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pandas as pd
from conftest import HERE
from test_serve import POOLS, Processes, _eq, kv_document, lease_holder, until, workload

from sim.live.broker import decode, encode
from sim.live.client import SubmitClient, TaskResult
from sim.live.snapshot import HEAD_KEY, SNAPSHOT_BUCKET
from sim.live.task_message import reply_subject
from sim.live.transport import (
    AGENTS_BUCKET,
    EVENTS,
    LEASE_BUCKET,
    REPLIES,
    SUBMIT,
    EmbeddedServer,
    connect,
    dispatch_stream,
    results_stream,
)

FIRST, LATER = 200, 50
ZONES = ("A", "B")
#: Each zone's record streams (compacted on their own sequences), and the submissions.
DISPATCHES = tuple(dispatch_stream(z) for z in ZONES)
RESULTS = tuple(results_stream(z) for z in ZONES)


def serve(procs: Processes, name: str) -> Any:
    return procs.start(
        name,
        "serve",
        str(HERE / "small.yaml"),
        "--name",
        name,
        "--records",
        str(procs.tmp_path / "records"),
        "--segment",
        "2s",
        "--compact-every",
        "1s",
        "--retain",
        "1s",
        "--clock-skew",
        "1s",
        "--dedupe",
        "10m",
        "--lease",
        "3",
        "--drain",
        "30",
        "--set",
        "health.interval=1s",
        "--set",
        "health.timeout=0.5s",
    )


def test_a_compacting_service_stays_bounded_and_fails_over_from_its_snapshot(
    tmp_path: Path, nats_server: EmbeddedServer
) -> None:
    procs = Processes(tmp_path, nats_server)
    try:
        asyncio.run(scenario(procs, nats_server))
    finally:
        procs.stop_all()
    check_segments(tmp_path, FIRST + LATER)


async def scenario(procs: Processes, server: EmbeddedServer) -> None:
    nc = await connect(server.url, server.token, "test")
    js = nc.jetstream()

    async def kv(bucket: str, key: str) -> dict[str, Any] | None:
        return await kv_document(js, bucket, key)

    async def holder() -> str | None:
        return await lease_holder(js)

    primary = serve(procs, "primary")
    for zone, category in POOLS:  # started meanwhile: process start-ups overlap
        procs.start(
            f"agent-{zone}-{category}",
            "agent",
            "--zone",
            zone,
            "--category",
            category,
            "--id",
            f"ext-{zone}-{category}",
            "--slots",
            "4",
            "--heartbeat",
            "0.2",
        )
    assert await until("the primary's lease", lambda: _eq(holder, "primary"))
    serve(procs, "standby")  # after the primary holds the lease: no race for it

    async def fleet_up() -> bool:
        try:
            return len(await (await js.key_value(AGENTS_BUCKET)).keys()) >= len(POOLS)
        except Exception:
            return False

    await until("the fleet", fleet_up)
    client = await SubmitClient.connect(server.url, server.token)
    first = workload(0, FIRST, seed=7)
    for wave in range(0, FIRST, 100):
        for doc in first[wave : wave + 100]:
            await client.submit(doc)
        got = [r async for r in client.results(100, timeout_s=60)]
        assert all(r.outcome == "completed" for r in got)

    async def stored(stream: str) -> tuple[int, int]:
        info = await js.stream_info(stream)
        return int(info.state.messages), int(info.state.last_seq)

    async def compacted() -> bool:
        counts = [await stored(s) for s in (SUBMIT, *DISPATCHES, *RESULTS)]
        return all(messages <= 40 for messages, _ in counts)

    # Bounded: the streams numbered every message (a submission, a start and an end per task;
    # the dispatch records in bundles), and each holds a few seconds' worth.
    await until("the streams compacted", compacted, 30.0)
    for streams, per_task in (((SUBMIT,), 1), (DISPATCHES, 0), (RESULTS, 2)):
        counts = [await stored(s) for s in streams]
        last = sum(n for _, n in counts)
        assert last >= max(1, per_task * FIRST) and all(m <= 40 for m, _ in counts), counts
    events = await js.stream_info(EVENTS)  # the segments' share is purged too
    assert int(events.state.first_seq) > 1 and int(events.state.messages) < events.state.last_seq
    replies = await js.stream_info(REPLIES)  # kept for the dedupe window, not for ever
    assert replies.config.max_age == 600.0
    head = await kv(SNAPSHOT_BUCKET, HEAD_KEY)
    assert head is not None and head["generation"] >= 2 and head["seqs"][SUBMIT] >= FIRST - 40
    # Every zone's streams compacted on their own sequences.
    assert sum(head["seqs"][s] for s in RESULTS) >= 2 * FIRST - 4 * 40
    assert all(head["seqs"][s] > 0 for s in (*DISPATCHES, *RESULTS)), head["seqs"]

    async def forgotten() -> bool:  # the primary's memory: finished work compacted away too
        status = await kv(LEASE_BUCKET, "status")
        return status is not None and status["completed"] == FIRST and status["tasks_held"] <= 40

    await until("the primary's books compacted", forgotten, 10.0)

    async def standing_by() -> bool:
        return "standby: serving" in procs.log("standby")

    await until("the standby", standing_by)
    primary.send_signal(signal.SIGKILL)
    primary.wait()
    assert await until("the standby's lease", lambda: _eq(holder, "standby"))
    # Compacted ids again, published without the client's message id (as after the broker's
    # dedupe window): the coordinator itself must recognise them.
    for doc in first[:20]:
        await js.publish("orch.submit", encode({**doc, "arrival_s": 1.0}))
    later = workload(FIRST, LATER, seed=8)
    for doc in later:
        await client.submit(doc)
    got = [r async for r in client.results(LATER, timeout_s=60)]
    assert sorted(r.task_id for r in got if isinstance(r, TaskResult)) == [
        *range(FIRST, FIRST + LATER)
    ]
    assert all(r.outcome == "completed" for r in got)
    total = FIRST + LATER

    async def books() -> dict[str, Any] | None:
        status = await kv(LEASE_BUCKET, "status")
        done = status is not None and status["primary"] == "standby"
        return status if done and status["completed"] >= total else None

    status = await until("the standby's books", books)
    await asyncio.sleep(1.5)  # any second count would have shown by now
    status = await kv(LEASE_BUCKET, "status")
    assert status is not None
    assert (status["submitted"], status["completed"], status["failed"]) == (total, total, 0)
    for doc in first[:20]:  # the first reply stands: not a second run's
        reply = decode((await js.get_last_msg(REPLIES, reply_subject("task", doc["task_id"]))).data)
        assert reply["agent"].startswith("ext-") and "forgotten" not in reply
    await client.close()
    await nc.close()


def check_segments(tmp_path: Path, total: int) -> None:
    """What left the broker is in the records: every arrival in exactly one segment."""
    root = tmp_path / "records"
    segments = sorted(p for p in root.iterdir() if p.name.startswith("segment-"))
    arrivals: list[int] = []
    submitted = 0
    for segment in segments:
        summary = json.loads((segment / "summary.json").read_text())
        submitted += summary["tasks"]["submitted"]
        tasks = pd.read_parquet(segment / "tasks.parquet")
        arrivals += sorted(set(tasks["task_id"]))
    assert sorted(arrivals) == list(range(total))
    assert submitted == total
