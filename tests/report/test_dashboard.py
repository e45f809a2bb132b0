"""The live terminal dashboard (sim.report.dashboard)."""

from __future__ import annotations

import io
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from rich.console import Console

from sim.report.dashboard import QUEUE_OVERFLOW_DEPTH, DashboardState, LiveDashboard, render

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ZONE_HEALTH = {"A": (49, 50), "B": (46, 50), "C": (48, 50), "D": (34, 40)}
ZONE_PERCENT = {"A": "98%", "B": "92%", "C": "96%", "D": "85%"}
CATEGORIES = {"CodeGen": 45, "Review": 22, "Test": 28, "DevOps": 12, "Other": 18}
EVENTS = (
    (3600.0, "agent_failed", "A-CodeGen-001 crashed"),
    (3610.0, "alert", "high_latency firing (warning): p99 12.0 s"),
    (3650.0, "scale", "hpa +5 -> 205 agents: queue > 20"),
    (3700.0, "leader_elected", "zc-B-2 leads zone B (term 3)"),
)


def make_state(**changes: object) -> DashboardState:
    state = DashboardState(
        now_s=3725.0,
        duration_s=86400.0,
        scenario="baseline_200",
        active_agents=187,
        total_agents=200,
        max_agents=250,
        queue_depth=42,
        throughput_per_min=156.0,
        p99_latency_s=2.4,
        p99_wait_s=0.9,
        zone_health=ZONE_HEALTH,
        category_completed=CATEGORIES,
        p99_history=[(60.0 * i, 2.0 + 1.5 * math.sin(i / 5.0)) for i in range(60)],
        recent_events=EVENTS,
    )
    return replace(state, **changes)  # type: ignore[arg-type]


def text_of(state: DashboardState, width: int = 100) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(render(state))
    return console.export_text()


def test_render_shows_the_spec_dashboard() -> None:
    text = text_of(make_state())
    assert "baseline_200" in text
    # Header: the spec's headline numbers.
    assert "Active Agents: 187/200" in text
    assert "Queue: 42" in text
    assert "Throughput: 156/min" in text
    assert "p99: 2.40s" in text
    assert "01:02:05 / 24:00:00" in text
    # Zone health: every zone with its share.
    for zone, percent in ZONE_PERCENT.items():
        line = next(row for row in text.splitlines() if f"Zone {zone}:" in row)
        assert percent in line
        assert "█" in line
    # Task distribution: every category with its count, largest first.
    for category, count in CATEGORIES.items():
        line = next(row for row in text.splitlines() if f"{category}:" in row)
        assert line.rstrip(" │").endswith(str(count))
    order = [text.index(f"{c}:") for c in sorted(CATEGORIES, key=lambda c: -CATEGORIES[c])]
    assert order == sorted(order)
    # The p99 chart and its time range; the recent events.
    assert "Response Time (p99)" in text
    assert "┤" in text
    assert "00:00:00" in text
    assert "00:59:00" in text
    for _time_s, kind, event_text in EVENTS:
        assert kind in text
        assert event_text in text
    assert "01:00:10" in text
    # Every line fits the console.
    assert max(len(line) for line in text.splitlines()) <= 100


def test_bars_follow_the_numbers() -> None:
    full = text_of(make_state(active_agents=200, queue_depth=QUEUE_OVERFLOW_DEPTH * 2))
    header = full.splitlines()[2]  # the bar row under the headline numbers
    assert "█" * 20 in header
    empty = text_of(make_state(active_agents=0, queue_depth=0))
    assert "░" * 20 in empty.splitlines()[2]


def test_render_edge_cases() -> None:
    text = text_of(
        make_state(
            total_agents=0,
            active_agents=0,
            p99_latency_s=math.nan,
            zone_health={"A": (0, 0)},
            category_completed={},
            p99_history=[],
            recent_events=(),
        ),
        width=80,
    )
    assert "Zone A:" in text
    assert "—" in text
    assert "no tasks completed yet" in text
    assert "no latency samples yet" in text
    assert "no events yet" in text
    # Gaps (intervals without completions) and a single sample draw too.
    gaps = text_of(make_state(p99_history=[(0.0, math.nan), (60.0, 3.0), (120.0, math.nan)]))
    assert "┤" in gaps
    single = text_of(make_state(p99_history=[(60.0, 0.0)]))
    assert "▁" in single


def test_many_categories_fold_into_other() -> None:
    many = {f"cat{i:02d}": 100 - i for i in range(14)}
    text = text_of(make_state(category_completed=many))
    assert "cat00:" in text
    assert "cat13:" not in text
    assert "Other:" in text
    assert str(sum(100 - i for i in range(9, 14))) in text


def refresh_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "refresh" in type(t).__name__.lower()]


def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_live_dashboard_updates_and_stops() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    with LiveDashboard(console) as dashboard:
        assert refresh_threads()
        dashboard.update(make_state(queue_depth=7))
        # Rich refreshes four times a second: the first state shows up on its own.
        assert eventually(lambda: "Queue: 7" in ANSI.sub("", buffer.getvalue()))
        dashboard.update(make_state(queue_depth=999, now_s=7200.0))
    output = ANSI.sub("", buffer.getvalue())
    assert "Queue: 999" in output  # the final state is drawn when the dashboard stops
    assert "02:00:00 / 24:00:00" in output
    assert output.count("Recent Events") >= 2
    # The refresh thread ends within one refresh period.
    assert eventually(lambda: not refresh_threads())


def test_live_dashboard_update_only_stores_the_state() -> None:
    """An update is cheap because it draws nothing: drawing is the refresh thread's job.

    (Checked by what it does, not by timing it on a shared machine.)
    """
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    dashboard = LiveDashboard(console)
    for depth in range(10_000):
        dashboard.update(make_state(queue_depth=depth))  # not started: stored, not drawn
    assert buffer.getvalue() == ""
    dashboard.stop()  # stopping a dashboard that never started is harmless
    with dashboard:
        pass  # no state yet: a waiting message, no error


@pytest.mark.parametrize("width", [60, 100, 160])
def test_render_at_several_widths(width: int) -> None:
    text = text_of(make_state(), width=width)
    assert "Zone D:" in text
    assert max(len(line) for line in text.splitlines()) <= width
