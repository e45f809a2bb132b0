"""A serving replica that loses its lease stands by again, and leads again when it can.

In-process, on a real nats-server: the lease is taken from under the primary
(a write of another holder, as a replica whose clock ran ahead would do); its
next renewal fails, it stops leading, and — a service, not a run — it waits
as a standby and takes the lease back once the other holder's lapses.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from conftest import HERE

from sim.live.broker import decode, encode
from sim.live.serve import ServeOptions, Service
from sim.live.transport import LEASE_BUCKET, EmbeddedServer, connect
from sim.scenario.load import load_scenario


def test_a_primary_that_loses_the_lease_stands_by_and_leads_again(
    nats_server: EmbeddedServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    scenario = load_scenario(HERE / "small.yaml", ["health.interval=1s", "health.timeout=0.5s"])
    options = ServeOptions(url=nats_server.url, token=nats_server.token, name="one", lease_s=1.0)
    service = Service(scenario, options)

    async def body() -> list[str]:
        running = asyncio.create_task(service.run())
        nc = await connect(nats_server.url, nats_server.token, "test")
        lease = None
        holders: list[str] = []

        async def holder() -> str:
            entry = await lease.get("primary")  # type: ignore[union-attr]
            return str(decode(entry.value or b"{}")["holder"])

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                lease = await nc.jetstream().key_value(LEASE_BUCKET)
                if await holder() == "one":
                    break
            except Exception:
                pass
            await asyncio.sleep(0.1)
        holders.append(await holder())
        await lease.put("primary", encode({"holder": "other", "expires": time.time() + 2.0}))  # type: ignore[union-attr]
        await asyncio.sleep(0.8)  # a renewal period or two: the CAS fails, it steps down
        holders.append(await holder())
        while time.monotonic() < deadline and await holder() != "one":
            await asyncio.sleep(0.1)
        holders.append(await holder())
        service.stopping.set()
        assert await asyncio.wait_for(running, 30) == 0
        await nc.close()
        return holders

    assert asyncio.run(body()) == ["one", "other", "one"]
    out = capsys.readouterr().out
    assert "one: lost the lease; standing by again" in out and "one: stopped" in out
