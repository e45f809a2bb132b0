"""Recommendation mode, as a service: a burst becomes scale-up recommendations, no process.

A ``serve --provisioner none --webhook URL`` in front of one agent process
started here; a burst of slow tasks piles up a queue past the step policy's
threshold. The autoscaler's decision reaches the webhook (how many, which
pools) and the event log (``scale_recommended``); nothing is started — no
``agent_requested`` event, and the only agent heartbeating is ours.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

from conftest import HERE

from sim.live.client import SubmitClient
from sim.live.nats_broker import NatsBroker
from sim.live.transport import AGENTS_BUCKET, EVENTS, EmbeddedServer, connect, read_all

ROOT = HERE.parents[1]
FAST = (
    "scaling.evaluation_interval=2s",
    "scaling.metric_window=2s",
    "health.interval=1s",
    "health.timeout=0.5s",
)


class Hooks(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Hooks.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_a_burst_is_recommended_to_the_webhook_and_nothing_starts(
    tmp_path: Path, nats_server: EmbeddedServer
) -> None:
    hooks = HTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    Hooks.received = []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORCHESTRA_NATS_TOKEN": nats_server.token}
    base = [sys.executable, "-m", "sim", "live"]
    settings = [arg for s in FAST for arg in ("--set", s)]
    url = f"http://127.0.0.1:{hooks.server_address[1]}/scale"
    started = []
    with open(tmp_path / "serve.log", "wb") as log:
        serve = subprocess.Popen(
            [
                *(*base, "serve", str(HERE / "burst.yaml"), "--nats", nats_server.url),
                *("--provisioner", "none", "--webhook", url, "--name", "rec", "--drain", "1"),
                *settings,
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        started.append(serve)
        started.append(
            subprocess.Popen(
                [
                    *(*base, "agent", "--nats", nats_server.url, "--zone", "A"),
                    *("--category", "Generic", "--id", "only", "--heartbeat", "0.2"),
                ],
                env=env,
                stdout=log,
                stderr=log,
            )
        )
    try:
        events = asyncio.run(burst(nats_server))
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        for process in started:
            process.wait(30)
        hooks.shutdown()
        hooks.server_close()
    assert serve.returncode == 0, (tmp_path / "serve.log").read_text()
    kinds = [e["kind"] for e in events]
    assert "agent_requested" not in kinds
    recommended = [e for e in events if e["kind"] == "scale_recommended"]
    hook = Hooks.received[0]
    assert hook["recommendation"] == "scale" and hook["delta"] > 0
    assert len(hook["pools"]) == hook["delta"]
    assert all(p == {"zone": "A", "category": "Generic"} for p in hook["pools"])
    assert len(recommended) >= hook["delta"]


async def burst(server: EmbeddedServer) -> list[dict[str, Any]]:
    nc = await connect(server.url, server.token, "test")
    js = nc.jetstream()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:  # the service's epoch and the agent's heartbeat
        try:
            if await (await js.key_value(AGENTS_BUCKET)).keys():
                client = await SubmitClient.connect(server.url, server.token)
                break
        except Exception:
            pass
        await asyncio.sleep(0.2)
    for task_id in range(30):
        await client.submit_task(task_id, "Generic", "A", work_s=5.0)
    while time.monotonic() < deadline and not Hooks.received:
        await asyncio.sleep(0.2)
    await client.close()
    # Read as the coordinator reads the registry: nats-py's keys() can end at its
    # end-of-values marker before the values it has buffered, and raised NoKeysError in CI.
    agents = sorted(await NatsBroker(nc).kv_entries(AGENTS_BUCKET))
    assert agents == ["only"]  # nothing was started
    events = await read_all(js, EVENTS, "orch.event")
    await nc.close()
    return events
