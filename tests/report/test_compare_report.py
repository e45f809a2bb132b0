"""Comparison and sweep reports written by the CLI, and the statistics behind them.

``orchestra sweep`` on a 2 x 3 grid writes ``report.html`` with a heat-map
whose cells are the mean of each point's replications; ``orchestra compare A
B --report`` writes a comparison page; bad run directories end in one line.
The Welch test and the Pareto front are checked against direct computations.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.cli import main
from sim.report.compare.stats import COMPARED, difference, welch_p
from sim.report.compare.sweep import PointStats, pareto_front

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--set", "duration=30m", "--set", "warmup=5m"]


def panel_figure(html: str, panel_id: str) -> dict[str, Any]:
    """The Plotly figure JSON the page embeds for one panel."""
    opening = f'<script type="application/json" class="ipanel-data" data-for="{panel_id}">'
    match = re.search(re.escape(opening) + "(.*?)</script>", html, flags=re.S)
    assert match is not None, panel_id
    figure: dict[str, Any] = json.loads(match.group(1))
    return figure


@pytest.fixture(scope="module")
def sweep_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "grid.parquet"
    code = main(
        [
            "sweep",
            str(ROOT / "scenarios" / "phase_3_1.yaml"),
            "--grid",
            "scaling.max_agents=60,80",
            "--grid",
            "workload.arrivals.rate_per_min=20,30,40",
            "--replications",
            "2",
            "--workers",
            "1",
            "--out",
            str(out),
            "--quiet",
            *SHORT,
        ]
    )
    assert code == 0
    return out


def test_sweep_writes_a_heatmap_of_the_grid(sweep_out: Path) -> None:
    report = sweep_out.with_suffix("") / "report.html"
    assert report.is_file()
    html = report.read_text(encoding="utf-8")
    heat = panel_figure(html, "panel-heatmap")["data"][0]
    assert heat["type"] == "heatmap"
    assert heat["x"] == ["60", "80"]
    assert heat["y"] == ["20", "30", "40"]
    frame = pd.read_parquet(sweep_out)
    assert len(frame) == 12
    means = frame.groupby(["set.scaling.max_agents", "set.workload.arrivals.rate_per_min"])[
        "wait_s.p99"
    ].mean()
    for i, rate in enumerate((20, 30, 40)):
        for j, agents in enumerate((60, 80)):
            assert heat["z"][i][j] == pytest.approx(means[(agents, rate)])
    pareto = panel_figure(html, "panel-pareto")["data"]
    assert [t["name"] for t in pareto] == ["points", "Pareto front"]
    assert len(pareto[0]["x"]) == 6
    # One table row per point, with a confidence interval from two replications.
    table = html[html.index('id="sweep-points"') :]
    assert table.count("<tr>") == 7
    assert re.search(r"\[[-\d.,]+, [-\d.,]+\]", table)


def test_sweep_with_an_unknown_figure_fails_in_one_line(
    sweep_out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The runs are stored beside the Parquet file, so this repeats none of them.
    code = main(
        [
            "sweep",
            str(ROOT / "scenarios" / "phase_3_1.yaml"),
            "--grid",
            "scaling.max_agents=60,80",
            "--grid",
            "workload.arrivals.rate_per_min=20,30,40",
            "--replications",
            "2",
            "--workers",
            "1",
            "--out",
            str(sweep_out),
            "--quiet",
            "--figure",
            "wait_s.p42",
            *SHORT,
        ]
    )
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: --figure: wait_s.p42 is not a figure of this sweep"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    dirs = []
    for name, agents in (("small", "60"), ("large", "80")):
        out = root / name
        code = main(
            [
                "run",
                str(ROOT / "scenarios" / "phase_3_1.yaml"),
                *SHORT,
                "--set",
                f"scaling.max_agents={agents}",
                "--replications",
                "3",
                "--out",
                str(out),
                "--no-report",
                "--quiet",
            ]
        )
        assert code == 0
        dirs.append(out)
    return dirs[0], dirs[1]


def test_compare_report(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    first, second = two_runs
    target = tmp_path / "cmp.html"
    assert main(["compare", str(first), str(second), "--report", str(target)]) == 0
    html = target.read_text(encoding="utf-8")
    p99 = panel_figure(html, "panel-p99")
    assert [t["name"] for t in p99["data"] if t["mode"] == "lines"] == [str(first), str(second)]
    table = html[html.index('id="compare-table"') :]
    # Three replications a side: every difference is tested, and the test is named.
    assert "Welch" in table
    a = json.loads((first / "summary.json").read_text())
    b = json.loads((second / "summary.json").read_text())
    diff = difference(COMPARED[0], a, b)
    assert diff.tested
    assert f"p = {diff.p_value:.3g}" in table
    # Task by task: the same arrivals (one seed), so the pairs are all of them.
    tasks = html[html.index('id="compare-tasks"') :]
    paired = re.search(r"<td>tasks paired</td><td>([\d,]+)</td>", tasks)
    assert paired is not None and int(paired.group(1).replace(",", "")) > 100
    # The default place: the second run's directory.
    assert main(["compare", str(first), str(second), "--report"]) == 0
    assert (second / "comparison.html").is_file()


def test_compare_pairs_two_what_ifs_of_one_seed_task_by_task(
    two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The same seed, a different fleet bound: the same arrivals and drawn work (common
    random numbers), so every independent task of each replication pairs with itself,
    and the line says how their fates moved."""
    first, second = two_runs
    assert main(["compare", str(first), str(second), "--json"]) == 0
    pairs = json.loads(capsys.readouterr().out)["tasks"]
    tasks = pd.read_parquet(first / "tasks.parquet")
    arrivals = tasks[(tasks["job_id"] < 0) & (tasks["attempt"] == 1)]
    assert pairs["paired"] >= len(arrivals) > 100
    assert 0 < pairs["same_outcome"] <= 1 and pairs["latency_delta_p99_s"] >= 0
    assert main(["compare", str(first), str(second), "--pairs", str(tmp_path / "p.parquet")]) == 0
    assert "task by task: " in capsys.readouterr().out
    rows = pd.read_parquet(tmp_path / "p.parquet")
    assert len(rows) == pairs["paired"] and rows["key"].is_unique
    done = rows.dropna(subset=["latency_delta_s"])
    delta = done["latency_s_replay"] - done["latency_s_live"]
    assert (done["latency_delta_s"] == delta).all() and len(done) > 100


