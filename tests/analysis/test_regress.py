"""``orchestra check``: the rules, the pinned baselines, a policy made worse, ``--update``.

``test_pinned_baselines_pass`` is the project's own CI regression: it runs
``orchestra check`` on the reduced set pinned in ``baselines/`` (three
scenarios, 1-1.5 simulated hours, 3 replications each). When the model
changes on purpose, regenerate them with ``make check-update``.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import ROOT

from sim.analysis.regress import DEFAULT_RULES, Rule, judge, read_baseline
from sim.cli import main

BASELINES = ROOT / "baselines"
#: Scale up only once an hour instead of every 5 minutes: the burst then swamps the queue.
SLOWER_SCALE_UP = "scaling.auto_scale.scale_up.cooldown_seconds=3600"


# --------------------------------------------------------------------------- the rules


def test_tolerance_rule_is_direction_aware() -> None:
    lower = Rule("tolerance", "lower", abs=1.0)
    assert judge("s", "f", lower, [10, 10], [10.5, 10.5]).verdict == "same"
    assert judge("s", "f", lower, [10, 10], [12, 12]).verdict == "worse"
    assert judge("s", "f", lower, [10, 10], [8, 8]).verdict == "better"
    higher = Rule("tolerance", "higher", rel=0.1)
    assert judge("s", "f", higher, [100, 100], [80, 80]).verdict == "worse"
    assert judge("s", "f", higher, [100, 100], [95, 95]).verdict == "same"


def test_welch_rule_needs_the_change_to_stand_out_of_the_noise() -> None:
    rule = Rule("welch", "lower", alpha=0.01)
    base = [100.0, 120.0, 80.0]
    # The mean moved by 10 but the replications spread by 20: not significant.
    noisy = judge("s", "f", rule, base, [110.0, 130.0, 90.0])
    assert noisy.verdict == "same" and noisy.p_value is not None and noisy.p_value > 0.01
    # Far outside the spread: worse, with a small p-value; the mirror image is better.
    worse = judge("s", "f", rule, base, [300.0, 320.0, 310.0])
    assert worse.verdict == "worse" and worse.p_value is not None and worse.p_value < 0.01
    assert judge("s", "f", rule, [300.0, 320.0, 310.0], base).verdict == "better"


def test_welch_floor_and_degenerate_cases() -> None:
    floored = Rule("welch", "lower", rel=0.05)
    # Significant (tiny spread) but within 5 %: not a regression.
    assert judge("s", "f", floored, [100.0, 100.1, 99.9], [102.0, 102.1, 101.9]).verdict == "same"
    exact = Rule("welch", "higher")
    assert judge("s", "f", exact, [5.0, 5.0], [4.0, 4.0]).verdict == "worse"  # no spread at all
    assert judge("s", "f", exact, [5.0, 5.0], [float("nan")] * 2).verdict == "missing"
    assert judge("s", "f", exact, [float("nan")] * 2, [float("nan")] * 2).verdict == "same"


def test_pinned_baselines_use_the_default_rules() -> None:
    files = sorted(BASELINES.glob("*.json"))
    assert len(files) >= 2
    for file in files:
        baseline = read_baseline(file)
        assert baseline.replications == 3
        assert set(baseline.figures) == set(DEFAULT_RULES)
        assert all(len(e["values"]) == 3 for e in baseline.figures.values())


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize("name", sorted(f.stem for f in BASELINES.glob("*.json")))
def test_pinned_baselines_pass(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CI regression itself, a pinned scenario at a time (so they spread over the test
    workers: all three in one test held one worker for 53-87 s): re-run, nothing worse."""
    monkeypatch.chdir(tmp_path)  # paths in baselines resolve from the project root, not cwd
    junit = tmp_path / "check.xml"
    code = main(["check", name, "--baseline", str(BASELINES), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 0, f"{out}\nIf the model changed on purpose: make check-update, review, commit."
    assert "nothing got worse" in out
    suites = ET.parse(junit).getroot()
    cases = suites.findall(".//testcase")
    assert {c.get("classname") for c in cases} == {f"check.{name}"}
    assert len(cases) == len(DEFAULT_RULES)
    assert not suites.findall(".//failure")


def test_a_worse_scaling_policy_fails_naming_scenario_and_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the copied baseline's scenario path is relative to the project
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    shutil.copy(BASELINES / "burst_short.json", baselines)
    junit = tmp_path / "check.xml"
    code = main(
        ["check", "--baseline", str(baselines), "--junit", str(junit), "--set", SLOWER_SCALE_UP]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "burst_short" in out and "wait_s.p99" in out and "regression" in out
    failures = {
        case.get("name"): case.find("failure")
        for case in ET.parse(junit).getroot().iter("testcase")
        if case.find("failure") is not None
    }
    assert "wait_s.p99" in failures and "tasks.completed" in failures
    message = failures["wait_s.p99"].get("message", "")  # type: ignore[union-attr]
    assert message.startswith("burst_short: wait_s.p99 worse")
    # The file on disk is untouched by a failing check.
    assert (baselines / "burst_short.json").read_bytes() == (
        BASELINES / "burst_short.json"
    ).read_bytes()


def test_update_round_trips_and_pins_new_scenarios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    shutil.copy(BASELINES / "baseline_1h.json", baselines)
    # The same code re-pins the same numbers, byte for byte (determinism).
    assert main(["check", "baseline_1h", "--baseline", str(baselines), "--update"]) == 0
    assert (baselines / "baseline_1h.json").read_bytes() == (
        BASELINES / "baseline_1h.json"
    ).read_bytes()
    # Pin a new scenario, then check against it: passes, and bit-identical runs are reported.
    new = [
        "check",
        "scenarios/baseline_200.yaml",
        "--baseline",
        str(baselines),
        "--update",
        "--name",
        "tiny",
        "--set",
        "duration=20m",
        "--set",
        "warmup=5m",
        "--replications",
        "2",
    ]
    assert main(new) == 0
    pinned = json.loads((baselines / "tiny.json").read_text())
    assert pinned["overrides"] == ["duration=20m", "warmup=5m"] and pinned["replications"] == 2
    capsys.readouterr()
    assert main(["check", "tiny", "--baseline", str(baselines)]) == 0
    assert "bit-identical runs: tiny" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "/no/such/dir"], "--baseline: /no/such/dir: expected a directory"),
        (["nope"], "nope: expected a baseline name, a baseline .json or a scenario .yaml"),
        (["scenarios/burst.yaml"], "scenarios/burst.yaml: no baseline in"),
        (["--replications", "5"], "--replications/--seed: only with --update"),
    ],
)
def test_check_bad_input_is_one_line(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(ROOT)
    empty = tmp_path / "empty"
    empty.mkdir()
    base = [] if "--baseline" in args else ["--baseline", str(empty)]
    assert main(["check", *base, *args]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"figures": 3, "seed": None}, "bad.json: seed: expected an integer, got None"),
        ({"overrides": "duration=1h"}, "bad.json: overrides: expected a list"),
        ({"colour": "red"}, "bad.json: expected the fields of a baseline"),
        (
            {"figures": {"wait_s.p99": {"values": []}}},
            "figures.wait_s.p99: expected {rule, values}",
        ),
    ],
)
def test_a_broken_baseline_file_is_one_line(
    edit: dict[str, object], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = json.loads((BASELINES / "baseline_1h.json").read_text())
    (tmp_path / "bad.json").write_text(json.dumps({**raw, **edit}))
    assert main(["check", "--baseline", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_figure_gone_from_the_summary_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renamed or dropped summary figure must not pass silently."""
    monkeypatch.chdir(ROOT)  # the copied baseline's scenario path is relative to the project
    raw = json.loads((BASELINES / "baseline_1h.json").read_text())
    raw["figures"]["wait_s.p999"] = {"rule": raw["figures"]["wait_s.p99"]["rule"], "values": [1.0]}
    (tmp_path / "baseline_1h.json").write_text(json.dumps(raw))
    junit = tmp_path / "check.xml"
    code = main(["check", "--baseline", str(tmp_path), "--junit", str(junit)])
    assert code == 1
    assert "wait_s.p999" in capsys.readouterr().out
    cases = ET.parse(junit).getroot().iter("testcase")
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["wait_s.p999"]
