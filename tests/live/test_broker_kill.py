"""The broker killed with SIGKILL mid-run and restarted on its store: nothing lost, nothing twice.

The guarantee under test (README, live mode): delivery is at least once —
JetStream keeps every acknowledged message (the embedded server fsyncs each
write before it acks, ``sync_interval: always``) and redelivers what an
agent had not acked — and completion is idempotent: a task id counts once
in the records however often its end is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import pytest
from conftest import exactly_once, run_live, small

from sim.live.arrivals import arrivals
from sim.live.transport import EmbeddedServer, connect, encode, read_all


def test_every_acknowledged_publish_survives_a_kill_9(tmp_path: Path) -> None:
    """Publishers racing a SIGKILL: every message the broker acked is there after, once."""
    server = EmbeddedServer(tmp_path / "store")
    server.start()
    acked: set[str] = set()
    codes: list[int | None] = []

    async def publish_until_killed() -> None:
        nc = await connect(server.url, server.token, "publisher")
        js = nc.jetstream()
        await js.add_stream(name="KILL", subjects=["kill"])

        async def publisher(k: int) -> None:
            for i in range(1_000_000):
                key = f"{k}.{i}"
                await js.publish("kill", encode({"key": key}), headers={"Nats-Msg-Id": key})
                acked.add(key)  # only once the broker said it is stored

        writers = [asyncio.create_task(publisher(k)) for k in range(16)]
        while len(acked) < 500:  # mid-stream: the publishers are busy when the kill lands
            await asyncio.sleep(0.01)
        codes.append(server.kill())
        for writer in writers:
            writer.cancel()
        await asyncio.gather(*writers, return_exceptions=True)
        # Closing a client whose broker was killed: nats-py may end the wait for its
        # socket with CancelledError (its own close waiter, not this test cancelled).
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await nc.close()

    async def stored() -> list[str]:
        nc = await connect(server.url, server.token, "reader")
        js = nc.jetstream()
        messages = [m["key"] for m in await read_all(js, "KILL", "kill")]
        await nc.close()
        return messages

    try:
        asyncio.run(publish_until_killed())
        assert codes == [-signal.SIGKILL]  # killed, not stopped: nothing flushed on the way out
        server.start()
        keys = asyncio.run(stored())
    finally:
        server.stop()
    assert len(acked) >= 500
    assert acked <= set(keys), f"{len(acked - set(keys))} acknowledged messages lost"
    assert len(keys) == len(set(keys))  # and none stored twice


@pytest.mark.parametrize("mode", ["process", "simulated"])
def test_broker_kill_9_mid_run_loses_and_duplicates_nothing(tmp_path: Path, mode: str) -> None:
    scenario = small("duration=4m", "topology.specialists=6", "workload.arrivals.rate_per_min=30")
    kill_s = 100.0
    run = run_live(scenario, tmp_path, time_scale=40.0, broker_kills=[kill_s], agents_mode=mode)
    exactly_once(run)  # every submitted task completed, one completed row per task id
    # Nothing acknowledged was lost: the driver moves to the next arrival only once the
    # broker acked the last, and every arrival of the scenario is in the records.
    expected = sum(
        1 if document["kind"] == "task" else len(document["nodes"])
        for t, document in arrivals(scenario)
        if t < scenario.duration
    )
    assert run.summary["tasks"]["submitted"] == expected
    events, tasks = run.result.events, run.result.tasks
    restarts = events[events["kind"] == "broker_restart"]
    assert len(restarts) == 1 and '"how":"kill"' in str(restarts["detail"].iloc[0])
    assert abs(float(restarts["time_s"].iloc[0]) - kill_s) < 40.0  # (one wall second)
    done = tasks[tasks["outcome"] == "completed"]
    assert (done["arrival_s"] > kill_s).sum() > 10  # the run went on after the kill
    assert (done["arrival_s"] < kill_s).sum() > 10  # and what came before was kept
    assert done["task_id"].is_unique  # a redelivered task's second end is not counted
