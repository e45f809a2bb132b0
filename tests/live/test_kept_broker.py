"""A live run on a broker kept from an earlier run (``--nats``) starts from a clean slate.

Chaos's announcements (zones dark, zone coordinators and team leads crashed,
zones cut off) live in the lease bucket, which a run does not purge as it
purges its streams. A run cleared only ``zones_down``: on a kept broker an
earlier run's crashed zone coordinator or cut zone was read by the next
run's coordinator from its first look, and the zone routed around for good.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from conftest import exactly_once, run_live, small

from sim.live.announcements import announcement
from sim.live.layout import Layout, ensure_layout
from sim.live.server import EmbeddedServer
from sim.live.subjects import ANNOUNCEMENT_KEYS
from sim.live.transport import LEASE_BUCKET, connect


async def leave_announcements(server: EmbeddedServer) -> None:
    """What an earlier run's chaos left: zone B down, cut off, its coordinator and lead
    crashed."""
    nc = await connect(server.url, server.token, "earlier-run")
    js = nc.jetstream()
    await ensure_layout(js, Layout(("A", "B"), ("CodeGen", "Review"), 30.0, 30.0))
    lease = await js.key_value(LEASE_BUCKET)
    names = {"zones_down": "B", "zones_cut_off": "B", "zone_coordinators_down": "B"}
    for key in ANNOUNCEMENT_KEYS:
        await lease.put(key, announcement({names.get(key, "B-T01-lead"): 1.0}))
    await nc.close()


def test_a_run_on_a_kept_broker_reads_none_of_an_earlier_runs_announcements(
    nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    asyncio.run(leave_announcements(nats_server))
    scenario = small("duration=2m", "topology.specialists=8", "workload.arrivals.rate_per_min=30")
    run = run_live(
        scenario,
        tmp_path,
        time_scale=30.0,
        agents_mode="simulated",
        nats_url=nats_server.url,
        token=nats_server.token,
    )
    exactly_once(run)
    kinds = set(run.result.events["kind"])
    stale = {"zone_cut_off", "zone_down", "coordinator_detected", "team_lead_detected"}
    assert not kinds & stale, kinds & stale
    tasks = run.result.tasks
    assert (tasks.loc[tasks["outcome"] == "completed", "zone"] == "B").sum() > 5
