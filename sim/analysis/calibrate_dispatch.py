"""Calibration of dispatch: what live adds to a task's way from its arrival to its agent.

Scenario: a task that finds an agent free starts a moment after it arrives:
in the simulator, the links the model charges (the chief's log, the network,
the coordinators' queues); in a live fleet, also its processes being
scheduled, its broker's writes and its coordinator's intake. What live adds
is not one constant. At the spec's full fleet (x10, 2026-12-07) live's free
tasks started a median 0.12 s after arrival but a p99 1.0 s after, while a
replay charged one fitted constant started every one of them within 0.06 s
of its median: the calibrated replay's wait p50 was live's and its wait p99
a quarter of live's (``diurnal``, ``llm_tiers``, ``llm_rate_limits``).

So the overhead is fitted as a distribution: quantiles of a per-task draw
whose sum with the replay's own delays has live's distribution
(:func:`overhead_spread`), written as ``coordination.dispatch_overhead``
(``empirical``) and drawn once per submitted task. The replay's own delays
vary too (a zone across the ocean is further than one next door), so the
spread is not live's quantiles minus the replay's: it is found by
deconvolving, a few fixed-point steps on the quantiles of the sum, with a
fixed seed (the same live run calibrates to the same overlay). The constant
(:func:`dispatch_delay`) stays the one-figure summary of the fit.

A stall of live's host is not part of that spread. In a CI run of the small
LLM fleet, ten tasks arriving over 10 s were all dispatched at one instant,
the first 9.7 s late: drawn at random, such delays land on other tasks than
live's, and the task-by-task agreement fell. So live's stalls are found
first (:func:`live_stalls`: far-late tasks dispatched together), written as
``pauses`` at their times — a replay plays them as it plays live's chaos —
and the spread is fitted from the other tasks. The same stalls had made the
fitted cost of a model call five times what the other attempts paid;
:func:`far_out_fence` leaves them out of that fit too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.scenario.coordination import DispatchOverhead

#: Quantiles the spread is written as (fewer when live has fewer free tasks).
SPREAD_POINTS = 100
#: Far-late tasks dispatched within this many scenario seconds of each other: one stall.
STALL_GROUP_S = 0.25
#: A stall holds a task this many times the typical dispatch at least. Re-calibrating five
#: full-fleet runs (2026-12-07) with 2, 4 and 8: below 8 a narrow distribution's ordinary
#: jitter (and ``burst``'s dispatches late under load) came out as dozens of short stalls.
STALL_FACTOR = 8.0
#: Fewer free tasks than this: too few to tell a stall from the spread.
STALL_MIN_TASKS = 20
#: Draws of the sum that the fixed-point steps read (a fixed seed: the fit is reproducible).
_SUM_DRAWS = 20_000
_STEPS = 8


def _first_done(tasks: pd.DataFrame) -> pd.DataFrame:
    """The first attempts that completed."""
    return tasks[(tasks["outcome"] == "completed") & (tasks["attempt"] == 1)]


def _free(tasks: pd.DataFrame) -> pd.DataFrame:
    """The first attempts that completed and found an agent free."""
    done = _first_done(tasks)
    return done[done["queue_s"] <= 0]


def free_delays(tasks: pd.DataFrame, stalls: Stalls | None = None) -> np.ndarray:
    """Arrival to start of the first attempts that completed and found an agent free
    (with *stalls*: of those that did not arrive in one)."""
    free = _free(tasks)
    if stalls is not None:
        free = free[~free.index.isin(stalls.tasks)]
    delay = (free["start_s"].astype(float) - free["arrival_s"].astype(float)).dropna()
    return delay.to_numpy(dtype=float)


@dataclass(frozen=True)
class Stalls:
    """Live's stalls: when its control plane dispatched nothing, and the tasks caught in one."""

    #: (start, end) in scenario seconds: arrivals in one were all dispatched at its end.
    pauses: tuple[tuple[float, float], ...] = ()
    #: Index labels (in live's task table) of the free tasks that arrived in a stall.
    tasks: frozenset[Any] = frozenset()


