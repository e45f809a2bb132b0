"""A service's recorded DAG jobs replay in the simulator as DAG jobs, edges and all.

Scenario: one ``orchestra live serve`` writes records; two agent processes
started here serve zone A. Four DAG jobs of different shapes (a fork-join,
a chain, a fan-out-in, a lone node) and a few plain tasks come in through
the Python client; every job completes. SIGTERM drains the service, which
writes its (partial) window. The window's scenario lists the four jobs as
fixed releases of DAG files, and ``orchestra replay`` of the segment runs the
same four workflows — the same node counts, and no node of a job starts
before each of its parents has ended — next to the plain tasks of the trace.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from conftest import HERE
from test_serve import Processes, _eq, until, workload

from sim.live.broker import decode
from sim.live.client import JobResult, SubmitClient
from sim.live.transport import AGENTS_BUCKET, LEASE_BUCKET, EmbeddedServer, connect

ROOT = HERE.parents[1]


def job(job_id: int, first_task: int, edges: list[tuple[int, int]], size: int) -> dict[str, Any]:
    nodes = [
        {
            "node": n,
            "task_id": first_task + n,
            "category": ("CodeGen", "Review")[n % 2],
            "work_s": 0.05,
        }
        for n in range(size)
    ]
    return {
        "kind": "job",
        "job_id": job_id,
        "zone": "A",
        "nodes": nodes,
        "edges": [[a, b, 2.0] for a, b in edges],
    }


JOBS = [
    job(0, 1000, [(0, 1), (0, 2), (1, 3), (2, 3)], 4),  # fork-join
    job(1, 1100, [(0, 1), (1, 2)], 3),  # chain
    job(2, 1200, [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4)], 5),  # fan out, fan in
    job(3, 1300, [], 1),  # a lone node
]


def test_recorded_dag_jobs_replay_as_dag_jobs(tmp_path: Path, nats_server: EmbeddedServer) -> None:
    procs = Processes(tmp_path, nats_server)
    try:
        asyncio.run(serve_jobs(procs, nats_server))
    finally:
        procs.stop_all()
    check_replay(tmp_path)


async def serve_jobs(procs: Processes, server: EmbeddedServer) -> None:
    nc = await connect(server.url, server.token, "test")
    js = nc.jetstream()

    async def holder() -> str | None:
        try:
            entry = await (await js.key_value(LEASE_BUCKET)).get("primary")
        except Exception:
            return None
        return str(decode(entry.value or b"{}")["holder"])

    primary = procs.start(
        "primary",
        "serve",
        str(HERE / "small.yaml"),
        "--name",
        "primary",
        "--records",
        str(procs.tmp_path / "records"),
        "--segment",
        "10m",  # one window: the drain writes it, every job inside
        "--set",
        "health.interval=1s",
        "--set",
        "health.timeout=0.5s",
    )
    assert await until("the lease", lambda: _eq(holder, "primary"))
    for category in ("CodeGen", "Review"):
        procs.start(
            f"agent-{category}",
            "agent",
            "--zone",
            "A",
            "--category",
            category,
            "--id",
            f"ext-{category}",
            "--slots",
            "2",
            "--heartbeat",
            "0.2",
        )

    async def fleet_up() -> bool:
        try:
            return len(await (await js.key_value(AGENTS_BUCKET)).keys()) >= 2
        except Exception:
            return False

    await until("the fleet", fleet_up)
    client = await SubmitClient.connect(server.url, server.token)
    tasks = [d for d in workload(0, 20, seed=5) if d["zone"] == "A"]
    for doc in [*JOBS, *tasks]:
        await client.submit(doc)
    results = [r async for r in client.results(len(JOBS) + len(tasks), timeout_s=60)]
    jobs = [r for r in results if isinstance(r, JobResult)]
    assert sorted(j.job_id for j in jobs) == [0, 1, 2, 3]
    assert all(r.outcome == "completed" for r in results)
    await client.close()
    await nc.close()
    primary.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(primary.wait, 40) == 0, procs.log("primary")


def check_replay(tmp_path: Path) -> None:
    segments = sorted(p for p in (tmp_path / "records").iterdir() if p.name.startswith("segment-"))
    assert len(segments) == 1, segments
    segment = segments[0]
    spec = yaml.safe_load((segment / "scenario.yaml").read_text())["workload"]["dags"]
    assert spec["rate_per_min"] == 0.0
    released = {Path(r["file"]).name: r for r in spec["jobs"]}
    assert set(released) == {f"job-{j['job_id']}.json" for j in JOBS}
    assert all(Path(r["file"]).is_file() and r["zone"] == "A" for r in released.values())

    out = tmp_path / "replay"
    replay = subprocess.run(
        [sys.executable, "-m", "sim", "replay", str(segment), "--out", str(out), "--no-report"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    replayed_jobs = pd.read_parquet(out / "jobs.parquet")
    tasks = pd.read_parquet(out / "tasks.parquet")
    names = dict(zip(replayed_jobs["job_id"], replayed_jobs["shape"], strict=True))
    assert sorted(names.values()) == sorted(f"file:job-{j['job_id']}" for j in JOBS)
    recorded = {f"file:job-{j['job_id']}": j for j in JOBS}
    for sim_job, shape in names.items():
        original = recorded[shape]
        row = replayed_jobs[replayed_jobs["job_id"] == sim_job].iloc[0]
        assert row["nodes"] == len(original["nodes"])
        done = tasks[(tasks["job_id"] == sim_job) & (tasks["outcome"] == "completed")]
        assert sorted(done["node"]) == list(range(len(original["nodes"])))
        start = dict(zip(done["node"], done["start_s"], strict=True))
        end = dict(zip(done["node"], done["end_s"], strict=True))
        for src, dst, _ in original["edges"]:
            assert start[dst] >= end[src] - 1e-9, (shape, src, dst)
    plain = tasks[tasks["job_id"] < 0]
    summary = json.loads((segment / "summary.json").read_text())
    assert len(set(plain["task_id"])) == summary["tasks"]["submitted"] - sum(
        len(j["nodes"]) for j in JOBS
    )
