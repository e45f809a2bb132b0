"""Calibration of the hand-off: how long a freed slot waits for work that was queued.

Scenario: under a queue, each agent finishes a task and takes the next one
in a loop, and the queue drains at the pace of that loop. In the simulator a
freed slot pulls its zone's queue (a gRPC round trip, the coordinators'
queues): a few milliseconds. A live fleet's hand-off is longer: the agent's
result is a stream write, the coordinator reads it, books it and routes the
next task, whose message is another stream write the agent then reads. At
the spec's full fleet (x10, the ``burst`` case) live's slots stood 0.255 s
on average between tasks, against the replay's 0.019 s. A slot serving
40-second tasks loses about 0.6 % of its capacity to that, and a queue of a
few hundred tasks drains seconds later: live's waits ran 2-5 s longer than
the replay's, task by task, while the queue lasted.

So ``orchestra calibrate`` measures every hand-off of both runs and sets
``coordination.handoff_overhead`` to the difference of their means. A mean,
not a quantile: what a slot loses per task is its mean hand-off, tail (a
busy coordinator) included. And one constant, not live's gaps drawn at
random: on the burst case the constant put 64 % of the tasks within 1 s of
their live latency, and random draws of live's own gaps 60 % (a draw does
not know which of live's hand-offs was the slow one), for the same mean.
"""

from __future__ import annotations

import math

import pandas as pd


def handoff_gaps(tasks: pd.DataFrame) -> pd.Series:
    """Seconds from an attempt's end to the next start on its agent, where that work waited.

    A hand-off counts when the next attempt on the same agent is of a task
    that had arrived before the previous attempt ended and had queued: it
    was waiting when the slot was freed, so the gap is the hand-off and not
    an idle slot waiting for an arrival. The previous attempt must have
    completed (a killed agent's restart is not a hand-off). With several
    slots an agent's next start follows the latest end before it: under a
    queue every freed slot pulls at once, so that end is the slot's.
    """
    started = tasks[tasks["start_s"].astype(float) >= 0]
    ordered = started.assign(agent=started["agent"].astype(str)).sort_values(
        ["agent", "start_s"], kind="stable"
    )
    by_agent = ordered.groupby("agent", sort=False)
    previous_end = by_agent["end_s"].shift().astype(float)
    previous_done = by_agent["outcome"].shift().astype(str) == "completed"
    waited = (ordered["arrival_s"].astype(float) < previous_end) & (
        ordered["queue_s"].astype(float) > 0
    )
    gaps = ordered["start_s"].astype(float) - previous_end
    return gaps[previous_done & waited & gaps.notna() & (gaps >= 0)].reset_index(drop=True)


def handoff_delay(tasks: pd.DataFrame) -> tuple[float, int]:
    """The mean hand-off of *tasks* (seconds; NaN with none) and how many there were."""
    gaps = handoff_gaps(tasks)
    if not len(gaps):
        return math.nan, 0
    return float(gaps.mean()), len(gaps)
