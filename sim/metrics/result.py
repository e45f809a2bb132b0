"""One run's records in the shared format, whichever shell produced them.

The simulator and the live adapter both hand back a ``RunResult``; summary,
report, compare, replay and calibrate read it without knowing which shell
wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sim.scenario.schema import Scenario


@dataclass(frozen=True)
class RunResult:
    """Everything one replication produced, in the shared record format.

    ``sim_events`` is the number of SimPy events a simulation scheduled (0
    for a live run); ``wall_s`` is the wall time the run took.
    """

    scenario: Scenario
    replication: int
    tasks: pd.DataFrame
    metrics: pd.DataFrame
    events: pd.DataFrame
    agents: pd.DataFrame
    jobs: pd.DataFrame
    counts: dict[str, int]
    events_sha256: str
    wall_s: float
    sim_events: int
    #: One row per attempt that ran as model calls (None: the scenario has no llm section).
    llm: pd.DataFrame | None = None
    #: One row per independent task with its tier, tenant and admission (None: no tiers section).
    tiers: pd.DataFrame | None = None
    #: One row per autoscaler evaluation (None: autoscaling is off in this scenario).
    scaling: pd.DataFrame | None = None
