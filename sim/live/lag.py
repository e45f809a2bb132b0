"""How far behind the scenario clock the live shell runs, and whether that is too far.

Scenario: at ``--time-scale 60`` a health interval of 10 s lasts 0.17 wall
seconds. On a small machine running a large fleet the coordinator's event
loop wakes late, reads heartbeats late and handles stream messages late; left
unmeasured, its own lag reads as agents dying. This module only keeps the
books (no clock, no I/O: the shell passes wall times in):

* **event-loop lag** — how late a sleeping loop woke (a probe, and the
  coordinator's periodic loops);
* **heartbeat processing age** — wall time from an agent writing its
  heartbeat to the coordinator having read it, and how stale the fleet's
  heartbeats are as a whole (a fleet that is stale together is the machine,
  not the agents);
* **follow lag** — scenario time from a message's own time stamp to the
  coordinator handling it.

At each probe tick the largest current lag is one sample. The run is
*behind* when the median sample over a trailing window (at least six
health intervals and five wall seconds, or the whole run when it is shorter)
exceeds the budget, stated in scenario seconds (a fraction of the health
interval). A one-off stall (a GC pause, a broker restart) moves the median
of a window very little; a machine that cannot keep up moves it for good.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

#: Samples kept per series (a long run keeps the most recent).
_KEEP = 200_000
#: What a lag sample measured (named in the verdict's message).
LOOP = "its event loop waking late"
FLEET = "the fleet's heartbeats read late together"
FOLLOW = "stream messages handled late after their time stamps"
#: The shortest period (wall s) of any live loop — heartbeats, health rounds, probes: at a
#: time-scale that asks for faster the run cannot keep up anyway, and spinning loops would
#: only take the CPU from the rest.
MIN_PERIOD_S = 0.005


@dataclass(frozen=True)
class LagBudget:
    """The bound a live run must keep, in scenario seconds, and how it is judged."""

    time_scale: float  # scenario seconds per wall second
    budget_s: float  # scenario seconds of sustained lag allowed
    fraction: float  # budget_s as a fraction of the health interval (for the message)
    window_wall_s: float  # the trailing window the median is taken over

    @classmethod
    def for_interval(cls, time_scale: float, interval_s: float, fraction: float = 0.5) -> LagBudget:
        """The budget for a health interval: *fraction* of it, judged over >= 6 intervals.

        The window is at least five wall seconds: a neighbour taking the CPU for a
        second or two (a CI machine, a GC pause, a broker restart) is not a machine
        that cannot keep up; a backlog that keeps growing is.
        """
        window = max(6.0 * interval_s / time_scale, 5.0)
        return cls(time_scale, fraction * interval_s, fraction, window)

    @property
    def budget_wall_s(self) -> float:
        return self.budget_s / self.time_scale


class LagMonitor:
    """The lag books of one live run (see the module docstring)."""

    def __init__(self, budget: LagBudget) -> None:
        self.budget = budget
        self.loop_wall_s: deque[float] = deque(maxlen=_KEEP)
        self.heartbeat_age_wall_s: deque[float] = deque(maxlen=_KEEP)
        self.follow_s: deque[float] = deque(maxlen=_KEEP)
        #: (wall time, current lag in wall s, its source) at each probe tick.
        self.samples: deque[tuple[float, float, str]] = deque(maxlen=_KEEP)
        self.abstained_rounds = 0
        #: (agent, scenario time) of each death verdict a later beat of the same process refuted.
        self.false_detections: list[tuple[str, float]] = []
        self._current = 0.0  # the largest lag seen since the last tick (wall s)
        self._source = LOOP  # what measured it
        self._first_tick: float | None = None

    # ------------------------------------------------------------------ measurements

    def loop(self, late_wall_s: float) -> None:
        """A loop that slept woke *late_wall_s* after it was due."""
        late = max(0.0, late_wall_s)
        self.loop_wall_s.append(late)
        self._note(late, LOOP)

    def heartbeat_age(self, age_wall_s: float) -> None:
        """One heartbeat read *age_wall_s* after its agent wrote it."""
        self.heartbeat_age_wall_s.append(max(0.0, age_wall_s))

    def fleet_stale(self, excess_wall_s: float) -> None:
        """The fleet's heartbeats were stale together by *excess_wall_s* beyond their period."""
        self._note(excess_wall_s, FLEET)

    def follow(self, lag_s: float) -> None:
        """A stream message handled *lag_s* scenario seconds after its own time stamp."""
        lag = max(0.0, lag_s)
        self.follow_s.append(lag)
        self._note(lag / self.budget.time_scale, FOLLOW)

    def _note(self, lag_wall_s: float, source: str) -> None:
        if lag_wall_s > self._current:
            self._current, self._source = lag_wall_s, source

    def false_detection(self, agent_id: str, declared_s: float) -> None:
        """An agent declared dead beat again from the same process: the verdict was the lag's."""
        self.false_detections.append((agent_id, declared_s))

    def abstained(self) -> None:
        """A health round gave no verdict because it ran late."""
        self.abstained_rounds += 1

    def tick(self, wall: float) -> None:
        """A probe point: the largest lag since the last one becomes a sample."""
        if self._first_tick is None:
            self._first_tick = wall
        self.samples.append((wall, self._current, self._source))
        self._current, self._source = 0.0, LOOP

    # ------------------------------------------------------------------ verdict

    def observed_wall_s(self, wall: float, *, whole_run: bool = False) -> float | None:
        """The median lag (wall s) over the trailing window, or None when not judged yet.

        Until a whole window has passed there is no verdict, unless *whole_run*
        (the run is over): then the median of every sample, if there are a few.
        """
        if self._first_tick is None:
            return None
        start = wall - self.budget.window_wall_s
        if start >= self._first_tick:
            window = [lag for t, lag, _ in self.samples if t >= start]
        elif whole_run and len(self.samples) >= 5:
            window = [lag for _, lag, _ in self.samples]
        else:
            return None
        return float(np.median(window)) if window else None

    def dominant_source(self, wall: float) -> str:
        """What measured most of the lag over the trailing window (the whole run if shorter):
        the diagnosis a user needs (a starved loop, or a backlog of messages)."""
        start = wall - self.budget.window_wall_s
        totals: dict[str, float] = {}
        for t, lag, source in self.samples:
            if t >= start:
                totals[source] = totals.get(source, 0.0) + lag
        return max(totals, key=lambda k: totals[k]) if totals else LOOP

    def behind(
        self, wall: float, *, whole_run: bool = False, scenario_s: float | None = None
    ) -> str | None:
        """The one-line message when the run cannot keep up, else None (with *scenario_s*,
        the scenario second it was judged at: where in the run to look).

        A death verdict that the agent's own later beats refuted is the
        plainest sign: heartbeats arrived later than the detector allows,
        whatever the medians say, so the run is not a measurement.
        """
        observed = self.observed_wall_s(wall, whole_run=whole_run)
        budget = self.budget
        if self.false_detections:
            first, at = self.false_detections[0]
            count = len({agent for agent, _ in self.false_detections})
            when = (
                f"{at:.0f} s" if at >= 0 else f"{-at:.0f} s before the start, as the fleet came up"
            )
            return (
                f"live run: this machine cannot keep up at --time-scale {budget.time_scale:g}: "
                f"{count} agent(s) were declared dead while still alive (first {first} at "
                f"{when}; their heartbeats arrived late, not missing); run at a smaller "
                "--time-scale"
            )
        if observed is None or observed <= budget.budget_wall_s:
            return None
        scale = budget.time_scale
        sustained = _two_digits_down(budget.budget_s / observed)
        where = "" if scenario_s is None else f" at {scenario_s:.0f} s"
        return (
            f"live run: this machine cannot keep up at --time-scale {scale:g}: the coordinator "
            f"ran {observed * scale:.3g} s (scenario) behind{where}, sustained (median over "
            f"{budget.window_wall_s:.3g} wall s; mostly {self.dominant_source(wall)}), over "
            f"the budget of {budget.budget_s:g} s "
            f"({budget.fraction:g} of the health interval); the largest time-scale it "
            f"sustains is about {sustained:g} (time-scale x budget / observed lag)"
        )

    def figures(self) -> dict[str, object]:
        """The lag figures ``summary["live"]["lag"]`` records (wall ms and scenario s)."""
        scale = self.budget.time_scale
        loop = np.asarray(self.loop_wall_s, dtype=float)
        ages = np.asarray(self.heartbeat_age_wall_s, dtype=float)
        follow = np.asarray(self.follow_s, dtype=float)
        return {
            "budget_s": self.budget.budget_s,
            "window_wall_s": self.budget.window_wall_s,
            "event_loop_ms": _stats(loop * 1000.0),
            "event_loop_s": _stats(loop * scale),
            "heartbeat_age_ms": _stats(ages * 1000.0),
            "follow_s": _stats(follow),
            "abstained_rounds": self.abstained_rounds,
            "false_detections": len(self.false_detections),
        }


def _stats(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"max": 0.0, "p99": 0.0, "count": 0}
    return {
        "max": float(values.max()),
        "p99": float(np.percentile(values, 99)),
        "count": int(values.size),
    }


def _two_digits_down(value: float) -> float:
    """*value* rounded down to two significant digits (an estimate is not precise)."""
    if value <= 0 or not math.isfinite(value):
        return 0.0
    step = 10.0 ** (math.floor(math.log10(value)) - 1)
    return math.floor(value / step) * step
