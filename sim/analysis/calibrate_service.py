"""Calibration of service: how much longer live's agents took than the work they drew.

Scenario: a live agent serves a task's drawn work at its speed, plus what a
real process adds (its loop, its clock). ``orchestra calibrate`` compares
each completed task's service with its work at the agent's speed and scales
the replay's service means by the ratio of sums, leaving out what the
replay plays itself: a chaos slowdown, and tasks served as model calls.
"""

from __future__ import annotations

import json
import math

import pandas as pd


def slow_windows(events: pd.DataFrame) -> list[tuple[str, float, float, float]]:
    """(agent, from, until, factor) of every chaos ``slow`` the run recorded, by its agents."""
    windows = []
    chaos = events[(events["kind"] == "chaos") & (events["subject"] == "slow")]
    for detail in chaos["detail"]:
        event = json.loads(str(detail)).get("event", {})
        slow, at = event.get("slow") or {}, float(event.get("at", math.nan))
        until = at + float(event.get("duration") or math.inf)
        for agent in slow.get("agents") or []:
            windows.append((str(agent), at, until, float(slow.get("factor", 1.0))))
    return windows


def service_factor(
    tasks: pd.DataFrame,
    agents: pd.DataFrame,
    events: pd.DataFrame | None = None,
    by_calls: frozenset[str] = frozenset(),
) -> tuple[float, int]:
    """Observed service time over drawn work at the agent's speed (ratio of sums).

    Tasks of the categories *by_calls* serve as long as their model calls
    take, not their drawn work, and are left out: their service over work is
    the anatomy's, not an overhead. (Left in, the LLM fleet's run fitted a
    factor of 0.78, and the replay scaled every drawn work by it.)

    An attempt started on an agent a chaos ``slow`` had turned gray is
    expected to take the slowdown's factor times as long: the replay plays
    the same chaos, so the slowdown is the model's, not an overhead. (Left
    in, a third of a zone slowed threefold for 4 minutes of 10 fitted a
    service factor of 1.038 at the spec's fleet, and the replay served every
    task 3.8 % longer on top of the slowdown it already played.)
    """
    speed = agents.drop_duplicates("agent").set_index("agent")["speed"].astype(float)
    done = tasks[tasks["outcome"] == "completed"]
    if by_calls:
        done = done[~done["category"].astype(str).isin(by_calls)]
    if done.empty:
        return math.nan, 0
    expected = done["work_s"].astype(float) / done["agent"].astype(str).map(speed)
    if events is not None:
        on, started = done["agent"].astype(str), done["start_s"].astype(float)
        for agent, since, until, factor in slow_windows(events):
            inside = (on == agent) & (started >= since) & (started < until)
            expected = expected.where(~inside, expected * factor)
    usable = expected.notna() & (expected > 0)
    total = float(expected[usable].sum())
    if total <= 0:
        return math.nan, 0
    return float(done.loc[usable, "service_s"].sum()) / total, int(usable.sum())
