"""A soak's random failures (``chaos_random``), live: the simulator's draws, on the real fleet.

Live had ignored ``chaos_random``: a soak scenario ran live with no failure at
all. The draws are one function for both shells (``sim.world.random_chaos``),
and each failure is an ordinary chaos event, so the live run kills (and
restarts) the very agents the simulator would, at the same times, and its
replay reads them back from the event log.
"""

from __future__ import annotations

from pathlib import Path

from conftest import exactly_once, run_live, small, timing_slack

from sim.replay import chaos_from_events
from sim.world.random_chaos import random_failures
from sim.world.streams import Streams
from sim.world.topology import build_world


def test_a_soaks_random_failures_hit_the_agents_the_simulator_draws(tmp_path: Path) -> None:
    scenario = small(
        "duration=4m",
        "topology.specialists=16",
        "workload.arrivals.rate_per_min=40",
        'chaos_random={"enabled": true, "agent_mtbf": "15m", "agent_mttr": "40s", "start": "30s"}',
    )
    planned = random_failures(
        scenario, build_world(scenario, Streams(scenario.seed, 0).get("world"))
    )
    assert len(planned) >= 2  # (the seed's draw: a test of something)
    live = run_live(scenario, tmp_path, time_scale=40.0, agents_mode="simulated")
    exactly_once(live)
    events = live.result.events
    # A kill cannot come sooner than the run's event loop gets to it (timing_slack).
    jitter = timing_slack(live, 40.0)
    played = sorted(chaos_from_events(events), key=lambda e: e.at)  # what a replay plays
    expected = sorted(planned, key=lambda e: e.at)
    kills = [(e.at, e.restart_after, e.kill.agents) for e in expected if e.kill and e.kill.agents]
    assert len(kills) == len(expected)  # (agents only: no chief or zone MTBF here)
    assert [e.kill.agents for e in played if e.kill] == [agents for _, _, agents in kills]
    for done, plan in zip(played, expected, strict=True):
        assert abs(done.at - plan.at) < jitter and done.restart_after == plan.restart_after
    failed = events[events["kind"] == "agent_failed"]
    assert sorted(failed["subject"]) == sorted(a for _, _, agents in kills for a in agents)
    # Back under their ids after the repair, serving again, as the simulator's restarted
    # agents are (declared dead and rejoined, or back before the checks noticed). Which of
    # them the balancer hands work in the run's last minute is chance: at least one.
    tasks = live.result.tasks
    back = [(agents[0], at + (repair or 0.0)) for at, repair, agents in kills]
    back = [(agent, back_s) for agent, back_s in back if back_s < 230.0]
    assert len(back) >= 2
    served_again = [
        agent
        for agent, back_s in back
        if not tasks[(tasks["agent"] == agent) & (tasks["start_s"] > back_s)].empty
    ]
    assert served_again, back
