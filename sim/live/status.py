"""``orchestra live status``: a terminal dashboard attached to a running service.

It reads only the broker, never the service's process: the primary's status
document (``orch_lease`` key ``status``, refreshed every second), the lease
(who is primary), the records key (the last segment written) and the
agents' heartbeats (``orch_agents``). So it works from any host with
credentials, and it shows a failover as it happens: the holder changes, the
status document's age grows, then resets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sim.live.beats import agent_beats
from sim.live.broker import Broker, decode
from sim.live.cancel import close_bounded
from sim.live.nats_broker import NatsBroker
from sim.live.transport import AGENTS_BUCKET, LEASE_BUCKET, connect

#: Seconds after which a status document is called stale (the primary refreshes it every 1 s).
STALE_S = 5.0


async def snapshot(broker: Broker) -> dict[str, Any]:
    """Everything the dashboard shows, read once from the broker.

    The heartbeats are read as the coordinator reads them (``Broker.kv_entries``:
    one pass to the last pending entry). nats-py's ``keys()`` stops at the
    end-of-stored-values marker, which can come before any value while the fleet
    rewrites its beats: the dashboard showed "0 heartbeating" about once in three
    reads of a busy service.
    """
    out: dict[str, Any] = {"status": None, "lease": None, "records": None, "agents": {}}
    for key, slot in (("status", "status"), ("primary", "lease"), ("records", "records")):
        with contextlib.suppress(Exception):
            entry = await broker.kv_get(LEASE_BUCKET, key)
            if entry is not None:
                out[slot] = decode(entry.value or b"{}")
    values: dict[str, bytes] = {}
    with contextlib.suppress(Exception):  # a read that stalled: no agents shown this time
        entries = await broker.kv_entries(AGENTS_BUCKET)
        values = {key: entry.value or b"{}" for key, entry in entries.items()}
    # Own keys and fleets' bundles alike: one beat per agent (sim.live.beats).
    out["agents"] = agent_beats(values)
    return out


def render(view: dict[str, Any], now: float | None = None) -> Group:
    """The dashboard for one snapshot: service, pools, agents."""
    now = time.time() if now is None else now
    status, lease = view["status"] or {}, view["lease"] or {}
    head = Table(title="orchestra service", show_header=False)
    head.add_column("", style="bold")
    head.add_column("")
    holder = str(lease.get("holder", "none"))
    alive = float(lease.get("expires", 0)) > now
    head.add_row("primary", holder if alive else f"{holder} (lease lapsed: failover)")
    age = now - float(status.get("wall", 0)) if status else None
    head.add_row(
        "status age",
        "no status yet" if age is None else f"{age:.1f} s" + (" STALE" if age > STALE_S else ""),
    )
    for key in ("submitted", "completed", "failed", "queue_depth", "in_flight", "agents"):
        head.add_row(key.replace("_", " "), str(status.get(key, "-")))
    p50 = status.get("latency_p50_s")
    head.add_row("latency p50", "-" if p50 is None else f"{float(p50):.2f} s")
    records = view["records"] or {}
    head.add_row("last segment", str(records.get("last", "-")))
    pools = Table(title="pools")
    for column in ("pool", "agents", "busy"):
        pools.add_column(column)
    for name, pool in sorted((status.get("pools") or {}).items()):
        pools.add_row(name, str(pool["agents"]), str(pool["busy"]))
    agents = Table(title=f"agents ({len(view['agents'])} heartbeating)")
    for column in ("agent", "zone", "category", "status", "in flight", "done", "beat age"):
        agents.add_column(column)
    for agent_id, beat in sorted(view["agents"].items()):
        agents.add_row(
            agent_id,
            str(beat.get("zone", "")),
            str(beat.get("category", "")),
            str(beat.get("status", "")),
            str(beat.get("in_flight", "")),
            str(beat.get("completed", "")),
            f"{now - float(beat.get('wall', now)):.1f} s",
        )
    return Group(head, pools, agents, Text(f"read at {time.strftime('%H:%M:%S')}"))


async def watch(url: str, token: str | None, *, once: bool, every_s: float = 1.0) -> int:
    """Draw the dashboard once, or redraw it every *every_s* until interrupted."""
    from rich.console import Console

    nc = await connect(url, token, "orchestra-status")
    broker = NatsBroker(nc)
    try:
        if once:
            Console().print(render(await snapshot(broker)))
            return 0
        with Live(render(await snapshot(broker)), refresh_per_second=4) as live:
            while True:
                await asyncio.sleep(every_s)
                live.update(render(await snapshot(broker)))
    finally:
        await close_bounded(nc)
