"""Failure detection: the replay declares each failed agent when live declared it.

Scenario: a zone goes dark and its 43 agents die at one instant. Live's
coordinator declares each of them when its heartbeats have been missing
long enough, and the heartbeats' phases are the agent processes' own: the
order they started in. The simulator checks each agent at a phase drawn
from the seed (``check_phases``). So the two declared the same agents in
different orders, up to an interval apart, and the replacements, requested
as each is declared, went to other pools first: in a full-fleet zone outage
only a fifth of the tasks after it ran on the same agent live and replayed.

The fit pins each failed agent's phase (``health.phases``) to the one at
which the scenario's own detector (``failure_detector``, both shells' rule)
declares it closest to live's instant, searched on the detector's analytic
face, so either detector is fitted the same way. An agent's first failure
fits its phase; later ones keep it, as a live process keeps its beat. Only
agents of the initial fleet are pinned: the ones the provisioner started
have other names in the replay.
"""

from __future__ import annotations

import pandas as pd

from sim.scenario.health import Health
from sim.world.policy_set import failure_detector

#: Phases tried per pass: a coarse pass over the interval, then passes around the best,
#: each as many points over twice the last pass's step (for a 60 s interval: 30 µs).
SEARCH_POINTS = 200
REFINEMENTS = 2


def failures_detected(live: pd.DataFrame, replayed: pd.DataFrame) -> list[tuple[str, float, float]]:
    """(agent, failed at in the replay, declared at live) for each agent's first failure.

    The failure is the replay's (the same chaos, at its own instant, a few
    milliseconds from live's), so that the phase fitted lands the replay's
    declaration on live's however near a check the two failures fell.
    """
    failed = replayed[replayed["kind"] == "agent_failed"].sort_values("time_s", kind="stable")
    declared = live[live["kind"] == "agent_detected"]
    declared_at: dict[str, list[float]] = {}
    for agent, at in zip(declared["subject"].astype(str), declared["time_s"], strict=True):
        declared_at.setdefault(agent, []).append(float(at))
    first_failure: dict[str, float] = {}
    for agent, at in zip(failed["subject"].astype(str), failed["time_s"], strict=True):
        first_failure.setdefault(agent, float(at))
    out = []
    for agent, failed_s in first_failure.items():
        later = [at for at in declared_at.get(agent, ()) if at >= failed_s]
        if later:
            out.append((agent, failed_s, min(later)))
    return out


def fitted_phase(agent: str, failed_s: float, declared_s: float, health: Health) -> float:
    """The phase at which *health*'s detector declares *agent* nearest *declared_s*."""
    interval = health.interval

    def miss(phase: float) -> float:
        detector = failure_detector(health, lambda _agent: phase)
        return abs(detector.detection_time(agent, failed_s) - declared_s)

    step = interval / SEARCH_POINTS
    best = min((k * step for k in range(SEARCH_POINTS)), key=miss)
    for _ in range(REFINEMENTS):  # each pass searches the best's neighbourhood, finer
        span, step = step, 2 * step / SEARCH_POINTS
        around = (_wrap(best - span + k * step, interval) for k in range(SEARCH_POINTS + 1))
        best = min(around, key=miss)
    return _wrap(round(best, 6), interval)


def _wrap(phase: float, interval: float) -> float:
    """*phase* in [0, interval) (a float's modulo can land on the interval itself)."""
    phase %= interval
    return phase if phase < interval else 0.0


def detection_phases(
    live_events: pd.DataFrame,
    live_agents: pd.DataFrame,
    replayed_events: pd.DataFrame,
    health: Health,
) -> dict[str, float]:
    """Each failed agent of the initial fleet's fitted phase (``health.phases``), by id."""
    provisioned = set(live_agents.loc[live_agents["from_reserve"].astype(bool), "agent"])
    return {
        agent: fitted_phase(agent, failed_s, declared_s, health)
        for agent, failed_s, declared_s in failures_detected(live_events, replayed_events)
        if agent not in provisioned
    }


def pin_phases(
    document: dict[str, object], notes: list[str], phases: dict[str, float], health: Health
) -> None:
    """Put the fitted phases in the overlay (beside any the recorded scenario pinned)."""
    if not phases:
        notes.append("detection: no agent of the initial fleet failed and was declared live")
        return
    section = document.setdefault("health", {})
    assert isinstance(section, dict)
    section["phases"] = {**health.phases, **dict(sorted(phases.items()))}
