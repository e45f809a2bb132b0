"""The comparison report overlays the opt-in models' panels: tokens, spot, sheds per tier.

Two short runs of ``llm_tiers.yaml`` cut to 30 specialists (so the queue
fills and admission sheds), the first with half of each pool on spot and
random reclaims, the second with no spot and the frontier account's input
limit doubled: the what-if a user compares. The comparison page must draw one
tokens panel per provider with each run's line (the moved limit twice, the
unmoved one once), each run's sheds per tier, and the spot run's share with
its reclaim notices; the table gains the LLM, shed and spot rows. A
comparison of ordinary runs gets none of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.report.compare.page import comparison_html, load_run_dir
from sim.report.compare.stats import COMPARED, shown
from sim.report.level_overlay import overlay_level_panels
from sim.report.time_panels import RunFrames, run_end_s
from sim.runner import run, write_outputs
from sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
BASE = ["duration=30m", "warmup=5m", "topology.specialists=30", "tiers.queue_limit=20"]
RUNS = {
    "spot": [*BASE, "purchase.spot={share: 0.5, reclaim_rate: 2}"],
    "raised": [*BASE, "llm.providers.frontier.input_tokens_per_min=11e6"],
}


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("overlay")
    dirs = {}
    for name, overrides in RUNS.items():
        scenario = load_scenario(ROOT / "scenarios" / "llm_tiers.yaml", overrides)
        write_outputs(run(scenario), root / name, report=False)
        dirs[name] = root / name
    return dirs


def _frames(dirs: dict[str, Path]) -> list[RunFrames]:
    runs = [load_run_dir(path, name) for name, path in dirs.items()]
    return [RunFrames(r.name, r.metrics, r.events) for r in runs]


def _panels(dirs: dict[str, Path]) -> dict[str, Any]:
    frames = _frames(dirs)
    end_s = max(run_end_s(f) for f in frames)
    return {p.panel_id: p for p in overlay_level_panels(frames, end_s)}


def test_one_tokens_panel_per_provider_with_each_runs_line_and_each_limit(
    run_dirs: dict[str, Path],
) -> None:
    panels = _panels(run_dirs)
    assert list(panels) == [
        "panel-tokens-frontier",
        "panel-tokens-small",
        "panel-spot",
        "panel-shed",
    ]
    frontier = [s.name for s in panels["panel-tokens-frontier"].series]
    small = [s.name for s in panels["panel-tokens-small"].series]
    for name in RUNS:
        assert f"{name}: input" in frontier and f"{name}: output" in frontier
    # The raised limit moved: both runs' input limits are drawn; the unmoved ones once.
    assert {"spot: input limit", "raised: input limit"} <= set(frontier)
    assert "raised: output limit" not in frontier
    assert [n for n in small if n.endswith("limit")] == ["spot: input limit", "spot: output limit"]
    limit = next(
        s for s in panels["panel-tokens-frontier"].series if s.name == "raised: input limit"
    )
    assert set(limit.y) == {11e6}
    # The served line is the metrics' own column, replication 0.
    metrics = pd.read_parquet(run_dirs["raised"] / "metrics.parquet")
    rows = metrics.loc[(metrics["level"] == "provider") & (metrics["id"] == "frontier")]
    served = next(s for s in panels["panel-tokens-frontier"].series if s.name == "raised: input")
    assert served.y == rows.sort_values("time_s")["input_tokens_per_min"].tolist()


def test_sheds_per_tier_per_run_and_spot_with_its_reclaims(run_dirs: dict[str, Path]) -> None:
    panels = _panels(run_dirs)
    for name, path in run_dirs.items():
        metrics = pd.read_parquet(path / "metrics.parquet")
        tiers = metrics.loc[metrics["level"] == "tier"].groupby("id", sort=False)["tasks_shed"]
        drawn = {
            s.name.removeprefix(f"{name}: "): sum(s.y)
            for s in panels["panel-shed"].series
            if s.group == name
        }
        assert drawn == tiers.sum().to_dict(), name
        assert list(drawn) == ["critical", "standard", "batch"]
    assert sum(sum(s.y) for s in panels["panel-shed"].series) > 0
    # Only the spot run has a share; its marks count every notice in its events.
    spot = panels["panel-spot"]
    assert [s.name for s in spot.series] == ["spot"]
    share = np.asarray(spot.series[0].y, dtype=float)
    assert ((share > 0) & (share < 1)).all()
    events = pd.read_parquet(run_dirs["spot"] / "events.parquet")
    notices = int((events["kind"] == "spot_notice").sum())
    assert notices > 0
    counted = sum(int(re.match(r"spot: (\d+) spot notice", t).group(1)) for t in spot.marks[0].text)  # type: ignore[union-attr]
    assert counted == notices


def test_the_page_and_its_table_carry_them(run_dirs: dict[str, Path]) -> None:
    runs = [load_run_dir(path, name) for name, path in run_dirs.items()]
    html = comparison_html("overlay", "note", runs)
    for panel_id in ("panel-tokens-frontier", "panel-tokens-small", "panel-spot", "panel-shed"):
        assert html.count(f'<section class="panel" id="compare-{panel_id}">') == 1, panel_id
    table = html[html.index('id="compare-table"') :]
    for label in ("tasks shed", "LLM requests", "token cost per day (USD)"):
        assert f"<td>{label}</td>" in table, label
    spot = json.loads((run_dirs["spot"] / "summary.json").read_text())
    assert spot["cost"]["reclaims"] > 0 and "<td>spot reclaims</td>" in table
    # An opt-in row is there exactly when some run has the figure non-zero.
    summaries = [r.summary for r in runs]
    for figure in (f for f in COMPARED if f.optional):
        assert (f"<td>{figure.label}</td>" in table) == shown(figure, summaries), figure.label


def test_ordinary_runs_get_no_opt_in_panel_and_no_opt_in_row() -> None:
    metrics = pd.DataFrame(
        {"replication": [0], "time_s": [60.0], "level": ["global"], "queue_depth": [1.0]}
    )
    frames = [RunFrames(name, metrics, pd.DataFrame()) for name in ("a", "b")]
    assert overlay_level_panels(frames, 60.0) == []
    summary = {"tasks": {"shed": 0}, "cost": {"usd_spot": 0.0, "reclaims": 0}}
    optional = [f for f in COMPARED if f.optional]
    assert optional and not any(shown(f, [summary, summary]) for f in optional)
    assert all(shown(f, [summary]) for f in COMPARED if not f.optional)
