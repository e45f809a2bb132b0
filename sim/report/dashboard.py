"""A live terminal dashboard for ``orchestra run --dashboard``, laid out like the spec's (6.2).

The simulation hands a :class:`DashboardState` to :meth:`LiveDashboard.update`
as often as it likes: the call only stores the state. Rich's refresh thread
draws the latest one a few times per wall-clock second with :func:`render`,
so a fast simulation is not slowed down by drawing every tick.

The layout, top to bottom: a header with the headline numbers and their bars
(active agents of total, queue, throughput, p99), zone health beside the task
distribution, a small chart of p99 latency over time, and the latest events.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = [
    "QUEUE_OVERFLOW_DEPTH",
    "DashboardState",
    "LiveDashboard",
    "render",
]

#: The spec's queue_overflow alert (section 6.3): the queue bar is full at this depth.
QUEUE_OVERFLOW_DEPTH = 500
#: At most this many categories get a bar of their own; the rest are summed as "Other".
MAX_CATEGORIES = 10
#: Widest p99 chart plotting area, in columns (it narrows with the terminal), and its height.
CHART_WIDTH = 60
CHART_HEIGHT = 6
#: Below this many columns zone health and task distribution are stacked, not side by side.
SIDE_BY_SIDE_WIDTH = 80
#: Zone health at or above this share is green, at or above the next one yellow, else red.
HEALTHY_SHARE = 0.95
DEGRADED_SHARE = 0.80

_BLOCKS = " ▁▂▃▄▅▆▇█"
_BAR_WIDTH = 20

#: Event kind -> style in the recent-events panel (unknown kinds are plain).
_EVENT_STYLES: dict[str, str] = {
    **dict.fromkeys(
        (
            "agent_failed",
            "zone_outage",
            "coordinator_crash",
            "partition",
            "job_failed",
            "message_expired",
        ),
        "red",
    ),
    **dict.fromkeys(("agent_detected", "agent_replaced", "zone_restored"), "green"),
    **dict.fromkeys(("election", "leader_elected"), "magenta"),
    **dict.fromkeys(("agent_requested", "agent_joined", "agent_draining", "agent_left"), "dim"),
    "scale": "cyan",
    "alert": "yellow",
}


@dataclass(frozen=True)
class DashboardState:
    """What the dashboard shows at one instant of simulated time."""

    now_s: float
    duration_s: float
    scenario: str
    active_agents: int
    total_agents: int
    max_agents: int
    queue_depth: int
    throughput_per_min: float
    p99_latency_s: float
    p99_wait_s: float
    zone_health: Mapping[str, tuple[int, int]]  # zone -> (active, total)
    category_completed: Mapping[str, int]
    p99_history: Sequence[tuple[float, float]]  # (time_s, p99 latency s), last ~60 samples
    recent_events: Sequence[tuple[float, str, str]]  # (time_s, kind, text), last ~8


# --- formatting -------------------------------------------------------------------------------


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--:--"
    total = max(round(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _seconds(value: float) -> str:
    """A duration in seconds, short: ``0.84s``, ``12.3s``, ``245s``, ``—`` when unknown."""
    if not math.isfinite(value):
        return "—"
    if value < 10:
        return f"{value:.2f}s"
    if value < 100:
        return f"{value:.1f}s"
    return f"{value:,.0f}s"


def _share(part: float, whole: float) -> float:
    if whole <= 0 or not math.isfinite(part) or not math.isfinite(whole):
        return math.nan
    return min(max(part / whole, 0.0), 1.0)


def _bar(fraction: float, width: int = _BAR_WIDTH, style: str = "green") -> Text:
    """``████░░░`` filled to ``fraction`` (0..1); an unknown fraction is all empty."""
    filled = 0 if not math.isfinite(fraction) else round(min(max(fraction, 0.0), 1.0) * width)
    bar = Text("█" * filled, style=style)
    bar.append("░" * (width - filled), style="grey37")
    return bar


def _health_style(share: float) -> str:
    if not math.isfinite(share):
        return "grey50"
    if share >= HEALTHY_SHARE:
        return "green"
    if share >= DEGRADED_SHARE:
        return "yellow"
    return "red"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k not below ``value`` (1 for non-positive values)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * magnitude * (1 + 1e-9):
            return step * magnitude
    return 10.0 * magnitude


def _zone_label(zone: str) -> str:
    return zone if zone.lower().startswith("zone") else f"Zone {zone}"


# --- panels -----------------------------------------------------------------------------------


def _header_cells(state: DashboardState) -> list[Group]:
    """The headline numbers, each over its bar and a note."""
    agents_share = _share(state.active_agents, state.total_agents)
    queue_share = _share(state.queue_depth, QUEUE_OVERFLOW_DEPTH)
    throughput_scale = _nice_ceiling(state.throughput_per_min)
    queue_style = "red" if state.queue_depth >= QUEUE_OVERFLOW_DEPTH else "yellow"
    blocks = [
        (
            ("Active Agents: ", f"{state.active_agents:,}/{state.total_agents:,}"),
            _bar(agents_share, style=_health_style(agents_share)),
            f"max {state.max_agents:,}",
        ),
        (
            ("Queue: ", f"{state.queue_depth:,}"),
            _bar(queue_share, style=queue_style),
            f"overflow at {QUEUE_OVERFLOW_DEPTH}",
        ),
        (
            ("Throughput: ", f"{state.throughput_per_min:,.0f}/min"),
            _bar(_share(state.throughput_per_min, throughput_scale), style="cyan"),
            f"scale {throughput_scale:,.0f}/min",
        ),
        (
            ("p99: ", _seconds(state.p99_latency_s)),
            Text(f"wait p99 {_seconds(state.p99_wait_s)}"),
            "latency, last interval",
        ),
    ]
    return [
        Group(Text.assemble((label, "bold"), value), bar, Text(note, style="dim"))
        for (label, value), bar, note in blocks
    ]


class _Header:
    """The header cells four to a row, or two, or one, as the terminal's width allows."""

    def __init__(self, state: DashboardState) -> None:
        self._state = state

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        cells = _header_cells(self._state)
        per_row = 4 if options.max_width >= 4 * (_BAR_WIDTH + 4) else 2
        if options.max_width < 2 * (_BAR_WIDTH + 4):
            per_row = 1
        grid = Table.grid(expand=True, padding=(0, 2))
        for _ in range(per_row):
            grid.add_column(ratio=1)
        for i in range(0, len(cells), per_row):
            grid.add_row(*cells[i : i + per_row])
        yield grid