def live_stalls(tasks: pd.DataFrame) -> Stalls:
    """The stalls of a live run, read from the free tasks that were dispatched far too late.

    Far too late is beyond both Tukey's far-out fence of the free tasks'
    arrival-to-dispatch lags (the upper quartile plus three interquartile
    ranges) and ``STALL_FACTOR`` times their median. Such tasks are
    grouped by when they were dispatched (within ``STALL_GROUP_S`` of each
    other: a stalled coordinator handles its backlog at once): each group is
    a stall from its first arrival until its dispatch, less the typical lag
    (which the task's draw adds back). One far-out task is a stall too, during
    which only it arrived.
    """
    free = _free(tasks)
    lag = (free["dispatch_s"].astype(float) - free["arrival_s"].astype(float)).dropna()
    if len(lag) < STALL_MIN_TASKS:
        return Stalls()
    typical = float(np.median(lag))
    late = lag[lag > max(far_out_fence(lag.to_numpy()), STALL_FACTOR * typical)]
    if late.empty:
        return Stalls()
    dispatched = free.loc[late.index, "dispatch_s"].astype(float).sort_values(kind="stable")
    arrived = free["arrival_s"].astype(float)
    pauses: list[tuple[float, float]] = []
    group: list[Any] = []
    for label, at in dispatched.items():
        if group and at - float(dispatched[group[-1]]) > STALL_GROUP_S:
            pauses.append(_pause(group, arrived, dispatched, typical))
            group = []
        group.append(label)
    pauses.append(_pause(group, arrived, dispatched, typical))
    kept = [(start, end) for start, end in pauses if end > start]
    return Stalls(tuple(kept), frozenset(late.index))


def far_out_fence(values: np.ndarray) -> float:
    """Tukey's far-out fence: the upper quartile plus three interquartile ranges.

    What lies beyond it is not the spread of a per-task cost but an episode —
    a stall of the host — which the fits here leave out of their means (a
    10-second stall in a run of 170 tasks had made the per-call cost five
    times what the other 150 attempts paid).
    """
    low, high = np.quantile(values, [0.25, 0.75])
    return float(high + 3 * (high - low))


def _pause(
    group: list[Any], arrived: pd.Series, dispatched: pd.Series, typical: float
) -> tuple[float, float]:
    start = float(arrived[group].min())
    end = float(dispatched[group].min()) - float(typical)
    return round(start, 6), round(end, 6)


def median_level(tasks: pd.DataFrame) -> float:
    """The quantile of the free tasks' delays at which the median task of the whole run sits.

    0.5 over the free share: the tasks that queued wait longer than any free
    one, so with 80 % of the tasks free the run's median is the free ones'
    0.625 quantile. (0.5 when half or fewer were free.)
    """
    return _level(len(free_delays(tasks)), len(_first_done(tasks)))


def _level(free: int, done: int) -> float:
    share = free / done if done else 0.0
    return min(1.0, 0.5 / share) if share > 0.5 else 0.5


def dispatch_delay(tasks: pd.DataFrame) -> tuple[float, int]:
    """The typical task's arrival-to-start among those that found an agent free, and the count.

    "Typical" is the free tasks' delay at :func:`median_level`. It is a
    quantile, not a mean, so a stall of the coordinator does not masquerade
    as a per-task overhead.
    """
    delays = free_delays(tasks)
    if not len(delays):
        return math.nan, 0
    level = _level(len(delays), len(_first_done(tasks)))
    return float(np.quantile(delays, level)), len(delays)


