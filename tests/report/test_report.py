"""Tests for the run report: figures (sim.report.plots) and report.html (sim.report.html)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sim.report import plots
from sim.report.html import MAX_EVENTS, SECTION_IDS, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURE_FILES = (
    "queue_depth.png",
    "active_agents.png",
    "latency.png",
    "throughput.png",
    "categories.png",
    "latency_cdf.png",
)
EVIL = "<script>alert('x')</script>"
ZONES = ("A", "B", "C", "D")
CATEGORIES = ("code_review", "testing", "deployment", "research", EVIL)
AGENT_LEVEL_COLUMNS = ("cpu_usage", "memory_usage", "error_count", "avg_task_duration_s")
METRIC_COLUMNS = (
    "total_agents",
    "active_agents",
    "busy_agents",
    "queue_depth",
    "in_flight",
    "tasks_completed",
    "throughput_per_min",
    "error_rate",
    "p50_latency_s",
    "p99_latency_s",
    "utilization",
)


# --- synthetic frames of the simulator's exact shape -----------------------------------------


def make_tasks(n: int = 300, replications: int = 1, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for rep in range(replications):
        for i in range(n):
            arrival = float(rng.uniform(0.0, 3600.0))
            wait = float(rng.exponential(2.0))
            transfer = float(rng.uniform(0.0, 0.2))
            service = float(rng.lognormal(1.0, 0.8))
            start = arrival + wait + transfer
            end = start + service
            outcome = str(rng.choice(["completed", "completed", "completed", "failed", "retried"]))
            zone = ZONES[i % len(ZONES)]
            rows.append(
                {
                    "replication": rep,
                    "task_id": i,
                    "job_id": i // 10 if i % 3 == 0 else -1,
                    "node": i % 10 if i % 3 == 0 else -1,
                    "category": CATEGORIES[i % len(CATEGORIES)],
                    "home_zone": zone,
                    "zone": ZONES[(i + (i % 7 == 0)) % len(ZONES)],
                    "agent": f"spec-{i % 40:03d}",
                    "attempt": 1 + (outcome == "retried"),
                    "critical": bool(i % 9 == 0),
                    "arrival_s": arrival,
                    "dispatch_s": arrival + wait,
                    "start_s": start,
                    "end_s": end,
                    "complete_s": end,
                    "wait_s": wait,
                    "latency_s": end - arrival,
                    "service_s": service,
                    "transfer_s": transfer,
                    "outcome": outcome,
                    "warm": arrival >= 600.0,
                }
            )
    return pd.DataFrame(rows)


def make_metrics(
    hours: float = 1.0, step_s: float = 60.0, replications: int = 1, zones: bool = True
) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    times = np.arange(0.0, hours * 3600.0 + step_s, step_s)
    agents = ("spec-000", "spec-001", "lead-000")
    for rep in range(replications):
        for t in times:
            base = {
                "total_agents": 200.0,
                "active_agents": float(195 - rng.integers(0, 5)),
                "busy_agents": float(rng.integers(100, 180)),
                "queue_depth": float(rng.poisson(12)),
                "in_flight": float(rng.integers(100, 180)),
                "tasks_completed": float(t / 2),
                "throughput_per_min": float(rng.normal(120.0, 10.0)),
                "error_rate": float(rng.uniform(0.0, 0.03)),
                "p50_latency_s": float(rng.uniform(2.0, 3.0)) if t > 0 else np.nan,
                "p99_latency_s": float(rng.uniform(8.0, 12.0)) if t > 0 else np.nan,
                "utilization": float(rng.uniform(0.6, 0.9)),
            }
            extra = dict.fromkeys(AGENT_LEVEL_COLUMNS, np.nan)
            rows.append(
                {
                    "replication": rep,
                    "time_s": float(t),
                    "level": "global",
                    "id": "global",
                    **base,
                    "status": None,
                    **extra,
                }
            )
            if zones:
                for zone in ZONES:
                    zone_row = {k: v / 4 for k, v in base.items()}
                    zone_row["queue_depth"] = float(rng.poisson(3))
                    rows.append(
                        {
                            "replication": rep,
                            "time_s": float(t),
                            "level": "zone",
                            "id": zone,
                            **zone_row,
                            "status": None,
                            **extra,
                        }
                    )
            for agent in agents:
                agent_row = dict.fromkeys(METRIC_COLUMNS, np.nan)
                agent_row["utilization"] = float(rng.uniform(0.0, 1.0))
                rows.append(
                    {
                        "replication": rep,
                        "time_s": float(t),
                        "level": "agent",
                        "id": agent,
                        **agent_row,
                        "status": str(rng.choice(["idle", "busy", "error", "offline"])),
                        "cpu_usage": float(rng.uniform(0, 1)),
                        "memory_usage": float(rng.uniform(0, 1)),
                        "error_count": float(rng.integers(0, 3)),
                        "avg_task_duration_s": float(rng.uniform(1, 10)),
                    }
                )
    return pd.DataFrame(rows)


def make_events(hours: float = 1.0, extra: int = 0) -> pd.DataFrame:
    end = hours * 3600.0
    records = [
        (0.0, "run_start", "global", {}),
        (600.0, "warmup_end", "global", {}),
        (900.0, "scale_up", "zone A", {"from": 50, "to": 60}),
        (1500.0, "agent_failed", "spec-017", {"reason": "crash"}),
        (1520.0, "election", "zone B", {"winner": "zc-B-2", "downtime_s": 4.2}),
        (2000.0, "alert", "p99_latency", {"rule": "p99_latency > 10s", "note": EVIL}),
        (end, "run_end", "global", {}),
    ]
    records += [(1000.0 + i, "scale_up", f"zone {ZONES[i % 4]}", {"i": i}) for i in range(extra)]
    return pd.DataFrame(
        {
            "replication": [0] * len(records),
            "time_s": [r[0] for r in records],
            "kind": [r[1] for r in records],
            "subject": [r[2] for r in records],
            "detail": [json.dumps(r[3]) for r in records],
        }
    )


def make_summary(ci: bool = False) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "scenario": "baseline_200",
        "seed": 42,
        "sim_seconds": 3600.0,
        "tasks": {
            "submitted": 300,
            "completed": 180,
            "failed": 60,
            "in_flight": 3,
            "lost": 2,
            "retried": 57,
        },
        "latency_s": {"mean": 4.1, "p50": 2.7, "p95": 9.4, "p99": 12.25, "max": 30.0},
        "wait_s": {"mean": 2.0, "p50": 1.3, "p99": 9.1},
        "p_wait": 0.41,
        "throughput_per_min": 121.5,
        "utilization": 0.78,
        "agents": {"min": 195, "max": 200, "mean": 197.5, "final": 196},
        "jobs": {
            "submitted": 30,
            "completed": 28,
            "makespan_s": {"mean": 40.0, "p50": 35.0, "p99": 90.0},
        },
        "elections": {"count": 1, "downtime_s": 4.2},
        "alerts": {},
        "cost": {"usd_total": 12.5, "usd_per_1k_tasks": 0.069},
        "slo": {"met": False, "breaches": 3},
        "events_sha256": "ab" * 32,
    }
    if ci:
        # The shape sim.metrics.summary.combine_replications gives: a CI tree, the per-run
        # summaries and one events hash per run; NumPy scalars must format like Python ones.
        summary["per_replication"] = [dict(summary) for _ in range(5)]
        summary["events_sha256"] = ["ab" * 32, "cd" * 32]
        summary["utilization"] = np.float64(0.78)
        summary["seed"] = np.int64(12345)
        summary["replications"] = 5
        summary["ci95"] = {
            "tasks": {"completed": [170.0, 190.0], "lost": [0.0, 4.0]},
            "latency_s": {"p99": [11.0, 13.5], "mean": [3.9, 4.3]},
            "throughput_per_min": [118.0, 125.0],
        }
    return summary


def read_report(path: Path) -> str:
    return path.read_text(encoding="utf-8")


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
    text = read_report(report)
    assert "http://" not in text
    assert "https://" not in text
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()
    assert "@import" not in text
    assert "url(" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == len(FIGURE_FILES)
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
    events = make_events(extra=400)
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
    assert events_html.count("<tr>") == MAX_EVENTS + 1  # + the header row
    assert f"First {MAX_EVENTS} of {len(events)}" in events_html


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
    assert 'id="queue"' in read_report(report)
    fig = plots.queue_depth_figure(metrics, make_events())
    assert len(fig.axes[0].lines) == 1 + 4  # global line + 4 event markers


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
    # global + 4 zones + 4 marked events (run_start, warmup_end, run_end are not marked).
    assert len(ax.lines) == 1 + len(ZONES) + 4
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
