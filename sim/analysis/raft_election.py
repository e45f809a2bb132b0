"""The Raft paper's leader-election experiment, run in the simulator.

Ongaro and Ousterhout (USENIX ATC 2014, section 9.3, Figure 16) crashed the
leader of a five-server cluster, at a uniformly random point of its
heartbeat interval (half the minimum election timeout), and measured the
time until a new leader was elected, for several ranges of randomised
election timeouts. This module repeats that with the simulator's control
plane: five chiefs, one region, the leader crashed and restarted over and
over in one run, each downtime read from the event log.
"""

from __future__ import annotations

import numpy as np

from sim.model.engine import run_scenario
from sim.scenario.load import scenario_from_dict

#: What the paper reports in its text (section 9.3), for comparison.
PAPER = {
    "150-150ms": "longer than 10 s in every trial (split votes)",
    "150-155ms": "median 287 ms",
    "150-200ms": "worst case 513 ms over 1,000 trials",
    "12-24ms": "mean 35 ms, longest 152 ms",
}


def election_downtimes(
    low_ms: float,
    high_ms: float,
    trials: int,
    *,
    seed: int = 1,
    rtt_ms: float | None = None,
    jitter_cv: float = 0.1,
    tick_ms: float | None = None,
) -> np.ndarray:
    """Seconds from each leader crash to the next leader, for *trials* crashes.

    The round trip defaults to the paper's broadcast time of about 15 ms,
    capped at a tenth of the minimum timeout so that Raft's timing
    requirement (broadcast time << election timeout, §5.6) holds for the small
    ranges too. Ticks are fine enough for twenty distinct timeouts in the range.
    A crash whose cluster elects nobody before the next crash counts as NaN.
    """
    rtt_ms = min(15.0, low_ms / 10) if rtt_ms is None else rtt_ms
    spread = max(high_ms - low_ms, 1.0)
    tick_ms = min(1.0, spread / 20) if tick_ms is None else tick_ms
    spacing = 3.0 + 20 * high_ms / 1000.0
    chaos = [
        {
            "at": 5.0 + k * spacing,
            "coordinator_crash": "leader",
            "restart_after": 1.0 + high_ms / 100,
        }
        for k in range(trials)
    ]
    scenario = scenario_from_dict(
        {
            "name": f"raft_election_{low_ms:g}_{high_ms:g}",
            "seed": seed,
            "duration": 5.0 + trials * spacing + 1.0,
            "warmup": 0,
            "topology": {
                "control_plane": {
                    "chiefs": 5,
                    "tick": tick_ms / 1000.0,
                    "election_timeout": [low_ms / 1000.0, high_ms / 1000.0],
                    "heartbeat": low_ms / 2000.0,
                    "pre_vote": False,
                    "fsync": 0.0,
                },
                "zones": [{"name": "A", "region": "us-east-1", "team_leads": 1}],
                "specialists": 1,
                "categories": {"Generic": 1},
            },
            "workload": {"arrivals": {"rate_per_min": 0}, "dags": {"rate_per_min": 0}},
            "network": {"intra_region_rtt_ms": rtt_ms, "jitter_cv": jitter_cv},
            "scaling": {"auto_scale": {"enabled": False}},
            "alerts": {},
            "metrics": {"agent_level": [], "interval": 600},
            "chaos": chaos,
        }
    )
    events = run_scenario(scenario).events
    crashes = events.loc[events["kind"] == "coordinator_crash", "time_s"].to_numpy()
    elected = events.loc[events["kind"] == "leader_elected", "time_s"].to_numpy()
    downtimes = []
    for k, crashed in enumerate(crashes):
        until = crashes[k + 1] if k + 1 < len(crashes) else np.inf
        after = elected[(elected > crashed) & (elected < until)]
        downtimes.append(after[0] - crashed if len(after) else np.nan)
    return np.asarray(downtimes, dtype=float)
