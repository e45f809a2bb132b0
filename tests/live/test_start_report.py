"""An attempt's start report on a real broker: sent after the grace, or folded into the end."""

from __future__ import annotations

import asyncio

from sim.live.start_report import START_GRACE_S, StartReport
from sim.live.transport import EmbeddedServer, connect, read_all


def test_a_start_goes_out_only_when_the_attempt_outlives_the_grace(
    nats_server: EmbeddedServer,
) -> None:
    async def body() -> tuple[bool, bool, list[str]]:
        nc = await connect(nats_server.url, nats_server.token, "agent")
        js = nc.jetstream()
        await js.add_stream(name="RESULTS", subjects=["results"])
        quick = StartReport(js, "results", {"kind": "start", "task_id": 1}, "s.1.1")
        quick_sent = await quick.settle()  # ended at once: nothing was sent
        slow = StartReport(js, "results", {"kind": "start", "task_id": 2}, "s.2.1")
        await asyncio.sleep(START_GRACE_S * 5)
        slow_sent = await slow.settle()  # ran past the grace: its start is stored now
        killed = StartReport(js, "results", {"kind": "start", "task_id": 3}, "s.3.1")
        killed.abandon()  # a simulated kill -9 during the grace says nothing after it
        await asyncio.sleep(START_GRACE_S * 5)
        stored = [str(d["task_id"]) for d in await read_all(js, "RESULTS", "results")]
        await nc.close()
        return quick_sent, slow_sent, stored

    quick_sent, slow_sent, stored = asyncio.run(body())
    assert (quick_sent, slow_sent) == (False, True)
    assert stored == ["2"]
