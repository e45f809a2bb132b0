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

import numpy as np
import pandas as pd


def handoff_gaps(tasks: pd.DataFrame, events: pd.DataFrame | None = None) -> pd.Series:
    """Seconds from an attempt's end to the next start on its agent, where that work waited.

    A hand-off counts when the next attempt on the same agent is of a task
    that had arrived before the previous attempt ended and had queued: it
    was waiting when the slot was freed, so the gap is the hand-off and not
    an idle slot waiting for an arrival. The previous attempt must have
    completed (a killed agent's restart is not a hand-off), and with
    *events* no event of the agent's own (``agent_*``: killed, detected,
    drained, left, back) may fall between the two: an agent killed idle and
    restarted a start-up later is not a hand-off either. With several slots
    an agent's next start follows the latest end before it: under a queue
    every freed slot pulls at once, so that end is the slot's.
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
    kept = previous_done & waited & gaps.notna() & (gaps >= 0)
    if events is not None:
        kept &= ~_lived_between(ordered["agent"], previous_end, ordered["start_s"], events)
    return gaps[kept].reset_index(drop=True)


def _lived_between(
    agents: pd.Series, since: pd.Series, until: pd.Series, events: pd.DataFrame
) -> pd.Series:
    """Whether an event of each row's agent falls strictly between *since* and *until*."""
    own = events[events["kind"].astype(str).str.startswith("agent_")]
    times = {
        str(agent): np.sort(group["time_s"].to_numpy(dtype=float))
        for agent, group in own.groupby(own["subject"].astype(str), sort=False)
    }
    out = pd.Series(False, index=agents.index)
    for agent, rows in agents.groupby(agents, sort=False).groups.items():
        at = times.get(str(agent))
        if at is None:
            continue
        first_after = np.searchsorted(at, since.loc[rows].to_numpy(dtype=float), side="right")
        first_at_end = np.searchsorted(at, until.loc[rows].to_numpy(dtype=float), side="left")
        out.loc[rows] = first_after < first_at_end
    return out
