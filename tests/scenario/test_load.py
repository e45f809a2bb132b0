"""Loading scenarios: defaults are the spec's, its blocks load verbatim, errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support import SCENARIOS

from sim.cli import main
from sim.scenario.load import (
    ScenarioError,
    load_scenario,
    parse_override,
    scenario_from_dict,
    scenario_yaml,
)
from sim.scenario.schema import SPEC_CATEGORY_SHARES, Scenario
from sim.scenario.units import parse_duration


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_empty_document_is_the_phase_3_design(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, ""))
    assert scenario.specialist_count() == 173
    assert scenario.control_agents() == 3 + 4 + 20
    assert scenario.topology.categories == SPEC_CATEGORY_SHARES
    assert [z.region for z in scenario.topology.zones] == [
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "ap-northeast-1",
    ]
    assert scenario.scaling.auto_scale.scale_up.increment == 10
    assert scenario.scaling.auto_scale.scale_down.cooldown_seconds == 600


def test_the_specs_blocks_load_verbatim_and_equal_the_defaults() -> None:
    baseline = load_scenario(SCENARIOS / "baseline_200.yaml")
    defaults = Scenario()
    assert baseline.scaling == defaults.scaling
    assert baseline.metrics == defaults.metrics
    assert baseline.alerts == defaults.alerts
    rules = {rule.name: rule.parsed for rules in baseline.alerts.values() for rule in rules}
    assert rules["error_rate_spike"].threshold == pytest.approx(0.05)
    assert rules["high_latency"].threshold == 10.0
    assert rules["low_throughput"].op == "<"
    assert rules["scale_event"].op == "changed"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_validates(path: Path) -> None:
    assert main(["validate", str(path)]) == 0


def test_phases_follow_the_roadmap() -> None:
    totals = {}
    for phase in range(1, 6):
        scenario = load_scenario(SCENARIOS / f"phase_3_{phase}.yaml")
        totals[phase] = scenario.control_agents() + scenario.specialist_count()
    assert totals == {1: 50, 2: 100, 3: 150, 4: 200, 5: 250}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90s", 90.0),
        ("15m", 900.0),
        ("6h", 21600.0),
        ("2d", 172800.0),
        ("250ms", 0.25),
        ("4h30m", 16200.0),
        ("2d 6h", 194400.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["-5", -5, "5 parsecs", "h", True, None, float("inf"), "4h30", "h30m"]
)
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_duration(text)


def test_set_overrides_are_typed_like_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\n")
    scenario = load_scenario(
        path,
        [
            "scaling.scale_up.increment=20",
            "topology.zones.1.weight=2.5",
            "duration=6h",
            "policies.load_balancing=affinity",
        ],
    )
    assert scenario.scaling.auto_scale.scale_up.increment == 20
    assert scenario.topology.zones[1].weight == 2.5
    assert scenario.duration == 21600.0
    assert scenario.policies.load_balancing == "affinity"
    with pytest.raises(ScenarioError, match=r"scaling\.auto_scale\.scale_up\.increment: expected"):
        load_scenario(path, ["scaling.scale_up.increment=lots"])


def test_set_values_are_parsed_never_evaluated() -> None:
    assert parse_override("name=__import__('os').system('false')") == (
        ["name"],
        "__import__('os').system('false')",
    )
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    with pytest.raises(ValueError, match="PATH=VALUE"):
        parse_override("no-equals-sign")


def test_extends_merges_deeply_and_detects_cycles(tmp_path: Path) -> None:
    write(tmp_path, "name: base\nseed: 5\nworkload: {arrivals: {rate_per_min: 10}}\n", "base.yaml")
    child = write(
        tmp_path, "extends: base.yaml\nname: child\nworkload: {affinity_keys: 3}\n", "c.yaml"
    )
    scenario = load_scenario(child)
    assert (scenario.name, scenario.seed) == ("child", 5)
    assert scenario.workload.arrivals.rate_per_min == 10
    assert scenario.workload.affinity_keys == 3
    write(tmp_path, "extends: b.yaml\n", "a.yaml")
    write(tmp_path, "extends: a.yaml\n", "b.yaml")
    with pytest.raises(ScenarioError, match="extends: expected no cycle"):
        load_scenario(tmp_path / "a.yaml")


BAD_INPUTS = {
    "unknown_key": ("topology:\n  zonez: []\n", r"topology\.zonez: unknown key; expected one of"),
    "unknown_nested_key": (
        "topology:\n  zones:\n    - {name: A, region: us-east-1, colour: red}\n",
        r"topology\.zones\[0\]\.colour: unknown key",
    ),
    "wrong_type": (
        "scaling:\n  max_agents: many\n",
        r"scaling\.max_agents: expected a valid integer",
    ),
    "negative_rate": (
        "workload:\n  arrivals: {rate_per_min: -3}\n",
        r"workload\.arrivals\.rate_per_min: expected greater than or equal to 0",
    ),
    "category_missing_from_mix": (
        "workload:\n  mix: {CodeGen: 1, Review: 1}\n",
        r"workload\.mix: missing Test, DevOps",
    ),
    "unknown_category_in_mix": (
        "topology: {categories: {A: 1}}\nworkload:\n  mix: {A: 1, B: 2}\n",
        r"workload\.mix\.B: unknown category",
    ),
    "dag_with_cycle": (
        "workload:\n  dags:\n    inline:\n      - name: loop\n        nodes:\n"
        "          - {id: a, category: Test, work_s: 1}\n"
        "          - {id: b, category: Test, work_s: 1}\n"
        "        edges:\n          - {src: a, dst: b}\n          - {src: b, dst: a}\n",
        r"workload\.dags\.inline\[0\]: .*cycle",
    ),
    "bad_alert_condition": (
        "alerts:\n  critical:\n"
        "    - {name: x, condition: 'error_rate > lots', action: page_oncall}\n",
        r"alerts\.critical\[0\]\.condition: expected 'METRIC OP VALUE",
    ),
    "bad_duration": ("duration: soon\n", r"duration: expected a duration"),
    "not_a_mapping": ("- 1\n- 2\n", r"expected a mapping at the top level"),
    "bad_yaml": ("name: [unclosed\n", r"line \d+: expected valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_1(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, pattern = BAD_INPUTS[case]
    path = write(tmp_path, text)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {path}: ")
    assert "Traceback" not in err
    import re

    assert re.search(pattern, err), err


def test_unreadable_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(["validate", str(missing)]) == 1
    assert capsys.readouterr().err.strip() == f"error: {missing}: file not found"
    assert main(["run", str(tmp_path)]) == 1
    assert "expected a file, got a directory" in capsys.readouterr().err
    binary = write(tmp_path, "", "bin.yaml")
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert main(["validate", str(binary)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {binary}: cannot read") and len(err.splitlines()) == 1


def test_missing_trace_file_is_reported_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "workload:\n  arrivals: {process: trace, trace: nowhere.csv}\n")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert "nowhere.csv" in err and "file not found" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_scenario_from_dict_validates() -> None:
    assert scenario_from_dict({"seed": 3}).seed == 3
    with pytest.raises(ScenarioError, match="<dict>: seed: expected"):
        scenario_from_dict({"seed": -1})


def test_docs_are_generated_from_the_schema(root: Path) -> None:
    from sim.scenario.docs import markdown_reference

    committed = (root / "docs" / "scenarios.md").read_text()
    assert committed == markdown_reference(), "docs/scenarios.md is stale: run `make docs`"


def test_schema_command_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = yaml.safe_load(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert {"topology", "workload", "scaling", "alerts", "chaos", "slo", "cost"} <= set(
        schema["properties"]
    )


def test_a_short_duration_shortens_the_warmup_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "warmup: 1h\n")
    scenario = load_scenario(path, ["duration=30m"])
    assert scenario.duration == 1800.0
    assert scenario.warmup == pytest.approx(180.0)  # a tenth of the run
    assert "warmup shortened from 1h to 3m" in caplog.text
    # A warm-up that fits is left alone, and nothing is said.
    caplog.clear()
    assert load_scenario(path, ["duration=2h"]).warmup == 3600.0
    assert "warmup" not in caplog.text


def test_an_explicit_warmup_that_does_not_fit_is_still_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ScenarioError, match="warmup: expected less than duration"):
        load_scenario(path, ["duration=30m", "warmup=1h"])
    # A file that contradicts itself is the author's to fix, not the loader's.
    with pytest.raises(ScenarioError, match="warmup: expected less than duration"):
        load_scenario(write(tmp_path, "duration: 30m\nwarmup: 1h\n", "bad.yaml"))


def test_run_with_a_duration_under_the_warmup_just_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", str(write(tmp_path, "")), "--duration", "10m", "--out", str(tmp_path / "out")]
    )
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["warmup_s"] == 60.0


def test_a_scenario_kept_beside_a_run_loads_from_the_runs_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run keeps its scenario as ``scenario.yaml`` in its own folder, and replay and
    calibrate load it from there: the files it names (here an HPA manifest, named from the
    working directory as users do) must still be found. They were looked for under the
    run's folder, and the replay of a live ``hpa_as_deployed.yaml`` run failed to load."""
    monkeypatch.chdir(SCENARIOS.parent)
    scenario = load_scenario(Path("scenarios") / "hpa_as_deployed.yaml")
    kept = tmp_path / "run" / "scenario.yaml"
    kept.parent.mkdir()
    kept.write_text(scenario_yaml(scenario))
    monkeypatch.chdir(tmp_path)
    again = load_scenario(kept)
    assert again.scaling.hpa == scenario.scaling.hpa
    assert again.scaling.hpa.manifest is not None and again.scaling.hpa.manifest.is_file()