def test_compare_report_of_a_missing_run_is_one_line(
    two_runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["compare", str(two_runs[0]), str(tmp_path), "--report", str(tmp_path / "x.html")])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path}/summary.json: file not found (expected a run directory)"]


def test_welch_p_matches_scipy_and_the_formula() -> None:
    a, b = [10.0, 12.0, 11.0, 13.0], [15.0, 14.0, 17.0, 16.5, 15.5]
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert welch_p(a, b) == pytest.approx(expected)
    # Welch's t by hand, so the test would notice a pooled-variance test.
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert welch_p(a, b) == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert math.isnan(welch_p([1.0], [2.0, 3.0]))
    assert welch_p([2.0, 2.0], [2.0, 2.0]) == 1.0


def test_difference_verdicts() -> None:
    wait = COMPARED[0]  # p99 wait: lower is better
    base = {"wait_s": {"p99": 10.0}}
    assert difference(wait, base, {"wait_s": {"p99": 8.0}}).verdict == "better"
    assert difference(wait, base, {"wait_s": {"p99": 12.0}}).verdict == "worse"
    same = difference(wait, base, {"wait_s": {"p99": 10.0}})
    assert (same.absolute, same.relative, same.verdict) == (0.0, 0.0, "")
    # Replications whose spread hides the difference: tested, not significant, uncoloured.
    noisy_a = {
        "wait_s": {"p99": 10.0},
        "per_replication": [{"wait_s": {"p99": v}} for v in (5, 15)],
    }
    noisy_b = {
        "wait_s": {"p99": 11.0},
        "per_replication": [{"wait_s": {"p99": v}} for v in (4, 18)],
    }
    diff = difference(wait, noisy_a, noisy_b)
    assert diff.tested
    assert not diff.significant
    assert diff.verdict == ""


def test_pareto_front_keeps_only_undominated_points() -> None:
    def point(i: int, cost: float, wait: float) -> PointStats:
        return PointStats(i, {}, 1, 0, {"cost.usd_per_day": cost, "wait_s.p99": wait}, {})

    points = [point(0, 10, 5), point(1, 12, 3), point(2, 12, 6), point(3, 9, 9), point(4, 20, 3)]
    assert pareto_front(points) == [3, 0, 1]


def test_replay_writes_recorded_against_replay(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    recorded = two_runs[0]
    out = tmp_path / "replayed"
    scenario = ROOT / "scenarios" / "phase_3_1.yaml"
    args = ["replay", str(recorded), str(scenario), *SHORT, "--quiet", "--out", str(out)]
    assert main([*args, "--set", "scaling.max_agents=60"]) == 0
    html = (out / "comparison.html").read_text(encoding="utf-8")
    p99 = panel_figure(html, "panel-p99")
    assert [t["name"] for t in p99["data"] if t["mode"] == "lines"] == ["recorded", "replay"]
    # Replication 0 of the recording, replayed with its settings: the same run, line for line.
    assert p99["data"][0]["y"] == p99["data"][1]["y"]


def test_sweep_report_of_one_point_has_its_table_and_no_heatmap(tmp_path: Path) -> None:
    out = tmp_path / "one.parquet"
    args = ["sweep", str(ROOT / "scenarios" / "phase_3_1.yaml"), "--grid", "scaling.max_agents=60"]
    assert main([*args, "--workers", "1", "--out", str(out), "--quiet", *SHORT]) == 0
    html = (tmp_path / "one" / "report.html").read_text(encoding="utf-8")
    assert "panel-heatmap" not in html
    assert "no heat-map" in html
    assert html[html.index('id="sweep-points"') :].count("<tr>") == 2
