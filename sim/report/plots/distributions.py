"""Figures of the tasks' distribution: completed tasks per category and the latency CDF.

Task figures count only *warm* rows, the task attempts that arrived after the
warm-up, as the statistics do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.report.plots.axes import no_data, only_replication, pick_replication


def warm_tasks(tasks: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of the shown replication that arrived after the warm-up (the ones statistics use)."""
    if tasks is None or tasks.empty:
        return pd.DataFrame()
    t = only_replication(tasks, pick_replication(tasks))
    if "warm" in t.columns:
        t = t.loc[t["warm"].fillna(False).astype(bool)]
    return t


def _completed(tasks: pd.DataFrame) -> pd.DataFrame:
    if tasks.empty or "outcome" not in tasks.columns:
        return pd.DataFrame()
    return tasks.loc[tasks["outcome"] == "completed"]


def categories_figure(tasks: pd.DataFrame) -> Figure:
    """Completed tasks per category, as horizontal bars, largest on top."""
    done = _completed(warm_tasks(tasks))
    counts = (
        done["category"].astype(str).value_counts()
        if not done.empty and "category" in done.columns
        else pd.Series(dtype="int64")
    )
    height = max(2.4, 0.9 + 0.32 * len(counts))
    fig = Figure(figsize=(9.0, height), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(
        "Task distribution by category (completed, after warm-up)", fontsize=11, loc="left"
    )
    if counts.empty:
        no_data(ax)
        return fig
    counts = counts.sort_values(ascending=True, kind="stable")
    total = float(counts.sum())
    labels = [str(c) for c in counts.index]
    positions = np.arange(len(counts))
    ax.barh(positions, counts.to_numpy(dtype=float), color="#1f77b4", height=0.7)
    ax.set_yticks(positions, labels=labels, fontsize=8)
    for y, n in zip(positions, counts.to_numpy(), strict=True):
        ax.text(
            float(n), float(y), f" {int(n):,} ({100.0 * n / total:.1f} %)", va="center", fontsize=7
        )
    ax.set_xlabel("tasks completed")
    ax.set_xlim(0.0, float(counts.max()) * 1.22)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def latency_cdf_figure(tasks: pd.DataFrame) -> Figure:
    """Empirical CDF of completed tasks' latency, with p50, p95 and p99 marked."""
    done = _completed(warm_tasks(tasks))
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Latency distribution (completed, after warm-up)", fontsize=11, loc="left")
    if done.empty or "latency_s" not in done.columns:
        no_data(ax)
        return fig
    lat = pd.to_numeric(done["latency_s"], errors="coerce").to_numpy(dtype=float)
    lat = np.sort(lat[np.isfinite(lat)])
    if lat.size == 0:
        no_data(ax)
        return fig
    series: list[tuple[str, np.ndarray, str]] = [("all tasks", lat, "black")]
    if "critical" in done.columns:
        crit_mask = done["critical"].fillna(False).astype(bool).to_numpy()
        raw = pd.to_numeric(done["latency_s"], errors="coerce").to_numpy(dtype=float)
        crit = np.sort(raw[crit_mask & np.isfinite(raw)])
        if 10 <= crit.size < lat.size:
            series.append(("critical", crit, "#d62728"))
    for label, values, colour in series:
        probs = np.arange(1, values.size + 1, dtype=float) / values.size
        ax.step(
            values, probs, where="post", color=colour, lw=1.3, label=f"{label} (n={values.size:,})"
        )
    positive = lat[lat > 0]
    if positive.size and positive[-1] / positive[0] > 100.0:
        ax.set_xscale("log")
    for q, style in ((0.50, ":"), (0.95, "-."), (0.99, "--")):
        x = float(np.quantile(lat, q))
        ax.axvline(x, color="#555555", ls=style, lw=0.9)
        ax.text(
            x,
            0.02,
            f" p{round(q * 100)} = {x:.3g} s",
            rotation=90,
            fontsize=7,
            va="bottom",
            ha="right",
            transform=ax.get_xaxis_transform(),
        )
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("fraction of tasks ≤ x")
    ax.set_ylim(0.0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig
