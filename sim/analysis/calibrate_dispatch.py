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
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Quantiles the spread is written as (fewer when live has fewer free tasks).
SPREAD_POINTS = 100
#: Draws of the sum that the fixed-point steps read (a fixed seed: the fit is reproducible).
_SUM_DRAWS = 20_000
_STEPS = 8


def free_delays(tasks: pd.DataFrame) -> np.ndarray:
    """Arrival to start of the first attempts that completed and found an agent free."""
    done = tasks[(tasks["outcome"] == "completed") & (tasks["attempt"] == 1)]
    free = done[done["queue_s"] <= 0]
    delay = (free["start_s"].astype(float) - free["arrival_s"].astype(float)).dropna()
    return delay.to_numpy(dtype=float)


def median_level(tasks: pd.DataFrame) -> float:
    """The quantile of the free tasks' delays at which the median task of the whole run sits.

    0.5 over the free share: the tasks that queued wait longer than any free
    one, so with 80 % of the tasks free the run's median is the free ones'
    0.625 quantile. (0.5 when half or fewer were free.)
    """
    done = tasks[(tasks["outcome"] == "completed") & (tasks["attempt"] == 1)]
    free = len(free_delays(tasks))
    share = free / len(done) if len(done) else 0.0
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
    return float(np.quantile(delays, median_level(tasks))), len(delays)


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
