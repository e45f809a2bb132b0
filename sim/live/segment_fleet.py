"""A record window's fleet and work, as they were, for the simulator to replay.

Scenario: a service's agents join on their own (``orchestra live agent``), are
killed, leave, and come back; its records are cut into windows
(``sim.live.segments``). A window's replay must run on the agents the window
really had, where they really were — not the scenario's nominal fleet, and not
the nominal fleet's count re-dealt over zones and categories by shares: one
agent re-dealt by shares of CodeGen 1 : Review 1 is one CodeGen agent, and a
window that really had a Review agent would replay with none, which the
simulator refuses to run (a mix that sends work nowhere).

So the window's fleet is every agent present at its start (the *roster* the
last window left), placed exactly (a zone's ``categories`` table), and the
window's mix is the work that arrived in it. An agent that joined in the
window on its own joins the replay at the same second (chaos ``join``,
:func:`self_joins`): in the replay from second 0, a window's early arrivals
had found agents that were not there yet. An agent that joined because the
coordinator asked for it (an ``agent_requested`` in the window: a scale-up,
a replacement) is the replay's own policies' to ask for again.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sim.scenario.chaos import AgentJoin
from sim.scenario.schema import ChaosEvent, Scenario

#: Agent id -> (zone, category): the fleet present at a window's edge.
Roster = dict[str, tuple[str, str]]

JOINS = ("agent_joined", "agent_restarted", "agent_rejoined")  # (rejoined: an older log's)


def _joined(doc: dict[str, Any]) -> tuple[str, str] | None:
    """The (zone, category) a join event names, or None for another event or a bare one."""
    if str(doc["kind"]) not in JOINS:
        return None
    detail = json.loads(str(doc.get("detail") or "{}"))
    zone, category = detail.get("zone"), detail.get("category")
    return (str(zone), str(category)) if zone and category else None


def roster_after(roster: Roster, events: Iterable[dict[str, Any]]) -> Roster:
    """The fleet after *events* (joins, rejoins, departures, dead zones), from *roster*."""
    out = dict(roster)
    for doc in sorted(events, key=lambda d: float(d["time_s"])):
        kind, subject = str(doc["kind"]), str(doc["subject"])
        placed = _joined(doc)
        if placed is not None:
            out[subject] = placed
        elif kind in ("agent_left", "agent_detected"):
            out.pop(subject, None)
        elif kind == "zone_down":
            out = {a: zc for a, zc in out.items() if zc[0] != subject}
    return out


def carried(roster: Roster) -> list[dict[str, Any]]:
    """The agents present at a window's start, as joins at its second 0."""
    return [
        {
            "time_s": 0.0,
            "kind": "agent_joined",
            "subject": agent_id,
            "detail": json.dumps({"category": c, "carried": True, "zone": z}, sort_keys=True),
        }
        for agent_id, (z, c) in sorted(roster.items())
    ]


def self_joins(roster: Roster, events: Iterable[dict[str, Any]]) -> list[ChaosEvent]:
    """The agents that joined in the window on their own, as chaos ``join`` entries at the
    second each joined (where it first was); not those present at its start, nor those the
    coordinator asked for in it."""
    ordered = sorted(events, key=lambda d: float(d["time_s"]))
    asked = {str(d["subject"]) for d in ordered if str(d["kind"]) == "agent_requested"}
    seen = set(roster) | asked
    joins: list[ChaosEvent] = []
    for doc in ordered:
        placed, agent = _joined(doc), str(doc["subject"])
        if placed is None or agent in seen:
            continue
        seen.add(agent)
        zone, category = placed
        at = float(doc["time_s"])
        joins.append(ChaosEvent(at=at, join=AgentJoin(zone=zone, category=category, agent=agent)))
    return joins


def join_records(joins: Iterable[ChaosEvent]) -> list[dict[str, Any]]:
    """*joins* as the events table's ``chaos`` records, which a replay plays again."""
    return [
        {
            "time_s": join.at,
            "kind": "chaos",
            "subject": "join",
            "detail": json.dumps({"event": join.model_dump(mode="json", exclude_none=True)}),
        }
        for join in joins
    ]


def work_mix(submits: Iterable[dict[str, Any]], categories: Iterable[str]) -> dict[str, float]:
    """Tasks per category in the window's submissions (a job's nodes each count); {} if none."""
    names = list(categories)
    counts: Counter[str] = Counter()
    for doc in submits:
        if doc["kind"] == "task":
            counts[str(doc["category"])] += 1
        else:
            counts.update(str(node["category"]) for node in doc["nodes"])
    if not any(counts[c] for c in names):
        return {}
    return {c: float(counts[c]) for c in names}


def with_window_fleet(
    scenario: Scenario, fleet: Roster, joins: list[ChaosEvent] | None = None
) -> Scenario:
    """*scenario* whose specialists are *fleet*, zone by zone and category by category, and
    whose timeline is *joins* (the agents that joined in the window on their own).

    Agents of a zone or a category the scenario does not know are not in it
    (the coordinator refused their join). An empty fleet with no join leaves the
    scenario's own (a window before any agent reported).
    """
    topology = scenario.topology
    zone_names = {zone.name for zone in topology.zones}
    known = Counter(
        (z, c) for z, c in fleet.values() if z in zone_names and c in topology.categories
    )
    joins = [
        j
        for j in joins or []
        if j.join is not None
        and j.join.zone in zone_names
        and j.join.category in topology.categories
    ]
    if not known and not joins:
        return scenario
    zones = []
    for zone in topology.zones:
        table = {c: known[zone.name, c] for c in topology.categories if known[zone.name, c]}
        total = sum(table.values())
        zones.append(zone.model_copy(update={"specialists": total, "categories": table}))
    update: dict[str, Any] = {"specialists": sum(known.values()), "zones": zones}
    shares = Counter(c for _, c in known.elements())
    shares.update(j.join.category for j in joins if j.join is not None)
    if set(shares) == set(topology.categories):  # shares must stay positive
        update["categories"] = {c: float(shares[c]) for c in topology.categories}
    topology = topology.model_copy(update=update)
    return scenario.model_copy(update={"topology": topology, "chaos": joins})
