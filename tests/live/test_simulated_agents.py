"""Simulated agents (``--agents-mode simulated``): the real broker and coordinators, one process.

The fleet is the same ``LiveAgent`` code as an agent process, many to a
process; these tests hold it to the process fleet's contract: every task
exactly once, the same records, kill -9 detected and its tasks placed anew,
autoscaling that starts (and drains) simulated agents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from conftest import (
    HERE,
    detection_bound,
    exactly_once,
    no_task_waited_on_a_dead_agent,
    run_live,
    small,
)

from sim.live.runtime import LiveRun
from sim.policies.placement import team_for
from sim.runner import run
from sim.scenario.load import load_scenario


def shape(node: Any) -> Any:
    """The key tree of a summary (values dropped): what a reader of summary.json relies on."""
    if isinstance(node, dict):
        return {key: shape(value) for key, value in node.items()}
    return None


def tables(run: LiveRun) -> dict[str, pd.DataFrame]:
    result = run.result
    return {
        "tasks": result.tasks,
        "metrics": result.metrics,
        "events": result.events,
        "agents": result.agents,
        "jobs": result.jobs,
    }


def test_simulated_fleet_runs_every_task_once_with_the_records_of_process_mode(
    tmp_path: Path,
) -> None:
    scenario = small("duration=4m", "topology.specialists=8", "workload.arrivals.rate_per_min=30")
    process = run_live(scenario, tmp_path / "process", time_scale=60.0)
    simulated = run_live(scenario, tmp_path / "simulated", time_scale=60.0, agents_mode="simulated")
    exactly_once(process)
    exactly_once(simulated)
    # The same arrivals (same generators, same seed), all of them served.
    assert simulated.summary["tasks"]["submitted"] == process.summary["tasks"]["submitted"]
    # The same files with the same meaning: summary keys, table columns and types.
    assert shape(simulated.summary) == shape(process.summary)
    for name, frame in tables(process).items():
        other = tables(simulated)[name]
        assert list(other.columns) == list(frame.columns), name
        assert other.dtypes.astype(str).to_dict() == frame.dtypes.astype(str).to_dict(), name
    agents = simulated.result.agents
    assert len(agents[agents["role"] == "specialist"]) == 8
    events = simulated.result.events
    assert (events["kind"] == "agent_joined").sum() == 8  # each heartbeat its own key
    done = simulated.result.tasks
    assert done.loc[done["outcome"] == "completed", "agent"].nunique() == 8  # all served
    # No agent process was started: a process fleet leaves one log per agent, this none.
    assert len(list((tmp_path / "process" / "logs").glob("*.log"))) == 8
    assert not list((tmp_path / "simulated" / "logs").glob("*.log"))


def test_killed_simulated_agents_are_detected_and_their_tasks_placed_anew(tmp_path: Path) -> None:
    scenario = small(
        "duration=8m",
        "topology.specialists=16",
        "workload.arrivals.rate_per_min=40",
        "health.interval=20s",
        'chaos=[{"at": "3m", "kill": {"category": "CodeGen", "count": 3}}]',
    )
    run = run_live(scenario, tmp_path, time_scale=40.0, agents_mode="simulated")
    exactly_once(run)
    events, tasks = run.result.events, run.result.tasks
    failed = events[events["kind"] == "agent_failed"]
    victims = set(failed["subject"])
    assert len(victims) == 3
    detected = events[events["kind"] == "agent_detected"].set_index("subject")
    assert set(detected.index) == victims  # the victims, and no false detection
    bound = detection_bound(run, scenario)
    for row in failed.itertuples(index=False):
        delay = float(detected.loc[row.subject, "time_s"]) - float(row.time_s)
        assert 0 < delay <= bound, (row.subject, delay, bound)
    retried = tasks[(tasks["outcome"] == "retried") & tasks["agent"].isin(victims)]
    assert len(retried) >= 1  # a victim died holding a task...
    redone = tasks[tasks["task_id"].isin(retried["task_id"]) & (tasks["outcome"] == "completed")]
    assert len(redone) == retried["task_id"].nunique()  # ...which completed once, elsewhere
    assert not set(redone["agent"]) & victims
    kill_s = float(failed["time_s"].min())
    assert not set(tasks.loc[tasks["start_s"] > kill_s + 1.0, "agent"]) & victims
    no_task_waited_on_a_dead_agent(tasks)  # (the fleet answers "gone" for its dead)


def test_autoscaling_starts_and_drains_simulated_agents(tmp_path: Path) -> None:
    scenario = load_scenario(HERE / "burst.yaml")
    live = run_live(scenario, tmp_path, time_scale=60.0, agents_mode="simulated")
    exactly_once(live)
    events, agents = live.result.events, live.result.agents
    started = agents[(agents["role"] == "specialist") & agents["from_reserve"]]
    assert len(started) == 6  # the scale-up became six simulated agents that heartbeat
    requested = set(events.loc[events["kind"] == "agent_requested", "subject"])
    joined = set(events.loc[events["kind"] == "agent_joined", "subject"])
    assert len(requested) == 6 and requested <= joined
    left = events[events["kind"] == "agent_left"]
    drained = left[left["time_s"] <= scenario.duration]
    assert len(drained) == 6  # each drained agent finished its work and said offline
    scale = events[events["kind"] == "scale"]
    assert len(scale) == 4  # +6 then three -2, as the process fleet does


def test_agents_the_autoscaler_starts_join_the_teams_the_simulator_gives(tmp_path: Path) -> None:
    """A burst scales up by six: live and simulated, the new agents take the zone's four
    teams in turn (one rule, ``team_for``), and live agents carry theirs in their heartbeats."""
    zone = '[{"name": "A", "region": "us-east-1", "team_leads": 4, "standby": false}]'
    # Three more team leads are three more control agents: the bounds move up with them.
    bounds = ["scaling.min_agents=8", "scaling.max_agents=14", "scaling.default_agents=8"]
    scenario = load_scenario(HERE / "burst.yaml", [f"topology.zones={zone}", *bounds])
    teams = ("A-T01", "A-T02", "A-T03", "A-T04")
    expected = [team_for(number, teams) for number in range(1, 7)]
    assert expected == ["A-T02", "A-T03", "A-T04", "A-T01", "A-T02", "A-T03"]

    simulated = run(scenario).results[0].agents
    lent = simulated[simulated["from_reserve"]].sort_values("agent")  # r001, r002, ...
    assert list(lent["team"]) == expected

    live = run_live(scenario, tmp_path, time_scale=60.0, agents_mode="simulated")
    exactly_once(live)
    events, agents = live.result.events, live.result.agents
    requested = list(events.loc[events["kind"] == "agent_requested", "subject"])
    assert len(requested) == 6
    team_of = agents.drop_duplicates("agent").set_index("agent")["team"]
    assert [team_of[agent_id] for agent_id in requested] == expected
