"""The opt-in models' panels in a comparison: provider tokens, spot share, sheds, run over run.

A single run's report draws these from ``metrics.parquet``'s ``provider``,
``purchase`` and ``tier`` rows (:mod:`sim.report.level_panels`); a comparison
overlays them the way it overlays the spec's panels: one colour per run, on
the same time axis as the other time panels (so zooming one moves them all).
A panel appears when at least one run has the rows; a run without them simply
has no line on it, so a run with tiers beside one without still compares.

* Tokens: one panel per provider (two providers' scales differ by orders of
  magnitude), each run's input tokens per minute (solid) and output (dot),
  and the limits dashed. A limit is drawn once when every run has the same
  one, per run when a what-if moved it (raising the binding limit is the
  question these comparisons answer most).
* Spot: each run's share of specialists on spot, with its reclaim notices as
  marks (one per instant, hover reads how many agents got one).
* Shed: each run's tasks shed per interval, one dash per tier (top tier solid).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.report.interactive import RUN_COLOURS, Mark, Panel, Series
from sim.report.level_panels import level_rows, spot_share
from sim.report.plots import TimeAxis, pick_replication, time_axis
from sim.report.time_panels import RunFrames

__all__ = ["SPOT_NOTICE_EVENT", "overlay_level_panels"]

#: The event an agent's reclaim notice writes (sim.model.failover).
SPOT_NOTICE_EVENT = "spot_notice"

#: Line styles that tell tiers apart within one run's colour (top tier first).
TIER_DASHES = ("solid", "dot", "dash", "dashdot", "longdash", "longdashdot")

_TOKEN_KINDS = (("input", "solid", "dash"), ("output", "dot", "longdash"))


def _colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def _values(rows: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)


def _panel(
    panel_id: str,
    title: str,
    axis: TimeAxis,
    end_s: float,
    y_label: str,
    series: list[Series],
    marks: Sequence[Mark] = (),
) -> Panel:
    return Panel(
        panel_id=panel_id,
        title=title,
        x_label=axis.label,
        y_label=y_label,
        series=series,
        marks=marks,
        x_range=(0.0, max(end_s, 1.0) / axis.divisor),
    )


def _slug(name: str) -> str:
    """A provider name as part of an element id (letters, digits, dashes)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "provider"