def overhead_spread(
    live: np.ndarray, simulated: np.ndarray, level: float = 0.5
) -> tuple[float, ...]:
    """Quantiles of a per-task overhead that, added to *simulated*'s delays, gives *live*'s.

    Both are free tasks' arrival-to-start delays (:func:`free_delays`). Each
    step draws the sum (the replay's delay plus an overhead at a random
    quantile), compares its quantiles with live's, and moves each overhead
    quantile by its gap; overheads stay non-negative and in order. A sum of
    independent delays is at least as spread as either, so where live's are
    narrower than the replay's own (its low end, often: live has no ocean
    between zones) no overhead matches every quantile: the last step shifts
    the spread so that the sum's quantile at *level* (the run's median task,
    :func:`median_level`) is live's, as the constant fit did. Empty when
    either run has no free task.
    """
    if not len(live) or not len(simulated):
        return ()
    points = min(SPREAD_POINTS, len(live))
    levels = (np.arange(points) + 0.5) / points
    target = np.quantile(live, levels)
    rng = np.random.default_rng(0)
    own = rng.choice(simulated, _SUM_DRAWS)
    which = rng.integers(0, points, _SUM_DRAWS)
    overhead = target - float(np.median(simulated))
    for _ in range(_STEPS):
        overhead = np.sort(np.maximum(overhead, 0.0))
        overhead -= np.quantile(own + overhead[which], levels) - target
    overhead = np.sort(np.maximum(overhead, 0.0))
    gap = float(np.quantile(own + overhead[which], level) - np.quantile(live, level))
    return tuple(round(float(x), 6) for x in np.maximum(overhead - gap, 0.0))


def dispatch_settings(
    own: DispatchOverhead,
    overhead: float,
    spread: tuple[float, ...],
    pauses: tuple[tuple[float, float], ...],
    notes: list[str],
) -> dict[str, Any]:
    """The overlay's ``coordination.dispatch_overhead``: live's spread (or, fitted from too
    little for one, its constant) and its stalls; empty when there is nothing to set.

    *own* is the recorded scenario's: a replay of it already drew that, so
    what was fitted is beyond it and is not written over it (a note says so).
    """
    if math.isnan(overhead):
        notes.append("dispatch overhead: no task found an agent free; nothing fitted")
        return {}
    if own.dist != "none" or own.pauses:
        notes.append(
            f"dispatch overhead {overhead:.4f} s beyond the recorded scenario's own "
            "coordination.dispatch_overhead: kept the scenario's, not applied"
        )
        return {}
    drawn: dict[str, Any] = {}
    if spread and max(spread) > 0:
        drawn = {"dist": "empirical", "samples": list(spread)}
    elif overhead > 0:
        drawn = {"dist": "deterministic", "mean": round(overhead, 6)}
    if pauses:
        drawn["pauses"] = [list(pause) for pause in pauses]
        notes.append(
            f"dispatch: {len(pauses)} stalls of live's control plane replayed as pauses at "
            "their times (a forecast drops coordination.dispatch_overhead.pauses)"
        )
    return drawn


def forecast_overlay(
    name: str, pauses: tuple[tuple[float, float], ...], duration_s: float
) -> dict[str, Any]:
    """``forecast.yaml``: the calibrated scenario for runs other than the replay of this one.

    A replay plays live's stalls at their times (``pauses``); another day's
    stalls come when they come, so the forecast drops the pauses and draws
    stalls at live's rate, each one of live's lengths (``stalls``).
    Returns the document and its notes.
    """
    document: dict[str, Any] = {"extends": "calibrated.yaml", "name": f"{name}-forecast"}
    if not pauses or duration_s <= 0:
        return {"document": document, "notes": ["forecast: live had no stall; the replay's fit"]}
    rate = len(pauses) / duration_s * 3600.0
    lengths = [round(end - start, 6) for start, end in pauses]
    document["coordination"] = {
        "dispatch_overhead": {
            "pauses": [],
            "stalls": {"rate_per_hour": round(rate, 6), "durations": lengths},
        }
    }
    note = (
        f"forecast: live's {len(pauses)} stalls drawn at random, {rate:.3g} an hour, "
        f"{min(lengths):.3g}-{max(lengths):.3g} s long (the replay plays them at their times)"
    )
    return {"document": document, "notes": [note]}
