"""Chaos ``join`` live: a specialist that starts itself joins the real fleet and serves.

On a real broker at x20: at 60 s a CodeGen agent of zone A is started, with
no reserve pool asked. It joins once its process is up and has said so,
takes work from then on, and the run's log holds the join as chaos; the
replay of that log joins the agent when live's did (not when it was
started: the simulator's joining agent takes no start-up).
"""

from __future__ import annotations

from pathlib import Path

from conftest import exactly_once, run_live, small

from sim.model.engine import run_scenario
from sim.replay import chaos_from_events, replay_scenario

AGENT = "A-CodeGen-x001"
JOIN = (
    f'chaos=[{{"at": "60s", "join": {{"zone": "A", "category": "CodeGen", "agent": "{AGENT}"}}}}]'
)


def test_a_joining_agent_serves_from_its_join_and_its_replay_joins_it_then(
    tmp_path: Path,
) -> None:
    scenario = small("duration=3m", "topology.specialists=8", JOIN)
    live = run_live(scenario, tmp_path, time_scale=20.0)
    exactly_once(live)
    events, tasks = live.result.events, live.result.tasks
    chaos = events[events["kind"] == "chaos"]
    assert chaos["subject"].tolist() == ["join"]
    joined = events[(events["kind"] == "agent_joined") & (events["subject"] == AGENT)]
    assert len(joined) == 1
    joined_s = float(joined["time_s"].iloc[0])
    assert 60.0 <= joined_s < 120.0  # its process's start-up, then its first heartbeat
    served = tasks[tasks["agent"] == AGENT]
    assert len(served) >= 1 and (served["start_s"] >= joined_s - 1.0).all()
    assert "agent_requested" not in set(events["kind"])  # nothing asked of the reserve pool

    timeline = chaos_from_events(events)
    assert [(e.at, e.join and e.join.agent) for e in timeline] == [(joined_s, AGENT)]
    replayed = run_scenario(replay_scenario(scenario, timeline))
    agents = replayed.agents.set_index("agent")
    assert agents.loc[AGENT, "joined_s"] == joined_s
    # In the same team in both: a join takes the zone's teams in turn, as neither's reserve.
    live_team = live.result.agents.set_index("agent").loc[AGENT, "team"]
    assert live_team == agents.loc[AGENT, "team"] == "A-T01"
    on_it = replayed.tasks[replayed.tasks["agent"] == AGENT]
    assert len(on_it) >= 1 and (on_it["start_s"] >= joined_s).all()