def _same_limit(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two limit series are the same constant (limits are fixed per run)."""
    fa, fb = a[np.isfinite(a)], b[np.isfinite(b)]
    return len(fa) > 0 and len(fb) > 0 and bool(np.all(fa == fa[0]) and np.all(fb == fa[0]))


def _provider_series(
    runs: Sequence[RunFrames], provider: str, axis: TimeAxis, rows_of: list[pd.DataFrame]
) -> list[Series]:
    series: list[Series] = []
    drawn: dict[str, list[np.ndarray]] = {"input": [], "output": []}
    for i, (run, rows) in enumerate(zip(runs, rows_of, strict=True)):
        group = rows.loc[rows["id"] == provider] if not rows.empty else rows
        if group.empty:
            continue
        x = axis.convert(group["time_s"]).tolist()
        for kind, dash, limit_dash in _TOKEN_KINDS:
            used, limit = f"{kind}_tokens_per_min", f"{kind}_tokens_limit_per_min"
            if used in group.columns:
                name = f"{run.name}: {kind}"
                values = _values(group, used).tolist()
                series.append(Series(name, x, values, _colour(i), dash, run.name))
            if limit not in group.columns:
                continue
            values = _values(group, limit)
            if not np.isfinite(values).any():
                continue
            if any(_same_limit(values, earlier) for earlier in drawn[kind]):
                continue  # the same limit as a run already drawn: one line says it
            drawn[kind].append(values)
            name = f"{run.name}: {kind} limit"
            series.append(Series(name, x, values.tolist(), _colour(i), limit_dash, run.name))
    return series


def _token_panels(
    runs: Sequence[RunFrames], axis: TimeAxis, end_s: float, rows_of: list[pd.DataFrame]
) -> list[Panel]:
    providers: list[str] = []
    for rows in rows_of:
        if not rows.empty:
            providers += [p for p in dict.fromkeys(rows["id"].astype(str)) if p not in providers]
    panels = []
    for provider in sorted(providers):
        series = _provider_series(runs, provider, axis, rows_of)
        if series:
            title = f"Provider {provider}: tokens / min against its limits"
            panel_id = f"panel-tokens-{_slug(provider)}"
            panels.append(_panel(panel_id, title, axis, end_s, "tokens / min", series))
    return panels


def _notice_marks(run: RunFrames, axis: TimeAxis, share: Series, colour: str) -> Mark | None:
    events = run.events
    if events.empty or not {"kind", "time_s"} <= set(events.columns):
        return None
    rep = pick_replication(events)
    if rep is not None:
        events = events.loc[events["replication"] == rep]
    times = pd.to_numeric(events.loc[events["kind"] == SPOT_NOTICE_EVENT, "time_s"])
    if times.empty:
        return None
    counts = times.value_counts().sort_index()
    seconds = counts.index.to_numpy(dtype=float)
    xs = seconds / axis.divisor
    ys = np.interp(xs, np.asarray(share.x, dtype=float), np.asarray(share.y, dtype=float))
    texts = [
        f"{run.name}: {n} spot notice{'s' if n != 1 else ''} at {t:.0f} s"
        for t, n in zip(seconds.tolist(), counts.to_numpy(dtype=int).tolist(), strict=True)
    ]
    return Mark(f"{run.name}: reclaims", xs.tolist(), ys.tolist(), texts, colour, "x", run.name)


def _spot_panel(runs: Sequence[RunFrames], axis: TimeAxis, end_s: float) -> Panel | None:
    series: list[Series] = []
    marks: list[Mark] = []
    for i, run in enumerate(runs):
        rows = level_rows(run.metrics, "purchase")
        if rows.empty or "total_agents" not in rows.columns:
            continue
        share = spot_share(rows, axis, run.name, _colour(i))
        if share is None:
            continue
        series.append(share)
        mark = _notice_marks(run, axis, share, _colour(i))
        if mark is not None:
            marks.append(mark)
    if not series:
        return None
    title = "Spot share of the specialists (crosses: reclaim notices)"
    return _panel("panel-spot", title, axis, end_s, "share on spot", series, marks)


def _shed_panel(runs: Sequence[RunFrames], axis: TimeAxis, end_s: float) -> Panel | None:
    series: list[Series] = []
    for i, run in enumerate(runs):
        rows = level_rows(run.metrics, "tier")
        if rows.empty or "tasks_shed" not in rows.columns:
            continue
        for j, tier in enumerate(dict.fromkeys(rows["id"].tolist())):  # top tier first
            group = rows.loc[rows["id"] == tier]
            x = axis.convert(group["time_s"]).tolist()
            dash = TIER_DASHES[j % len(TIER_DASHES)]
            values = _values(group, "tasks_shed").tolist()
            series.append(Series(f"{run.name}: {tier}", x, values, _colour(i), dash, run.name))
    if not series:
        return None
    title = "Tasks shed per tier (solid: top tier; dotted, dashed: the tiers below)"
    return _panel("panel-shed", title, axis, end_s, "tasks shed / interval", series)


def overlay_level_panels(runs: Sequence[RunFrames], end_s: float) -> list[Panel]:
    """Every opt-in panel some run has data for, each run in its colour, in page order."""
    axis = time_axis(end_s)
    rows_of = [level_rows(run.metrics, "provider") for run in runs]
    panels = _token_panels(runs, axis, end_s, rows_of)
    for panel in (_spot_panel(runs, axis, end_s), _shed_panel(runs, axis, end_s)):
        if panel is not None:
            panels.append(panel)
    return panels
