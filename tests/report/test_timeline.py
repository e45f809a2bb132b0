"""The dashboard additions to the report: timeline, cost, zone health (figures and HTML)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from report_frames import (
    FIGURE_FILES,
    INCIDENT_RECORDS,
    PNG_MAGIC,
    ZONES,
    alert,
    events_frame,
    make_incident_events,
    make_metrics,
    make_summary,
    make_tasks,
    read_report,
)

from sim.report import plots
from sim.report.html import SECTION_IDS, write_report

LANE_KINDS = [
    "zone_outage",
    "coordinator_crash",
    "partition",
    "agent_failed",
    "job_failed",
    "message_expired",
    "zone_restored",
    "agent_detected",
    "agent_replaced",
    "election",
    "leader_elected",
    "agent_requested",
    "agent_joined",
    "agent_draining",
    "agent_left",
]


def degraded_metrics() -> pd.DataFrame:
    """Cost column on; at the last sample zone B runs at 80 % and zone C at 60 %."""
    metrics = make_metrics(cost=True)
    last = metrics["time_s"] == metrics["time_s"].max()
    for zone, active in (("A", 50.0), ("B", 40.0), ("C", 30.0), ("D", 49.0)):
        row = last & (metrics["level"] == "zone") & (metrics["id"] == zone)
        metrics.loc[row, ["active_agents", "total_agents"]] = [active, 50.0]
    return metrics


def incident_summary() -> dict[str, Any]:
    summary = make_summary()
    summary["cost"] = {"usd_total": 12.5, "usd_per_day": 300.0, "usd_per_1k_tasks": 0.069}
    return summary


@pytest.fixture(scope="module")
def incident_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(
        tmp_path_factory.mktemp("incidents"),
        incident_summary(),
        make_tasks(),
        degraded_metrics(),
        make_incident_events(),
    )


def section(text: str, section_id: str) -> str:
    start = text.index(f'id="{section_id}"')
    return text[start : text.index("</section>", start)]


# --- parsing events ---------------------------------------------------------------------------


def test_parse_detail() -> None:
    assert plots.parse_detail('{"delta": 3, "reason": "q"}') == {"delta": 3, "reason": "q"}
    for bad in ("not json", "[1, 2]", "", None, float("nan"), 7):
        assert plots.parse_detail(bad) == {}


def test_scale_marks() -> None:
    marks = plots.scale_marks(make_incident_events())
    assert [(m.time_s, m.policy, m.delta, m.target) for m in marks] == [
        (700.0, "hpa", 5, 205.0),
        (1200.0, "hpa", -3, 202.0),
        (2400.0, "step", 10, 212.0),
    ]
    assert marks[0].reason == "queue > 20"
    # A scale event without a numeric delta is skipped; one without a target keeps None.
    odd = events_frame(
        [(5.0, "scale", "keda", {"reason": "?"}), (6.0, "scale", "keda", {"delta": 2})]
    )
    assert [(m.delta, m.target) for m in plots.scale_marks(odd)] == [(2, None)]


def test_alert_spans_pair_firing_and_resolved() -> None:
    spans = plots.alert_spans(make_incident_events())
    assert [(s.rule, s.severity, s.start_s, s.resolved_s) for s in spans] == [
        ("agent_offline_threshold", "critical", 1000.0, 1400.0),
        ("high_latency", "warning", 900.0, 1500.0),
        ("high_latency", "warning", 2000.0, 2300.0),
        ("queue_overflow", "critical", 3000.0, None),
    ]
    assert spans[0].action == "notify_slack"
    # A repeated firing is the same alert; a resolution with nothing open started before the log.
    odd = events_frame(
        [
            alert(10.0, "r", "firing"),
            alert(20.0, "r", "firing"),
            alert(30.0, "r", "resolved"),
            alert(40.0, "s", "resolved", "info"),
        ]
    )
    assert [(s.rule, s.start_s, s.resolved_s) for s in plots.alert_spans(odd)] == [
        ("r", 10.0, 30.0),
        ("s", 0.0, 40.0),
    ]


def test_event_groups() -> None:
    assert plots.event_group("zone_outage") == "failure"
    assert plots.event_group("agent_replaced") == "recovery"
    assert plots.event_group("tasks_redistributed") == "recovery"
    assert plots.event_group("leader_elected") == "election"
    assert plots.event_group("agent_draining") == "fleet"
    assert plots.event_group("something_new") == "other"


# --- figures ----------------------------------------------------------------------------------


def test_timeline_figure_panels() -> None:
    fig = plots.timeline_figure(make_metrics(), make_incident_events())
    agents, alerts, lanes = fig.axes
    # Shared time axis, one hour shown in minutes.
    assert lanes.get_xlim() == pytest.approx((0.0, 60.0))
    assert agents.get_shared_x_axes().joined(agents, lanes)
    assert "(min)" in lanes.get_xlabel()

    lines = {line.get_label(): line for line in agents.get_lines()}
    assert {"total", "active", "scale up", "scale down"} <= set(lines)
    up = lines["scale up"]
    assert list(np.asarray(up.get_xdata())) == pytest.approx([700 / 60, 2400 / 60])
    assert list(np.asarray(up.get_ydata())) == [205.0, 212.0]
    assert list(np.asarray(lines["scale down"].get_ydata())) == [202.0]
    # Two policies: each marker says its delta and its policy.
    labels = sorted(t.get_text() for t in agents.texts)
    assert labels == ["+10 step", "+5 hpa", "-3 hpa"]

    rules = [t.get_text() for t in alerts.get_yticklabels()]
    assert rules == ["agent_offline_threshold", "high_latency", "queue_overflow"]
    bars = [c for c in alerts.collections if isinstance(c, PolyCollection)]
    assert sum(len(c.get_paths()) for c in bars) == 4  # the legend swatch has none
    hatched = [c for c in bars if c.get_hatch() and len(c.get_paths())]
    assert len(hatched) == 1  # queue_overflow, still firing at the end
    legend = alerts.get_legend()
    assert legend is not None
    assert {t.get_text() for t in legend.get_texts()} == {
        "critical",
        "warning",
        "still firing at end",
    }

    kinds = [t.get_text() for t in lanes.get_yticklabels()]
    assert kinds == LANE_KINDS
    counts = {t.get_text() for t in lanes.texts}
    assert counts == {"1"}


def test_timeline_without_incidents() -> None:
    for events in (None, pd.DataFrame(), events_frame(INCIDENT_RECORDS[:2])):
        fig = plots.timeline_figure(make_metrics(), events)
        agents, alerts, lanes = fig.axes
        assert [t.get_text() for t in alerts.texts] == ["no alerts"]
        assert "no failures" in lanes.texts[0].get_text()
        assert {line.get_label() for line in agents.get_lines()} == {"total", "active"}
    fig = plots.timeline_figure(pd.DataFrame(), None)
    assert fig.axes[0].texts[0].get_text() == "no agent samples"


def test_many_scale_events_lose_their_labels() -> None:
    records = [
        (60.0 * i, "scale", "hpa", {"delta": 1 if i % 2 else -1, "target": 200 + i % 2})
        for i in range(plots.MAX_SCALE_LABELS + 5)
    ]
    fig = plots.timeline_figure(make_metrics(), events_frame(records))
    agents = fig.axes[0]
    assert not agents.texts
    markers = [line for line in agents.get_lines() if line.get_label().startswith("scale")]
    assert sum(np.asarray(line.get_xdata()).size for line in markers) == len(records)


def test_cost_figure_with_and_without_column() -> None:
    summary = incident_summary()
    fig = plots.cost_figure(make_metrics(cost=True), make_incident_events(), summary)
    ax = fig.axes[0]
    cost = next(line for line in ax.get_lines() if line.get_label() == "cumulative cost")
    assert float(np.asarray(cost.get_ydata())[-1]) == pytest.approx(10.0)  # 200 agents, 1 h
    rate_axis = fig.axes[1]
    rate = np.asarray(rate_axis.get_lines()[0].get_ydata(), dtype=float)
    assert rate == pytest.approx(np.full(rate.size, 10.0))  # $/h
    text = " ".join(t.get_text() for t in ax.texts)
    for part in ("$12.50 total", "$300.00 per day", "$0.07 per 1k tasks"):
        assert part in text

    bare = plots.cost_figure(make_metrics(), make_incident_events(), summary)
    message = bare.axes[0].texts[0].get_text()
    assert "no cost_usd column" in message
    assert "$300.00 per day" in message
    assert plots.cost_lines(None) == []
    assert plots.cost_lines({"cost": {"usd_total": float("nan")}}) == []


def test_zone_health_figure() -> None:
    fig = plots.zone_health_figure(degraded_metrics())
    ax = fig.axes[0]
    zone_lines = [line for line in ax.get_lines() if line.get_label() in ZONES]
    assert [line.get_label() for line in zone_lines] == list(ZONES)
    assert [float(np.asarray(line.get_ydata())[-1]) for line in zone_lines] == pytest.approx(
        [100.0, 80.0, 60.0, 98.0]
    )
    empty = plots.zone_health_figure(make_metrics(zones=False))
    assert empty.axes[0].texts[0].get_text() == "no per-zone samples"


def test_time_series_mark_incidents_only() -> None:
    fig = plots.queue_depth_figure(make_metrics(), make_incident_events())
    ax = fig.axes[0]
    markers = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    marked = {
        "agent_failed",
        "zone_outage",
        "election",
        "leader_elected",
        "zone_restored",
        "coordinator_crash",
        "partition",
    }
    assert len(markers) == len(marked)
    # Nearby lines share one label: zone_outage, election and leader_elected sit 10 s apart.
    labels = [t.get_text() for t in ax.texts]
    assert "zone_outage B +2" in labels
    assert not any(label.startswith(("alert", "scale", "agent_joined")) for label in labels)


def test_all_figures_with_summary() -> None:
    figs = plots.all_figures(
        make_tasks(), make_metrics(cost=True), make_incident_events(), incident_summary()
    )
    assert [f"{k}.png" for k in figs] == list(FIGURE_FILES)
    assert any(isinstance(a, Line2D) for a in figs["cost"].axes[0].get_lines())


# --- report.html ------------------------------------------------------------------------------


def test_sections_in_dashboard_order(incident_report: Path) -> None:
    text = read_report(incident_report)
    positions = [text.index(f'id="{sid}"') for sid in SECTION_IDS]
    assert positions == sorted(positions)
    assert len(set(SECTION_IDS)) == len(SECTION_IDS)
    for name in FIGURE_FILES:
        assert (incident_report.parent / name).read_bytes().startswith(PNG_MAGIC)
    # (The inlined chart library has src="..." strings of its own.)
    sources = re.findall(r'src="([^"]*)"', re.sub(r"<script.*?</script>", "", text, flags=re.S))
    # Time series with data are interactive panels; the rest are inline PNGs.
    assert len(sources) + text.count('class="ipanel"') == len(FIGURE_FILES)


def test_zone_health_section(incident_report: Path) -> None:
    zones = section(read_report(incident_report), "zones")
    for label, percent, cls in (
        ("Zone A", "100 %", "ok"),
        ("Zone B", "80 %", "warn"),
        ("Zone C", "60 %", "bad"),
        ("Zone D", "98 %", "ok"),
    ):
        row = zones[zones.index(f"<td>{label}</td>") :]
        row = row[: row.index("</tr>")]
        assert f'<td class="num {cls}">{percent}</td>' in row
        assert f'<span class="{cls}" style="width:{percent[:-2]}.0%">' in row
    assert "40/50" in zones
    assert "All zones" in zones
    assert "Zone health over time" in zones  # the small figure below the bars


def test_header_bars_and_cost(incident_report: Path) -> None:
    text = read_report(incident_report)
    header = text[text.index('id="header"') : text.index("</header>")]
    assert header.count('class="bar"') == 3  # agents, queue, throughput
    assert "cost / day" in header
    assert "$300.00" in header
    cost = section(text, "cost")
    for value, label in (("$12.50", "total"), ("$300.00", "per day"), ("$0.07", "per 1k tasks")):
        assert f'<div class="k">{label}</div><div class="v">{value}</div>' in cost


def test_event_chips(incident_report: Path) -> None:
    events = section(read_report(incident_report), "events")
    assert '<span class="chip alert">alert × 7</span>' in events
    assert '<span class="chip scale">scale × 3</span>' in events
    assert '<span class="chip failure">zone_outage × 1</span>' in events
    assert '<span class="chip recovery">zone_restored × 1</span>' in events
