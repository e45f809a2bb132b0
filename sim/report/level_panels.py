"""Time panels for the opt-in models: provider tokens against their limits, spot share, sheds.

The spec's panels read the ``global`` rows of ``metrics.parquet``; these read
the rows an opt-in model adds at its own level — ``provider`` (one per
provider, tokens per minute beside its limits), ``purchase`` (specialists on
spot and on demand) and ``tier`` (tasks shed per tier in each interval). A
run without the model has no such rows and gets no panel, so the report of
an ordinary run is unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.report.interactive import RUN_COLOURS, Panel, Series
from sim.report.plots import TimeAxis, pick_replication, time_axis

__all__ = ["LEVEL_PANEL_IDS", "level_panels", "level_rows", "spot_share"]

#: The panels this module can draw, in page order, with the caption each gets.
LEVEL_PANEL_IDS = {
    "panel-tokens": (
        "Provider tokens / min against the limits",
        "Input and output tokens per minute served by each provider (solid) and the "
        "provider's limit (dashed): a line on its limit is the binding constraint.",
    ),
    "panel-spot": (
        "Spot share of the specialists",
        "Share of the specialists in the fleet (and on the bill) that run on spot; a drop "
        "is a reclaim, a climb back is the pool's share refilled by new joins.",
    ),
    "panel-shed": (
        "Tasks shed per tier",
        "Tasks shed at admission in each metrics interval, per tier: the lowest tier "
        "should go first, the top tier last.",
    ),
}


def level_rows(metrics: pd.DataFrame, level: str) -> pd.DataFrame:
    """*metrics*' rows of one *level* in one replication (0 when present), in time order."""
    if metrics.empty or "level" not in metrics.columns:
        return pd.DataFrame()
    rep = pick_replication(metrics)
    rows = metrics if rep is None else metrics.loc[metrics["replication"] == rep]
    return rows.loc[rows["level"] == level].sort_values("time_s", kind="stable")


def _values(rows: pd.DataFrame, column: str) -> list[float]:
    return pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float).tolist()


def _panel(key: str, axis: TimeAxis, end_s: float, y_label: str, series: list[Series]) -> Panel:
    return Panel(
        panel_id=key,
        title=LEVEL_PANEL_IDS[key][0],
        x_label=axis.label,
        y_label=y_label,
        series=series,
        x_range=(0.0, max(end_s, 1.0) / axis.divisor),
    )


def _token_series(rows: pd.DataFrame, axis: TimeAxis) -> list[Series]:
    series = []
    for i, (provider, group) in enumerate(rows.groupby("id", sort=True)):
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        x = axis.convert(group["time_s"]).tolist()
        for kind, dash in (("input", "solid"), ("output", "dot")):
            used = f"{kind}_tokens_per_min"
            limit = f"{kind}_tokens_limit_per_min"
            if used in group.columns:
                series.append(Series(f"{provider} {kind}", x, _values(group, used), colour, dash))
            if limit in group.columns and np.isfinite(_values(group, limit)).any():
                name = f"{provider} {kind} limit"
                series.append(Series(name, x, _values(group, limit), colour, "dash"))
    return series


def spot_share(rows: pd.DataFrame, axis: TimeAxis, name: str, colour: str) -> Series | None:
    """The share of specialists on spot over time, from ``purchase`` rows (None: no spot)."""
    wide = rows.pivot_table(index="time_s", columns="id", values="total_agents", aggfunc="sum")
    if "spot" not in wide.columns:
        return None
    total = wide.sum(axis=1).to_numpy(dtype=float)
    share = np.divide(
        wide["spot"].to_numpy(dtype=float),
        total,
        out=np.full(len(total), np.nan),
        where=total > 0,
    )
    x = axis.convert(pd.Series(wide.index, dtype=float)).tolist()
    return Series(name, x, share.tolist(), colour, group=name)


def _spot_series(rows: pd.DataFrame, axis: TimeAxis) -> list[Series]:
    share = spot_share(rows, axis, "spot share", RUN_COLOURS[0])
    return [] if share is None else [share]


def _shed_series(rows: pd.DataFrame, axis: TimeAxis) -> list[Series]:
    series = []
    order = list(dict.fromkeys(rows["id"].tolist()))  # the engine writes tiers top first
    for i, tier in enumerate(order):
        group = rows.loc[rows["id"] == tier]
        x = axis.convert(group["time_s"]).tolist()
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        series.append(Series(str(tier), x, _values(group, "tasks_shed"), colour))
    return series


def level_panels(metrics: pd.DataFrame, end_s: float) -> list[Panel]:
    """The opt-in models' panels present in *metrics* (one replication), in page order."""
    axis = time_axis(end_s)
    panels = []
    tokens = level_rows(metrics, "provider")
    if not tokens.empty:
        series = _token_series(tokens, axis)
        if series:
            panels.append(_panel("panel-tokens", axis, end_s, "tokens / min", series))
    purchase = level_rows(metrics, "purchase")
    if not purchase.empty and "total_agents" in purchase.columns:
        series = _spot_series(purchase, axis)
        if series:
            panels.append(_panel("panel-spot", axis, end_s, "share on spot", series))
    tiers = level_rows(metrics, "tier")
    if not tiers.empty and "tasks_shed" in tiers.columns:
        panels.append(
            _panel("panel-shed", axis, end_s, "tasks shed / interval", _shed_series(tiers, axis))
        )
    return panels
