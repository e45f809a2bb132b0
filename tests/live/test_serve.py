"""The service in front of a fleet, end to end, on a real nats-server.

Scenario: a primary and a standby ``orchestra live serve`` run against one
broker; four agent processes, started here (not by the service), join on
``--nats``. 500 tasks and three DAG jobs come in through the Python client
and through ``orchestra live submit``; mid-run the primary is killed with
-9 and the standby takes the lease, and a spare ``serve`` starts as the new
standby; some ids are submitted again. Later the standby (now primary) gets
SIGTERM with work in hand: it drains — finishes what it holds, exits 0,
hands the lease back — and the spare takes over; one agent process is killed -9 on the way and is
detected like a provisioned one; ten tasks submitted as the
drain begins are run once, by whichever of the two booked them (a draining
primary books no new submission: they wait in the stream for the spare). Every task and job gets
exactly one result, all completed, spread over the four agents. The spare
drains last; the records the three wrote — segments of a few seconds — hold
every arrival once, and the busiest replays and calibrates in the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from conftest import HERE
from nats.js import JetStreamContext

from sim.live.broker import decode
from sim.live.client import JobResult, SubmitClient, TaskResult
from sim.live.transport import (
    AGENTS_BUCKET,
    EVENTS,
    LEASE_BUCKET,
    EmbeddedServer,
    connect,
    read_all,
)

ROOT = HERE.parents[1]
SETTINGS = ("health.interval=1s", "health.timeout=0.5s", "metrics.interval=5s")
POOLS = [(z, c) for z in ("A", "B") for c in ("CodeGen", "Review")]


class Processes:
    """The processes this test starts, each ended by its own id."""

    def __init__(self, tmp_path: Path, server: EmbeddedServer) -> None:
        self.tmp_path, self.server = tmp_path, server
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.env["ORCHESTRA_NATS_TOKEN"] = server.token
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, stdout: Any = None) -> subprocess.Popen[bytes]:
        with open(self.tmp_path / f"{name}.log", "wb") as log:  # the child keeps its own copy
            process = subprocess.Popen(
                [sys.executable, "-m", "sim", "live", *args, "--nats", self.server.url],
                env=self.env,
                stdout=stdout if stdout is not None else log,
                stderr=log,
                cwd=self.tmp_path,
            )
        self.started.append(process)
        return process

    def serve(self, name: str) -> subprocess.Popen[bytes]:
        settings = [arg for s in SETTINGS for arg in ("--set", s)]
        return self.start(
            name,
            "serve",
            str(HERE / "small.yaml"),
            "--name",
            name,
            "--records",
            str(self.tmp_path / "records"),
            "--segment",
            "6s",
            "--lease",
            "3",  # a takeover's catch-up on two busy cores may hold the loop past 1 s
            "--drain",
            "30",
            *settings,
        )

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def until(what: str, check: Any, timeout_s: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def workload(first: int, count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for task_id in range(first, first + count):
        zone, category = rng.choice(POOLS)
        work = round(rng.uniform(0.02, 0.15), 3)
        out.append(
            {"kind": "task", "task_id": task_id, "category": category, "zone": zone, "work_s": work}
        )
    return out


def fork_join(job_id: int, first_task: int) -> dict[str, Any]:
    categories = ("CodeGen", "Review", "Review", "CodeGen")
    nodes = [
        {"node": n, "task_id": first_task + n, "category": c, "work_s": 0.05}
        for n, c in enumerate(categories)
    ]
    edges = [[0, 1, 1.0], [0, 2, 1.0], [1, 3, 1.0], [2, 3, 1.0]]
    return {"kind": "job", "job_id": job_id, "zone": "A", "nodes": nodes, "edges": edges}


def test_a_service_with_a_standby_serves_every_task_once_through_a_kill_and_a_drain(
    tmp_path: Path, nats_server: EmbeddedServer
) -> None:
    procs = Processes(tmp_path, nats_server)
    try:
        asyncio.run(scenario(procs, tmp_path, nats_server))
    finally:
        procs.stop_all()


async def kv_document(js: JetStreamContext, bucket: str, key: str) -> dict[str, Any] | None:
    """A key's document, or None when the bucket or the key is not there (yet)."""
    try:
        entry = await (await js.key_value(bucket)).get(key)
    except Exception:
        return None
    return decode(entry.value or b"{}")


