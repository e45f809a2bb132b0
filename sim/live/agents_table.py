"""``agents.parquet`` of a live run: one row per agent incarnation, read from the event log.

Why a module of its own: the agents table is built from the events alone
(joins, departures, detections, dark zones), not from the task reports the
rest of ``records`` folds, and its rule — when an agent is present — must
match the simulator's row for row.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from sim.live.roster import JOINING, LEAVING
from sim.metrics.records import coordinator_rows
from sim.scenario.schema import Scenario
from sim.world.spot_books import initial_spot
from sim.world.topology import SpecialistSpec, World, specialist_template


def agents_frame(
    scenario: Scenario, world: World, events: pd.DataFrame, end_s: float
) -> pd.DataFrame:
    """``agents.parquet``: one row per agent incarnation, its presence clipped to the window.

    As in the simulator, an agent is present from its join until it drained
    (``agent_left``), was declared dead (``agent_detected``) or its zone went
    dark (``zone_down``); a crashed agent nobody has detected yet is still on
    the books. An agent back under its id (``agent_restarted``) is a new row.
    *events* is the window's event log.
    """
    current = _starting_fleet(scenario, world, end_s)
    gone: list[dict[str, Any]] = []
    last_row: dict[str, dict[str, Any]] = dict(current)
    for row in events.itertuples(index=False):
        subject, kind, time_s = str(row.subject), str(row.kind), float(str(row.time_s))
        if kind == "agent_joined" and subject not in last_row:
            detail = json.loads(str(row.detail))
            current[subject] = last_row[subject] = _joined_row(
                scenario, world, subject, detail, time_s, end_s
            )
        elif kind in JOINING and subject not in current:
            if subject in last_row:
                current[subject] = {**last_row[subject], "joined_s": time_s, "left_s": end_s}
                current[subject]["failed"] = False
                last_row[subject] = current[subject]
        elif kind in LEAVING and subject in current:
            gone.append(_leave(current.pop(subject), time_s, kind == "agent_detected"))
        elif kind == "zone_down":
            for agent_id in [a for a, r in current.items() if r["zone"] == subject]:
                gone.append(_leave(current.pop(agent_id), time_s, True))
    listed = gone + list(current.values()) + coordinator_rows(world.coordinators, end_s)
    frame = pd.DataFrame(listed)
    frame.insert(0, "replication", np.zeros(len(frame), dtype=np.int64))
    return frame


def _starting_fleet(scenario: Scenario, world: World, end_s: float) -> dict[str, dict[str, Any]]:
    """The rows of the specialists the run started with (spot by the simulator's rule)."""
    spot = scenario.purchase.spot
    on_spot = initial_spot(spot, ((s.agent_id, s.zone, s.category) for s in world.specialists))
    current: dict[str, dict[str, Any]] = {}
    for spec in world.specialists:
        current[spec.agent_id] = _starting_row(world, spec, end_s)
        if spot is not None:
            current[spec.agent_id]["spot"] = spec.agent_id in on_spot
    return current


def _starting_row(world: World, spec: SpecialistSpec, end_s: float) -> dict[str, Any]:
    return {
        "agent": spec.agent_id,
        "role": "specialist",
        "category": spec.category,
        "zone": spec.zone,
        "team": spec.team,
        "region": world.regions[spec.zone],
        "vcpu": spec.vcpu,
        "mem_gb": spec.mem_gb,
        "speed": spec.speed,
        "slots": spec.slots,
        "from_reserve": False,
        "joined_s": 0.0,
        "left_s": end_s,
        "failed": False,
    }


def _joined_row(
    scenario: Scenario,
    world: World,
    subject: str,
    detail: dict[str, Any],
    time_s: float,
    end_s: float,
) -> dict[str, Any]:
    """A started agent's row, from its ``agent_joined`` event (the specialist template)."""
    template = specialist_template(scenario)
    zone = str(detail.get("zone", ""))
    row = {
        "agent": subject,
        "role": "specialist",
        "category": detail.get("category", ""),
        "zone": zone,
        "team": str(detail.get("team", "")),  # what its heartbeats said
        "region": world.regions.get(zone, ""),
        "vcpu": template.vcpu,
        "mem_gb": template.mem_gb,
        "speed": template.speed,
        "slots": template.slots,
        "from_reserve": True,
        "joined_s": time_s,
        "left_s": end_s,
        "failed": False,
    }
    if scenario.purchase.spot is not None:
        row["spot"] = bool(detail.get("spot", False))
    return row


def _leave(row: dict[str, Any], time_s: float, failed: bool) -> dict[str, Any]:
    row["left_s"] = time_s
    row["failed"] = failed
    return row
