"""``orchestra check`` watches ``tasks.shed`` (a rise is worse), and not spot's share of the bill.

A tiered, half-spot M/M/c (``mmc_validation.yaml`` cut to 20 agents, offered
30 tasks/min, the default tiers over a 40-task queue) is pinned with
``--update``; re-checked with 12 specialists instead of 20, more tasks are
shed (a regression). Moving the whole fleet onto spot raises the spot bill
and lowers the total: not a regression (the total cost is the figure).
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
    assert "cost.usd_spot" not in DEFAULT_RULES  # more on spot is cheaper, not worse


def test_more_shedding_fails_the_check_and_more_spot_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    pin = ["check", "scenarios/mmc_validation.yaml", "--baseline", str(baselines), "--update"]
    assert main([*pin, "--name", "tiered", "--replications", "3", *PIN]) == 0
    pinned = json.loads((baselines / "tiered.json").read_text())
    assert min(pinned["figures"]["tasks.shed"]["values"]) > 0
    assert "cost.usd_spot" not in pinned["figures"]
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
    assert "tasks.shed" in failures and "cost.usd_spot" not in failures
    assert any("tasks.shed" in line and "worse" in line for line in out.splitlines())
    assert "regression" in out
    # All on spot at the pinned size: the bill falls, nothing is worse.
    again = main([*check, "--set", "purchase.spot.share=1"])
    assert again == 0, capsys.readouterr().out
