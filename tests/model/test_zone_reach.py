"""Zones out of the chief's reach for overlapping reasons: outages, cuts, dead coordinators.

Each story overlaps two of them on zone B of the shortened baseline. Before
they were one set of reasons (``sim.model.zone_reach``) every story here
went wrong: an outage during a coordinator's crash took no agent down and
the standby's promotion opened the dark zone to work; an outage inside a
partition took no agent down; a coordinator back before its checks noticed
was declared dead anyway and its zone routed around for the rest of the run.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import short_baseline

from sim.model.engine import run_scenario

B_AGENTS = 43
CUT_B = "partition: {groups: [[chief-1, chief-2, chief-3, A, C, D], [B]]}"


def _run(chaos: str, *overrides: str, hours: float = 1.0) -> Any:
    return run_scenario(short_baseline(f"chaos={chaos}", *overrides, hours=hours))


def _times(events: pd.DataFrame, kind: str, subject: str | None = None) -> list[float]:
    rows = events[events["kind"] == kind]
    if subject is not None:
        rows = rows[rows["subject"] == subject]
    return sorted(float(t) for t in rows["time_s"])


def _started_in_b(result: Any, since: float, until: float) -> int:
    tasks = result.tasks
    inside = (tasks["zone"] == "B") & (tasks["start_s"] >= since) & (tasks["start_s"] < until)
    return int(inside.sum())


def _conserved(result: Any) -> None:
    counts = result.counts
    assert counts["lost"] == 0
    assert counts["submitted"] == (
        counts["completed"] + counts["failed"] + counts["shed"] + counts["in_flight"]
    )


def _b_failures(events: pd.DataFrame) -> int:
    failed = events[events["kind"] == "agent_failed"]
    return int(failed["subject"].str.startswith("B-").sum())


def test_an_outage_during_a_coordinators_crash_takes_the_region_and_its_standby() -> None:
    result = _run(
        "[{at: 20m, coordinator_crash: B-coord}, {at: 1210, zone_outage: B, duration: 10m}]"
    )
    events = result.events
    assert _times(events, "zone_outage") == [1210.0]
    assert _b_failures(events) == B_AGENTS  # the region's agents are gone
    assert _times(events, "standby_promoted") == []  # no promotion in a dark region
    [redistributed] = _times(events, "zone_redistributed")
    assert redistributed < 1240  # judged by the checks failing since the crash, at 1200 s
    assert _started_in_b(result, 1230, 1810) == 0
    assert _times(events, "zone_restored") == [1810.0]
    assert _started_in_b(result, 1810, 3600) > 100  # a fresh coordinator, agents restarted
    _conserved(result)


def test_an_outage_inside_a_partition_takes_the_agents_and_gives_them_back_cut_off() -> None:
    result = _run(
        f"[{{at: 20m, {CUT_B}, duration: 10m}}, {{at: 1210, zone_outage: B, duration: 2m}}]"
    )
    events = result.events
    assert _b_failures(events) == B_AGENTS
    [restored] = _times(events, "zone_restored")
    restarted = _times(events, "agent_restarted")
    # The hosts come back while the cut holds; the zone answers the chief only at the heal.
    assert len(restarted) == B_AGENTS and restored < min(restarted) < 1800
    assert _times(events, "zone_reconnected") == [1800.0]
    assert _started_in_b(result, 1800, 3600) > 100
    _conserved(result)


def test_a_standby_promoted_during_a_cut_opens_the_zone_only_at_the_heal() -> None:
    result = _run(
        f"[{{at: 20m, coordinator_crash: B-coord}}, {{at: 1210, {CUT_B}, duration: 10m}}]"
    )
    events = result.events
    [promoted] = _times(events, "standby_promoted")
    assert promoted < 1300
    assert _times(events, "zone_reconnected") == [1810.0]
    tasks = result.tasks
    sent_to_b = tasks[(tasks["zone"] == "B") & (tasks["dispatch_s"].between(promoted, 1809))]
    assert len(sent_to_b) == 0  # (its own queue was sent elsewhere when the zone was declared)
    assert _started_in_b(result, 1810, 3600) > 100
    _conserved(result)


def test_a_coordinator_back_before_its_checks_noticed_is_not_declared_dead() -> None:
    result = _run(
        "[{at: 20m, coordinator_crash: B-coord, restart_after: 10s}]",
        "topology.zones.1.standby=false",
    )
    events = result.events
    assert _times(events, "coordinator_restart") == [1210.0]
    assert _times(events, "coordinator_detected") == []
    assert _times(events, "zone_redistributed") == []
    assert _started_in_b(result, 1300, 3600) > 300  # never routed around
    _conserved(result)


WINDOW = st.tuples(
    st.sampled_from(["zone_outage", "partition", "coordinator_crash", "kill", "team_lead_crash"]),
    st.integers(min_value=0, max_value=24),  # start, in 25 s steps from 10 min
    st.integers(min_value=1, max_value=12),  # length, in 25 s steps
)


@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(WINDOW, min_size=2, max_size=4), st.booleans())
def test_any_overlap_of_outages_cuts_and_crashes_keeps_every_task_and_gives_the_zone_back(
    windows: list[tuple[str, int, int]], standby: bool
) -> None:
    """Whatever overlaps — with agents killed and a team lead lost besides — no task is
    lost, no agent serves in a dark region, and once the last reason has ended (a dead
    coordinator restarts its window's length later) the zone serves again."""
    chaos = []
    for kind, start, length in windows:
        at, duration = 600 + 25 * start, 25 * length
        if kind == "zone_outage":
            chaos.append(f"{{at: {at}, zone_outage: B, duration: {duration}}}")
        elif kind == "partition":
            chaos.append(f"{{at: {at}, {CUT_B}, duration: {duration}}}")
        elif kind == "coordinator_crash":
            chaos.append(f"{{at: {at}, coordinator_crash: B-coord, restart_after: {duration}}}")
        elif kind == "kill":  # hosts back while the zone may be dark, cut off or headless
            kill = "kill: {zone: B, count: 5}"
            chaos.append(f"{{at: {at}, {kill}, restart_after: {duration}}}")
        else:
            chaos.append(f"{{at: {at}, team_lead_crash: B-T01-lead}}")
    result = _run(
        f"[{', '.join(chaos)}]", f"topology.zones.1.standby={str(standby).lower()}", hours=0.75
    )
    _conserved(result)
    for kind, start, length in windows:
        if kind == "zone_outage":
            at = 600 + 25 * start
            assert _started_in_b(result, at + 1, at + 25 * length) == 0
    last = max(600 + 25 * (start + length) for _, start, length in windows)
    # The restarted agents serve a start-up (60 s) after the end, the promotion 15 s after.
    assert _started_in_b(result, last + 90, 2700) > 50
