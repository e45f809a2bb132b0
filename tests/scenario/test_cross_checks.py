"""Scenario's cross-checks: a name one section uses and another defines must exist.

One case per check, each a one-line error naming the field path. The checks
run in the order the sections are read, so when two are wrong the first
section's error is the one reported.
"""

from __future__ import annotations

from typing import Any

import pytest

from sim.scenario.load import ScenarioError, scenario_from_dict

ONE_EVENT = {"at": 1, "duration": 5}

CASES: list[tuple[dict[str, Any], str]] = [
    ({"workload": {"zone_mix": {"A": 1, "Q": 1}}}, "workload.zone_mix.Q: unknown category or zone"),
    (
        {"workload": {"dags": {"jobs": [{"file": "a.json", "zone": "Q"}]}}},
        "workload.dags.jobs[0].zone: unknown zone 'Q'",
    ),
    ({"errors": {"timeout_by_category": {"Nope": 10}}}, "errors.timeout_by_category.Nope"),
    ({"chaos": [{"at": 1, "kill": {"zone": "Q"}}]}, "chaos[0].kill.zone: unknown zone 'Q'"),
    (
        {"chaos": [{"at": 1, "coordinator_crash": "chief-9"}]},
        "chaos[0].coordinator_crash: expected one of leader, follower, chief-1",
    ),
    (
        {"chaos": [{**ONE_EVENT, "partition": {"groups": [["chief-1", "Q"]]}}]},
        "chaos[0].partition.groups: unknown chief or zone 'Q'",
    ),
    (
        {"chaos": [{"at": 1, "team_lead_crash": "A-T99-lead"}]},
        "chaos[0].team_lead_crash: unknown team lead 'A-T99-lead' (e.g. A-T01-lead)",
    ),
    (
        {"chaos": [{**ONE_EVENT, "wal_stall": {"chief": "chief-8", "fsync": 1}}]},
        "chaos[0].wal_stall.chief: expected one of leader, follower, chief-1, chief-2, chief-3",
    ),
    (
        {"chaos": [{**ONE_EVENT, "latency_spike": {"factor": 2, "zones": ["Q"]}}]},
        "chaos[0].latency_spike.zones: unknown zone 'Q'",
    ),
    (
        {"topology": {"zones": [{"name": "A", "region": "mars-1"}]}},
        "network.rtt_ms: expected an RTT between mars-1 and us-east-1",
    ),
    # Two errors: the workload section is read before the chaos timeline, the
    # timeline in order.
    (
        {
            "workload": {"service_by_category": {"Nope": {"mean": 3}}},
            "chaos": [{**ONE_EVENT, "zone_outage": "Q"}],
        },
        "workload.service_by_category.Nope",
    ),
    (
        {"chaos": [{"at": 1, "kill": {"zone": "A"}}, {**ONE_EVENT, "zone_outage": "Q"}]},
        "chaos[1].zone_outage: unknown zone 'Q'",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), CASES)
def test_an_unknown_name_is_one_line_at_its_path(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict(doc)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"<dict>: {expected}")
