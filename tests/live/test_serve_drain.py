"""Agents started by someone else are drained by the service's autoscaler like its own.

A ``serve --provisioner command`` in front of four agent processes started
here (not by the service); with nothing to do, the step policy's scale-down (queue at most 1,
half the fleet idle) drains two of them, the most it may: the scenario's
bound keeps two specialists. Each drained agent is told so, leaves the pool,
stops heartbeating as a member and exits by itself with status 0; the other
two keep serving. The provisioner's stop template is not run for them: it
hands back only what it started.

The agents register before the service starts (the test lays the broker out
as the service will): an evaluation that saw fewer than the scenario's bound
would rightly ask for more, and the count of drains would then be another
story than the one told here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import HERE
from test_serve import until

from sim.live.serve import ServeOptions, service_layout
from sim.live.transport import (
    AGENTS_BUCKET,
    EVENTS,
    EmbeddedServer,
    connect,
    ensure_layout,
    read_all,
)

ROOT = HERE.parents[1]
FAST = (
    "scaling.evaluation_interval=2s",
    "scaling.metric_window=2s",
    "scaling.auto_scale.scale_down.cooldown_seconds=2s",
    "health.interval=1s",
    "health.timeout=0.5s",
)
AGENTS = ("ext-1", "ext-2", "ext-3", "ext-4")


def test_external_agents_are_drained_by_the_services_autoscaler(
    tmp_path: Path, nats_server: EmbeddedServer
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORCHESTRA_NATS_TOKEN": nats_server.token}
    base = [sys.executable, "-m", "sim", "live"]
    settings = [arg for s in FAST for arg in ("--set", s)]
    log = open(tmp_path / "processes.log", "wb")  # noqa: SIM115 (lives with the processes)
    asyncio.run(lay_out_as_the_service(nats_server))
    agents = {
        agent_id: subprocess.Popen(
            [
                *(*base, "agent", "--nats", nats_server.url, "--zone", "A"),
                *("--category", "Generic", "--id", agent_id, "--heartbeat", "0.2"),
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        for agent_id in AGENTS
    }
    serve: subprocess.Popen[bytes] | None = None
    try:
        asyncio.run(until_registered(nats_server, set(AGENTS)))
        serve = subprocess.Popen(
            [
                *(*base, "serve", str(HERE / "burst.yaml"), "--nats", nats_server.url),
                *("--name", "svc", "--drain", "1", "--records", str(tmp_path / "records")),
                *("--provisioner", "command", "--start-command", "true"),
                *("--stop-command", f"echo {{agent_id}} >> {tmp_path / 'stopped.txt'}"),
                *settings,
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        events = asyncio.run(until_drained(nats_server, 2))
        deadline = time.monotonic() + 30
        drained = {e["subject"] for e in events if e["kind"] == "agent_draining"}
        while time.monotonic() < deadline and any(agents[a].poll() is None for a in drained):
            time.sleep(0.2)
        codes = {agent_id: process.poll() for agent_id, process in agents.items()}
        time.sleep(3.0)  # a few more evaluations: the ones that would retire the leavers
        events = asyncio.run(all_events(nats_server))
    finally:
        processes = [*agents.values(), *([serve] if serve else [])]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(30)
        log.close()
    text = (tmp_path / "processes.log").read_text(errors="replace")
    kinds = sorted({e["kind"] for e in events})
    scales = [e["detail"] for e in events if e["kind"] == "scale"][:3]
    assert len(drained) == 2 and drained <= set(AGENTS), (kinds, scales, text[-1500:])
    # The drained agents left by themselves, cleanly; the others were still serving.
    assert all(codes[a] == 0 for a in drained), (codes, text[-3000:])
    assert all(codes[a] is None for a in set(AGENTS) - drained), codes
    left = {e["subject"] for e in events if e["kind"] == "agent_left"}
    assert drained <= left
    scale = [e for e in events if e["kind"] == "scale"]
    deltas = [json.loads(e["detail"])["delta"] for e in scale]
    assert sum(d for d in deltas if d < 0) == -2, deltas  # the two drains, nothing more
    assert not [e for e in events if e["kind"] == "agent_detected"]  # drained, not dead
    # The stop template is for what the provisioner started: agents that came on their own
    # are drained and leave by themselves; nothing is stopped for them.
    assert not (tmp_path / "stopped.txt").exists()


async def lay_out_as_the_service(server: EmbeddedServer) -> None:
    """The streams and buckets ``serve`` will find (it keeps what exists), made first."""
    nc = await connect(server.url, server.token, "test")
    try:
        layout = service_layout(("A",), ("Generic",), ServeOptions(url=server.url))
        await ensure_layout(nc.jetstream(), layout)
    finally:
        await nc.close()


async def until_registered(server: EmbeddedServer, ids: set[str]) -> None:
    nc = await connect(server.url, server.token, "test")
    js = nc.jetstream()

    async def registered() -> bool:
        try:
            return ids <= set(await (await js.key_value(AGENTS_BUCKET)).keys())
        except Exception:  # nats-py raises NoKeysError while the bucket is empty
            return False

    try:
        await until(f"{sorted(ids)} registered", registered, 60.0)
    finally:
        await nc.close()


async def until_drained(server: EmbeddedServer, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = await all_events(server)
        if sum(1 for e in events if e["kind"] == "agent_draining") >= count:
            break
        await asyncio.sleep(0.3)
    return events


async def all_events(server: EmbeddedServer) -> list[dict[str, Any]]:
    nc = await connect(server.url, server.token, "test")
    try:
        return await read_all(nc.jetstream(), EVENTS, "orch.event")
    except Exception:
        return []
    finally:
        await nc.close()
