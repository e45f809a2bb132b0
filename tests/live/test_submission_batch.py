"""Batched submissions (``task_message.submission_batch``, ``SubmitClient.submit_many``).

A batch is several submissions in one stored message; the coordinator takes
each on its own, as if sent alone: a bad one is rejected and the rest go on,
a malformed batch is rejected rather than crashing the reader (anybody may
publish on ``orch.submit``), and a takeover reads a batch once. On a memory
broker, and once through a real nats-server with a simulated fleet.
"""

from __future__ import annotations

import asyncio
import time

from conftest import small
from test_coordinator_logic import EPOCH, Fleet

from sim.live.broker import unbundle
from sim.live.clock import Clock
from sim.live.coordinator import Coordinator, CoordinatorConfig
from sim.live.provisioner import AgentSpec, SimulatedFleet
from sim.live.task_message import submission_batch
from sim.live.transport import (
    EVENTS,
    LEASE_BUCKET,
    EmbeddedServer,
    Layout,
    connect,
    encode,
    ensure_layout,
    read_all,
    read_records,
    submit_streams,
    submit_subject,
)


def task(n: int, zone: str = "A") -> dict[str, object]:
    return {"kind": "task", "task_id": n, "category": "CodeGen", "zone": zone, "work_s": 10.0}


def test_a_batch_is_taken_submission_by_submission_and_a_takeover_reads_it_once() -> None:
    async def body(fleet: Fleet) -> None:
        for agent in ("a1", "a2", "a3"):
            await fleet.beat(agent)
        c = fleet.coordinator()
        await c.take_over()
        bad = {**task(9), "category": "Nonesuch"}
        nested = submission_batch([{**task(7), "arrival_s": 0.0}])[0]
        docs = [{**d, "arrival_s": 0.0} for d in (task(0), bad, task(1), nested, task(2))]
        batch, msg_id = submission_batch(docs)
        await fleet.broker.publish("orch.submit", batch, msg_id)
        await fleet.broker.publish("orch.submit", batch, msg_id)  # sent again whole: deduped
        await fleet.broker.publish("orch.submit", {"kind": "records", "records": "no list"})
        await c.pump()
        assert sorted(c.tasks) == [0, 1, 2] and c.counters.submitted == 3
        rejected = [e["error"] for e in await fleet.events("submission_rejected")]
        assert len(rejected) == 3  # the bad category, the batch in a batch, the malformed one
        assert sorted([t for a in ("a1", "a2", "a3") for t, _ in await fleet.take(a)]) == [0, 1, 2]
        standby = fleet.coordinator(name="c2")
        await standby.take_over()  # a catch-up from the streams: the batch once, nothing anew
        assert sorted(standby.tasks) == [0, 1, 2] and standby.counters.submitted == 3
        assert [t for a in ("a1", "a2", "a3") for t, _ in await fleet.take(a)] == []

    asyncio.run(body(Fleet()))


async def batched_burst(server: EmbeddedServer, tasks: int) -> None:
    """A primary and 8 simulated agents; *tasks* submitted in batches of 50 on zone subjects."""
    scenario = small("topology.specialists=8", "scaling.auto_scale.enabled=false")
    zones, categories = ("A", "B"), ("CodeGen", "Review")
    nc = await connect(server.url, server.token, "test")
    js = nc.jetstream()
    await ensure_layout(js, Layout(zones, categories, 5.0, 30.0))
    fleet = SimulatedFleet(server.url, server.token, 1.0, handler="noop", heartbeat_s=0.2)
    runner: asyncio.Task[None] | None = None
    try:
        await fleet.open()
        pools = [(z, c) for z in zones for c in categories]
        for n, (zone, category) in enumerate(pools * 2):
            fleet.start(AgentSpec(f"g{n}", zone, category, 1.0, 1))
        while fleet.registered < 8:
            await asyncio.sleep(0.05)
        clock = Clock(time.time(), 1.0)
        await (await js.key_value(LEASE_BUCKET)).put("epoch", encode({"epoch": clock.epoch}))
        config = CoordinatorConfig(server.url, server.token, clock, autoscale=False)
        coordinator = Coordinator("c1", scenario, config, fleet, zones, categories)
        runner = asyncio.create_task(coordinator.run())
        while len(coordinator.agents) < 8:
            await asyncio.sleep(0.05)
        docs = [
            {**task(n, pools[n % 4][0]), "category": pools[n % 4][1], "arrival_s": clock.now()}
            for n in range(tasks)
        ]
        for zone in zones:
            mine = [d for d in docs if d["zone"] == zone]
            for at in range(0, len(mine), 50):
                batch, msg_id = submission_batch(mine[at : at + 50])
                await js.publish(
                    submit_subject(zone), encode(batch), headers={"Nats-Msg-Id": msg_id}
                )
        deadline = time.monotonic() + 60.0
        while coordinator.counters.completed < tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert coordinator.counters.completed == tasks
        assert coordinator.counters.duplicates == 0
        records = await read_records(js, zones)
        ends = sorted(r["task_id"] for r in records if r["kind"] == "end")
        assert ends == list(range(tasks))  # each once, though gathered into bundles
        stored = [d for s, subject in submit_streams(zones) for d in await read_all(js, s, subject)]
        assert len(stored) == tasks // 50  # one stored message per batch
        assert sorted(int(d["task_id"]) for d in unbundle(stored)) == list(range(tasks))
        assert not [e for e in await read_all(js, EVENTS, "orch.event") if "reject" in e["kind"]]
    finally:
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        await fleet.close()
        await nc.close()


def test_batched_submissions_through_nats_run_every_task_once(nats_server: EmbeddedServer) -> None:
    asyncio.run(asyncio.wait_for(batched_burst(nats_server, 400), 120.0))


__all__ = ["EPOCH"]
