"""``orchestra check`` watches ``tasks.shed`` and ``cost.usd_spot``: a rise in either is worse.

A tiered, half-spot M/M/c (``mmc_validation.yaml`` cut to 20 agents, offered
30 tasks/min, the default tiers over a 40-task queue) is pinned with
``--update``; re-checked with 12 specialists instead of 20, more tasks are
shed (a regression); with all of the fleet on spot, the spot bill rises.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import ROOT

from sim.analysis.regress import DEFAULT_RULES, judge
from sim.cli import main

PIN = [
    "--set", "topology.specialists=20",
    "--set", "workload.arrivals.rate_per_min=30",
    "--set", "duration=40m",
    "--set", "warmup=10m",
    "--set", "tiers={queue_limit: 40}",
    "--set", "purchase.spot={share: 0.5}",
]  # fmt: skip


def test_the_rules_say_a_rise_is_worse() -> None:
    shed = DEFAULT_RULES["tasks.shed"]
    assert judge("s", "tasks.shed", shed, [10, 12, 11], [40, 42, 45]).verdict == "worse"
    assert judge("s", "tasks.shed", shed, [40, 42, 45], [10, 12, 11]).verdict == "better"
    assert judge("s", "tasks.shed", shed, [0, 0, 0], [0, 0, 0]).verdict == "same"
    spot = DEFAULT_RULES["cost.usd_spot"]
    assert judge("s", "cost.usd_spot", spot, [1.0, 1.0], [1.5, 1.5]).verdict == "worse"


def test_more_shedding_and_a_bigger_spot_bill_fail_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    pin = ["check", "scenarios/mmc_validation.yaml", "--baseline", str(baselines), "--update"]
    assert main([*pin, "--name", "tiered", "--replications", "3", *PIN]) == 0
    pinned = json.loads((baselines / "tiered.json").read_text())
    assert min(pinned["figures"]["tasks.shed"]["values"]) > 0
    assert min(pinned["figures"]["cost.usd_spot"]["values"]) > 0
    capsys.readouterr()
    junit = tmp_path / "check.xml"
    check = ["check", "tiered", "--baseline", str(baselines), "--junit", str(junit)]
    code = main([*check, "--set", "topology.specialists=12", "--set", "purchase.spot.share=1"])
    out = capsys.readouterr().out
    assert code == 1
    failures = {
        case.get("name")
        for case in ET.parse(junit).getroot().iter("testcase")
        if case.find("failure") is not None
    }
    assert {"tasks.shed", "cost.usd_spot"} <= failures
    assert any("tasks.shed" in line and "worse" in line for line in out.splitlines())
    assert "regression" in out
