"""A pinned failure matrix in ``orchestra check``: unchanged passes, a slower detector fails.

Small N (2 trials of two modes): the pin is written by ``orchestra failover
--pin`` into a temporary baselines directory, as a user pins one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import SCENARIOS

from sim.analysis.failover_check import judge, read_pin
from sim.cli import main
from sim.scenario.load import ScenarioError

BASELINE = SCENARIOS / "baseline_200.yaml"
MODES = "agent_crash,team_lead_loss,chief_leader_crash"


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    baselines = tmp_path_factory.mktemp("baselines")
    pin = baselines / "failover" / "small.json"
    code = main(
        [
            "failover",
            str(BASELINE),
            "--trials",
            "2",
            "--modes",
            MODES,
            "--workers",
            "2",
            "--out",
            str(baselines.parent / "out"),
            "--no-report",
            "--pin",
            str(pin),
            "--quiet",
        ]
    )
    assert code == 0 and pin.exists()
    return baselines


def test_an_unchanged_model_passes_its_pinned_matrix(
    pinned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", "--baseline", str(pinned), "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "failover pin small:" in out and "0 worse" in out


def test_a_slower_detector_fails_the_check_on_the_health_checked_modes(
    pinned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checks every 20 s instead of 10 s: agent and team lead verdicts take about twice as long.

    The chiefs' detection is Raft's election timer, which the health checks do
    not touch: that mode must stay within its pin.
    """
    code = main(
        ["check", "--baseline", str(pinned), "--workers", "2", "--set", "health.interval=20"]
    )
    out = capsys.readouterr().out
    assert code == 1
    worse = {line.split(":")[1].strip() for line in out.splitlines() if line.endswith("WORSE")}
    assert "agent_crash.detection_max_s" in worse
    assert "team_lead_loss.detection_max_s" in worse
    assert not any(item.startswith("chief_leader_crash") for item in worse)


def test_judge_flags_growth_past_the_slack_a_lost_detection_and_a_lost_task() -> None:
    pin = {
        "name": "p",
        "rule": {"abs_s": 0.05, "rel": 0.10},
        "worst": {"m": {"detection_max_s": 1.0, "unavailable_max_s": 2.0, "lost_total": 0}},
    }

    def verdicts(detect: float, unavailable: float, lost: int) -> dict[str, bool]:
        entry = {"detection_max_s": detect, "unavailable_max_s": unavailable, "lost_total": lost}
        return {v.figure: v.worse for v in judge(pin, {"modes": {"m": entry}})}

    assert verdicts(1.09, 2.19, 0) == {
        "detection_max_s": False,
        "unavailable_max_s": False,
        "lost_total": False,
    }
    assert verdicts(1.11, 2.0, 0)["detection_max_s"]
    assert verdicts(float("nan"), 2.0, 0)["detection_max_s"]  # nothing detects it any more
    assert verdicts(1.0, 2.0, 1)["lost_total"]


def test_a_pin_of_the_wrong_kind_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "failover" / "bad.json"
    path.parent.mkdir()
    document = {
        "kind": "summary",
        "name": "bad",
        "scenario": "x.yaml",
        "overrides": [],
        "trials": 2,
        "modes": [],
        "rule": {},
        "worst": {},
    }
    path.write_text(json.dumps(document))
    with pytest.raises(ScenarioError, match="kind: expected 'failover_matrix'"):
        read_pin(path)