async def lease_holder(js: JetStreamContext) -> str | None:
    """The replica holding an unexpired lease, if any."""
    lease = await kv_document(js, LEASE_BUCKET, "primary")
    return str(lease["holder"]) if lease and float(lease["expires"]) > time.time() else None


async def scenario(procs: Processes, tmp_path: Path, server: EmbeddedServer) -> None:
    """The story below, its connections closed however it ends (a failed assertion must
    not leave sockets for a later test's garbage collection to report)."""
    async with contextlib.AsyncExitStack() as closing:
        nc = await connect(server.url, server.token, "test")
        closing.push_async_callback(nc.close)
        await story(procs, tmp_path, server, nc, closing)


async def story(
    procs: Processes,
    tmp_path: Path,
    server: EmbeddedServer,
    nc: Any,
    closing: contextlib.AsyncExitStack,
) -> None:
    js = nc.jetstream()

    async def kv(bucket: str, key: str) -> dict[str, Any] | None:
        return await kv_document(js, bucket, key)

    async def holder() -> str | None:
        return await lease_holder(js)

    primary = procs.serve("primary")
    assert await until("the primary's lease", lambda: _eq(holder, "primary"))
    standby = procs.serve("standby")
    agents = {}
    for zone, category in POOLS:
        agents[zone, category] = procs.start(
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
            "--ack-wait",
            "2",
        )

    async def fleet_up() -> bool:
        try:
            keys = await (await js.key_value(AGENTS_BUCKET)).keys()
        except Exception:
            return False
        return len(keys) >= len(POOLS)

    await until("the fleet's heartbeats", fleet_up)

    # The CLI's share: 100 tasks and a job, from a JSON lines file.
    lines = [*workload(500, 100, seed=2), fork_join(2, 20_000)]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps(doc) + "\n" for doc in lines))
    cli = procs.start("submit", "submit", str(batch), "--timeout", "90", stdout=subprocess.PIPE)

    # The Python client's share: 400 tasks and two jobs.
    client = await SubmitClient.connect(server.url, server.token)
    closing.push_async_callback(client.close)
    mine = [*workload(0, 400, seed=1), fork_join(0, 10_000), fork_join(1, 10_100)]
    for doc in mine:
        await client.submit(doc)
    results: list[TaskResult | JobResult] = []
    late = workload(450, 10, seed=3)  # submitted while the standby drains
    spare = None
    standby_log = ""
    async for result in client.results(len(mine) + len(late), timeout_s=60):
        results.append(result)
        if len(results) == 100:
            primary.send_signal(signal.SIGKILL)  # mid-run: the standby must finish
            primary.wait()
            assert await until("the standby's lease", lambda: _eq(holder, "standby"))
            spare = procs.serve("spare")  # the next standby (after the takeover: no race)
            # Some ids again, finished and not: the same tasks, no second result.
            for doc in mine[:10] + mine[300:305]:
                await client.submit(doc)
        if len(results) == 170:
            # An agent started here dies: detected and its tasks placed anew, as a provisioned
            # one's would be (its pool is left empty: its queue goes to the other zone).
            agents["B", "Review"].send_signal(signal.SIGKILL)
        if len(results) == 250:
            assert await holder() == "standby"
            standby.send_signal(signal.SIGTERM)  # with work in hand: a drain
            await asyncio.sleep(0.3)
            for doc in late:
                await client.submit(doc)
        if len(results) == len(mine) + len(late):
            break
    assert spare is not None
    assert await asyncio.to_thread(standby.wait, 40) == 0, procs.log("standby")
    standby_log = procs.log("standby")
    assert "standby: draining" in standby_log and "standby: stopped" in standby_log
    assert await until("the spare's lease", lambda: _eq(holder, "spare"), 10.0)
    mine += late
    ids = [(r.kind, r.task_id if isinstance(r, TaskResult) else r.job_id) for r in results]
    assert len(ids) == len(set(ids)) == len(mine)
    assert {i for k, i in ids if k == "task"} == set(range(400)) | set(range(450, 460))
    assert {i for k, i in ids if k == "job"} == {0, 1}
    assert all(r.outcome == "completed" for r in results)
    # Balanced over the agents started here: each served its pool's share.
    served = {r.reply["agent"] for r in results if isinstance(r, TaskResult)}
    assert served == {f"ext-{z}-{c}" for z, c in POOLS}
    jobs = [r for r in results if isinstance(r, JobResult)]
    assert all(len(j.nodes) == 4 for j in jobs)
    # A job's last node started after its first ended (the DAG's order held).
    for j in jobs:
        by_node = {n["node"]: n for n in j.nodes}
        assert by_node[3]["start_s"] >= max(by_node[1]["end_s"], by_node[2]["end_s"])
    await client.close()

    out, _ = cli.communicate(timeout=90)
    assert cli.returncode == 0, procs.log("submit")
    printed = [json.loads(line) for line in out.decode().splitlines()]
    keys = [(d["kind"], d.get("task_id", d.get("job_id"))) for d in printed]
    assert len(keys) == len(set(keys)) == 101
    assert all(d["outcome"] == "completed" for d in printed)

    total = 400 + 10 + 100 + 3 * 4

    async def books_complete() -> dict[str, Any] | None:
        status = await kv(LEASE_BUCKET, "status")
        done = status is not None and status["primary"] == "spare"
        return status if done and status["completed"] == total else None

    status = await until("the standby's books", books_complete)
    assert status["submitted"] == total and status["failed"] == 0

    async def detected() -> list[str]:
        events = await read_all(js, EVENTS, "orch.event")
        return [e["subject"] for e in events if e["kind"] == "agent_detected"]

    # Declared once: by the standby, or — killed within a detection time of the standby's
    # drain — by the spare, which takes its predecessor's pools over (``sim.live.roster``).
    assert await until("the killed agent's declaration", detected) == ["ext-B-Review"]

    def status_view() -> str:
        view = subprocess.run(
            [sys.executable, "-m", "sim", "live", "status", "--nats", server.url, "--once"],
            env={**procs.env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert view.returncode == 0, view.stderr
        return view.stdout

    alive = [f"ext-{z}-{c}" for z, c in POOLS if (z, c) != ("B", "Review")]
    shown = status_view()
    assert "spare" in shown and all(agent in shown for agent in alive), shown

    spare.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(spare.wait, 40) == 0, procs.log("spare")
    assert "spare: stopped" in procs.log("spare")
    lease = await kv(LEASE_BUCKET, "primary")
    assert lease is not None and lease["holder"] == "spare" and lease["expires"] == 0.0
    assert await detected() == ["ext-B-Review"]  # and never a second time

    check_segments(tmp_path, total)


async def _eq(read: Any, expected: str) -> bool:
    return bool(await read() == expected)


def check_segments(tmp_path: Path, total: int) -> None:
    """Every arrival in exactly one segment; the busiest segment replays in the simulator."""
    root = tmp_path / "records"
    segments = sorted(p for p in root.iterdir() if p.name.startswith("segment-"))
    assert len(segments) >= 2
    submitted, arrivals = 0, []
    for segment in segments:
        summary = json.loads((segment / "summary.json").read_text())
        submitted += summary["tasks"]["submitted"]
        tasks = pd.read_parquet(segment / "tasks.parquet")
        arrivals += sorted(set(tasks.loc[tasks["job_id"] < 0, "task_id"]))  # rows per attempt
    assert submitted == total
    assert sorted(arrivals) == [*range(400), *range(450, 460), *range(500, 600)]
    busiest = max(segments, key=lambda p: len(pd.read_parquet(p / "trace.parquet")))
    rows = len(pd.read_parquet(busiest / "trace.parquet"))
    out = tmp_path / "replay"
    replay = subprocess.run(
        [sys.executable, "-m", "sim", "replay", str(busiest), "--out", str(out), "--no-report"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    replayed = json.loads((out / "summary.json").read_text())
    assert replayed["tasks"]["submitted"] >= rows > 0
    calibrate = subprocess.run(
        [sys.executable, "-m", "sim", "calibrate", str(busiest), "--out", str(tmp_path / "cal")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert calibrate.returncode == 0, calibrate.stderr
    assert (tmp_path / "cal" / "calibrated.yaml").exists()
