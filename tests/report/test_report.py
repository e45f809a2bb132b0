"""Tests for the run report: figures (sim.report.plots) and report.html (sim.report.html)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from report_frames import (
    EVIL,
    FIGURE_FILES,
    PNG_MAGIC,
    ZONES,
    make_events,
    make_metrics,
    make_summary,
    make_tasks,
    read_report,
)

from sim.report import plots
from sim.report.html import MAX_EVENTS, SECTION_IDS, write_report
from sim.report.interactive import plotly_js


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return make_tasks(), make_metrics(), make_events()


@pytest.fixture(scope="module")
def report(
    tmp_path_factory: pytest.TempPathFactory,
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> Path:
    """One report, shared by the read-only checks (each write_report renders six PNGs)."""
    summary = make_summary()
    summary["scenario"] = f"evil {EVIL}"
    return write_report(tmp_path_factory.mktemp("report"), summary, *frames)


# --- report.html ------------------------------------------------------------------------------


def test_writes_figures_and_report(
    report: Path, frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    out = report.parent
    assert report == out / "report.html"
    assert report.is_file()
    for name in FIGURE_FILES:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 1000
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in out.iterdir()) == sorted([*FIGURE_FILES, "report.html"])

    text = read_report(report)
    assert text.startswith("<!DOCTYPE html>")
    for section in ("header", "queue", "agents", "latency", "throughput", "categories"):
        assert f'id="{section}"' in text
    for section in ("summary", "events", *SECTION_IDS):
        assert f'id="{section}"' in text


def test_header_strip(
    report: Path, frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    _, metrics, _ = frames
    text = read_report(report)
    header = text[text.index('id="header"') : text.index("</header>")]
    last = metrics.loc[metrics["level"] == "global"].iloc[-1]
    assert f"{int(last['active_agents'])} / {int(last['total_agents'])}" in header
    assert f'<div class="v">{int(last["queue_depth"])}</div>' in header
    for figure in ("121.5", "12.25 s", "180", "lost"):
        assert figure in header


def test_report_is_self_contained(report: Path) -> None:
    full = read_report(report)
    # The chart library is inlined whole (its source mentions URLs it never fetches: the
    # browser test checks no request leaves the page); the rest of the page is checked here.
    bundle = f"<script>{plotly_js()}</script>"
    assert full.count(bundle) == 1
    text = full.replace(bundle, "")
    # The remaining scripts: the panels' data (JSON) and the page's own code, inline.
    text = re.sub(r'<script type="application/json"[^>]*>.*?</script>', "", text, flags=re.S)
    assert text.count("<script>") == 2  # the panels' linking code and the event filter
    text = re.sub(r"<script>.*?</script>", "", text, flags=re.S)
    assert "http://" not in text
    assert "https://" not in text
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()
    assert "@import" not in text
    assert "url(" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    # Time series with data are interactive panels (their PNGs are files beside the report).
    panels = text.count('class="ipanel"')
    assert panels >= 4
    assert len(sources) + panels == len(FIGURE_FILES)
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert "href=" not in text


def test_data_strings_are_escaped(report: Path) -> None:
    text = read_report(report)
    assert EVIL not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    # The category appears escaped in the category table, the scenario in title and header,
    # the event detail in the events table.
    categories = text[text.index('id="categories"') : text.index('id="latency-cdf"')]
    assert "&lt;script&gt;" in categories
    assert text.count("evil &lt;script&gt;") >= 2
    events = text[text.index('id="events"') :]
    assert "&lt;script&gt;" in events


def test_summary_table_flattens_nested_keys(report: Path) -> None:
    text = read_report(report)
    summary_html = text[text.index('id="summary"') : text.index('id="events"')]
    for key in ("tasks.completed", "latency_s.p99", "jobs.makespan_s.p99", "cost.usd_total"):
        assert f"<td>{key}</td>" in summary_html
    assert "<td>alerts</td>" in summary_html  # an empty mapping is one row
    assert "ab" * 32 in summary_html
    assert "95 % CI" not in text  # no ci95 in this summary


def test_ci_column_with_ci95_and_capped_events(tmp_path: Path) -> None:
    events = make_events(extra=MAX_EVENTS + 100)
    text = read_report(
        write_report(tmp_path, make_summary(ci=True), make_tasks(), make_metrics(), events)
    )
    assert "95 % CI" in text
    summary_html = text[text.index('id="summary"') : text.index('id="events"')]
    assert "[170, 190]" in summary_html
    assert "[11, 13.5]" in summary_html
    assert "5 replications" in text
    # ci95 is a column, not rows of its own; the per-replication copies are left out.
    assert "ci95." not in summary_html
    assert "per_replication" not in summary_html
    assert '<td>seed</td><td class="num">12345</td>' in summary_html
    assert "0.78" in summary_html
    assert "cd" * 32 in summary_html
    # The events table stops at MAX_EVENTS rows.
    events_html = text[text.index('id="events"') :]
    assert events_html.count("<tr data-kind=") == MAX_EVENTS
    assert f"First {MAX_EVENTS} of {len(events):,}" in events_html


def test_empty_events_frame(tmp_path: Path) -> None:
    empty = pd.DataFrame(
        {
            "replication": pd.Series(dtype="int64"),
            "time_s": pd.Series(dtype="float64"),
            "kind": pd.Series(dtype="object"),
            "subject": pd.Series(dtype="object"),
            "detail": pd.Series(dtype="object"),
        }
    )
    report = write_report(tmp_path, make_summary(), make_tasks(), make_metrics(), empty)
    text = read_report(report)
    assert "No events were recorded." in text
    for name in FIGURE_FILES:
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
    # A frame with no columns at all, or None, draws too.
    for events in (pd.DataFrame(), None):
        fig = plots.latency_figure(make_metrics(), events)
        assert len(fig.axes[0].lines) == 2


def test_no_zone_rows(tmp_path: Path) -> None:
    metrics = make_metrics(zones=False)
    assert set(metrics["level"]) == {"global", "agent"}
    report = write_report(tmp_path, make_summary(), make_tasks(), metrics, make_events())
    assert (tmp_path / "queue_depth.png").read_bytes().startswith(PNG_MAGIC)
    text = read_report(report)
    assert 'id="queue"' in text
    zones = text[text.index('id="zones"') : text.index('id="categories"')]
    assert "No per-zone samples" in zones
    assert 'class="bar"' not in zones
    fig = plots.queue_depth_figure(metrics, make_events())
    assert len(fig.axes[0].lines) == 1 + 3  # global line + 3 event markers (not the alert)


def test_everything_empty(tmp_path: Path) -> None:
    report = write_report(
        tmp_path, {"scenario": "empty"}, pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    )
    text = read_report(report)
    for section in SECTION_IDS:
        assert f'id="{section}"' in text
    for name in FIGURE_FILES:
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)


def test_reports_in_threads(tmp_path: Path) -> None:
    tasks, metrics, events = make_tasks(120), make_metrics(), make_events()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            write_report(tmp_path / f"r{i}", make_summary(), tasks, metrics, events)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(2):
        assert (tmp_path / f"r{i}" / "report.html").is_file()
    # Writing again over an existing report replaces it in place.
    summary = make_summary()
    summary["scenario"] = "second"
    text = read_report(write_report(tmp_path / "r0", summary, tasks, metrics, events))
    assert "second" in text
    assert not [p for p in (tmp_path / "r0").iterdir() if p.name.endswith(".tmp")]


# --- figures -----------------------------------------------------------------------------------


def test_time_axis_units() -> None:
    assert plots.time_axis(3600.0).unit == "min"
    assert plots.time_axis(7200.0).unit == "min"
    assert plots.time_axis(7201.0).unit == "h"


def test_long_run_in_hours() -> None:
    metrics = make_metrics(hours=3.0, step_s=300.0)
    fig = plots.queue_depth_figure(metrics, make_events(hours=3.0))
    ax = fig.axes[0]
    assert "(h)" in ax.get_xlabel()
    short = plots.queue_depth_figure(make_metrics(), make_events())
    assert "(min)" in short.axes[0].get_xlabel()


def test_events_marked_and_warmup_shaded() -> None:
    metrics, events = make_metrics(), make_events()
    fig = plots.queue_depth_figure(metrics, events)
    ax = fig.axes[0]
    # global + 4 zones + 3 marked events (run_start, warmup_end, run_end and alerts are not).
    assert len(ax.lines) == 1 + len(ZONES) + 3
    labels = [t.get_text() for t in ax.texts]
    assert any(label.startswith("agent_failed") for label in labels)
    assert not any(label.startswith("run_end") for label in labels)
    assert len(ax.patches) == 1  # the warm-up span


def test_figures_use_replication_zero() -> None:
    metrics = make_metrics(replications=3)
    assert plots.pick_replication(metrics) == 0
    assert plots.pick_replication(metrics.loc[metrics["replication"] > 0]) == 1
    assert plots.pick_replication(pd.DataFrame()) is None
    fig = plots.throughput_figure(metrics, make_events())
    n_samples = int((metrics["level"] == "global").sum() / 3)
    assert np.asarray(fig.axes[0].lines[0].get_xdata()).size == n_samples


def test_all_figures_are_figures() -> None:
    figs = plots.all_figures(make_tasks(replications=2), make_metrics(), make_events())
    assert [f"{k}.png" for k in figs] == list(FIGURE_FILES)
    assert all(isinstance(f, Figure) for f in figs.values())


def test_categories_count_warm_completed_only() -> None:
    tasks = make_tasks()
    fig = plots.categories_figure(tasks)
    ax = fig.axes[0]
    widths = sorted(p.get_width() for p in ax.patches if isinstance(p, Rectangle))
    expected = tasks.loc[tasks["warm"] & (tasks["outcome"] == "completed"), "category"]
    assert widths == sorted(float(n) for n in expected.value_counts())
    tick_labels = {t.get_text() for t in ax.get_yticklabels()}
    assert tick_labels == set(expected.unique())


def test_slo_section_explains_the_verdict(
    tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    summary = make_summary()
    summary["slo"] = {
        "met": False,
        "breaches": 4,
        "causes": {
            "missed": [
                {"target": "p99 wait", "value": 33.9, "limit": 10.0, "unit": "s", "met": False}
            ],
            "window_s": 300.0,
            "worst_windows": [
                {
                    "start_s": 3600.0,
                    "end_s": 3900.0,
                    "p99_wait_s": 51.0,
                    "tasks": 700,
                    "agents_mean": 250.0,
                    "queue_max": 120.0,
                    "autoscaler": {"policy": "step", "at_max": True, "in_cooldown": False},
                }
            ],
            "pools": [
                {
                    "zone": "D",
                    "category": EVIL,
                    "p99_wait_s": 75.2,
                    "tasks": 90,
                    "utilization": 0.97,
                }
            ],
        },
    }
    text = read_report(write_report(tmp_path, summary, *frames))
    slo = text[text.index('id="slo"') : text.index('id="zones"')]
    assert "SLO missed: p99 wait 33.9 s &gt; 10 s · 4 windows of 300 s over target" in slo
    assert "why: longest waits: &lt;script&gt;" in slo  # escaped like every data string
    assert "97 %" in slo
    assert "1:00:00–1:05:00" in slo
    assert "step: at max" in slo
    summary_html = text[text.index('id="summary"') : text.index('id="events"')]
    assert "slo.causes" not in summary_html  # the causes have their own section
    assert "<td>slo.breaches</td>" in summary_html