def _category_rows(state: DashboardState) -> list[tuple[str, int]]:
    """Categories by count, largest first; past MAX_CATEGORIES the tail is one "Other" row."""
    counts = sorted(state.category_completed.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(counts) > MAX_CATEGORIES:
        rest = sum(n for _, n in counts[MAX_CATEGORIES - 1 :])
        counts = [*counts[: MAX_CATEGORIES - 1], ("Other", rest)]
    return counts


def _zone_panel(state: DashboardState, height: int) -> Panel:
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(justify="right", no_wrap=True, style="dim")
    for zone in sorted(state.zone_health):
        active, total = state.zone_health[zone]
        share = _share(active, total)
        percent = "—" if not math.isfinite(share) else f"{100.0 * share:.0f}%"
        style = _health_style(share)
        table.add_row(
            f"{_zone_label(zone)}:",
            _bar(share, width=12, style=style),
            Text(percent, style=style),
            f"{active}/{total}",
        )
    body: RenderableType = table if state.zone_health else Text("no zones", style="dim")
    return Panel(body, title="Zone Health", border_style="blue", height=height)


def _category_panel(state: DashboardState, height: int) -> Panel:
    counts = _category_rows(state)
    top = max((n for _, n in counts), default=0)
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for category, n in counts:
        table.add_row(f"{category}:", _bar(_share(n, top), width=16, style="cyan"), f"{n:,}")
    body: RenderableType = table if counts else Text("no tasks completed yet", style="dim")
    return Panel(body, title="Task Distribution", border_style="blue", height=height)


def _chart_lines(history: Sequence[tuple[float, float]], width: int = CHART_WIDTH) -> Text:
    """p99 over time as a block chart with a y axis in seconds and the time range below.

    ``width`` is the whole chart's width in columns (axis labels included).
    """
    points = [(t, v) for t, v in history if math.isfinite(t)]
    values = [v for _, v in points if math.isfinite(v)]
    if not values:
        return Text("no latency samples yet", style="dim")
    top = _nice_ceiling(max(values))
    labels = {CHART_HEIGHT - 1: _seconds(top), (CHART_HEIGHT - 1) // 2: _seconds(top / 2)}
    label_width = max(len(s) for s in [*labels.values(), "0s"])
    columns = max(min(CHART_WIDTH, width - label_width - 2), 8)
    points = points[-columns:]
    values = [v for _, v in points if math.isfinite(v)]
    if not values:
        return Text("no latency samples yet", style="dim")
    levels = CHART_HEIGHT * 8
    repeat = max(1, min(4, columns // len(points)))
    heights = []
    for _, v in points:
        h = -1 if not math.isfinite(v) else round(min(max(v / top, 0.0), 1.0) * levels)
        heights.extend([h] * repeat)
    out = Text(no_wrap=True, overflow="crop")
    for row in range(CHART_HEIGHT - 1, -1, -1):
        out.append(f"{labels.get(row, ''):>{label_width}} ┤", style="dim")
        chars = []
        for h in heights:
            if h >= (row + 1) * 8:
                chars.append(_BLOCKS[8])
            elif h > row * 8:
                chars.append(_BLOCKS[h - row * 8])
            elif row == 0 and h == 0:
                chars.append(_BLOCKS[1])  # a zero still shows on the floor
            else:
                chars.append(" ")
        out.append("".join(chars) + "\n", style="red")
    out.append(f"{'0s':>{label_width}} └" + "─" * len(heights) + "\n", style="dim")
    start, end = _hms(points[0][0]), _hms(points[-1][0])
    if len(points) == 1 or len(heights) < len(start) + len(end) + 1:
        axis = start if len(points) == 1 else f"{start}–{end}"
    else:
        axis = start + " " * (len(heights) - len(start) - len(end)) + end
    out.append(" " * (label_width + 2) + axis, style="dim")
    return out


class _P99Chart:
    """The chart, sized to the width rich gives it."""

    def __init__(self, history: Sequence[tuple[float, float]]) -> None:
        self._history = history

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield _chart_lines(self._history, options.max_width)


class _ZonesAndTasks:
    """Zone health beside the task distribution, or above it on a narrow terminal."""

    def __init__(self, state: DashboardState) -> None:
        self._state = state

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        state = self._state
        if options.max_width < SIDE_BY_SIDE_WIDTH:
            yield _zone_panel(state, len(state.zone_health) + 2)
            yield _category_panel(state, len(_category_rows(state)) + 2)
            return
        # Both panels as tall as the longer list (+ 2 for the borders), like the spec's boxes.
        height = max(len(state.zone_health), len(_category_rows(state)), 1) + 2
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(ratio=1)
        grid.add_column(ratio=1)
        grid.add_row(_zone_panel(state, height), _category_panel(state, height))
        yield grid


def _latency_panel(state: DashboardState) -> Panel:
    return Panel(
        _P99Chart(state.p99_history),
        title="Response Time (p99)",
        subtitle=f"now {_seconds(state.p99_latency_s)} · wait p99 {_seconds(state.p99_wait_s)}",
        border_style="blue",
    )


def _events_panel(state: DashboardState) -> Panel:
    table = Table.grid(padding=(0, 2))
    kind_width = max((len(kind) for _, kind, _ in state.recent_events), default=0)
    table.add_column(no_wrap=True, style="dim", min_width=8)
    table.add_column(no_wrap=True, min_width=min(kind_width, 18))
    table.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
    for time_s, kind, text in state.recent_events:
        style = _EVENT_STYLES.get(kind, "")
        table.add_row(_hms(time_s), Text(kind, style=style), text)
    body: RenderableType = table if state.recent_events else Text("no events yet", style="dim")
    return Panel(body, title="Recent Events", border_style="blue")


def render(state: DashboardState) -> RenderableType:
    """The whole dashboard for one state (pure: same state, same picture)."""
    progress = _share(state.now_s, state.duration_s)
    clock = f"{_hms(state.now_s)} / {_hms(state.duration_s)}"
    if math.isfinite(progress):
        clock += f" ({100.0 * progress:.0f}%)"
    header = Panel(
        _Header(state),
        title=f"Orchestra Dashboard — {state.scenario}",
        subtitle=f"simulated {clock}",
        border_style="bright_blue",
    )
    return Group(header, _ZonesAndTasks(state), _latency_panel(state), _events_panel(state))


# --- live -------------------------------------------------------------------------------------


class LiveDashboard:
    """The dashboard redrawn in place while a run goes on; use it as a context manager.

    ``update`` only swaps the stored state (safe from any thread); rich's
    refresh thread renders the latest state four times per wall-clock second.
    When the context exits the last state stays on screen.
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._lock = threading.Lock()
        self._state: DashboardState | None = None
        self._live: Live | None = None

    def _renderable(self) -> RenderableType:
        with self._lock:
            state = self._state
        if state is None:
            return Text("Orchestra Sim — waiting for the first sample…", style="dim")
        try:
            return render(state)
        except Exception as exc:  # the refresh thread must survive a bad state
            return Text(f"dashboard cannot draw this state: {exc!r}", style="red")

    def update(self, state: DashboardState) -> None:
        """Store ``state``; it is drawn at the next refresh."""
        with self._lock:
            self._state = state

    def start(self) -> None:
        """Begin refreshing (``with LiveDashboard(console):`` calls this)."""
        if self._live is not None:
            return
        self._live = Live(
            console=self._console,
            refresh_per_second=4,
            transient=False,
            get_renderable=self._renderable,
        )
        self._live.start()

    def stop(self) -> None:
        """Draw the last state once more and stop refreshing."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def __enter__(self) -> LiveDashboard:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
