"""A pool whose agents all die hands its queue to another zone; the run replays in the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from conftest import HERE, exactly_once, run_live

from sim.cli import main
from sim.live.transport import zone_tasks_streams
from sim.metrics.store import atomic_write_text
from sim.runner import Outcome, write_outputs
from sim.scenario.load import load_scenario, scenario_yaml


def kills(events: pd.DataFrame) -> list[tuple[float, list[str]]]:
    """The chaos kills of an event log: (time, victims) in order."""
    chaos = events[events["kind"] == "chaos"].sort_values("time_s", kind="stable")
    return [
        (float(row.time_s), sorted(json.loads(str(row.detail))["event"]["kill"]["agents"]))
        for row in chaos.itertuples(index=False)
    ]


def arrivals(tasks: pd.DataFrame) -> list[tuple[float, str, str]]:
    first = tasks.drop_duplicates("task_id")
    return sorted(
        (round(float(t), 6), str(c), str(z))
        for t, c, z in first[["arrival_s", "category", "home_zone"]].itertuples(index=False)
    )


def test_dead_pool_queue_completes_elsewhere_and_the_run_replays(tmp_path: Path) -> None:
    scenario = load_scenario(HERE / "evacuate.yaml")
    live = run_live(scenario, tmp_path, time_scale=30.0)
    exactly_once(live)
    events, tasks = live.result.events, live.result.tasks
    kill_s = float(events.loc[events["kind"] == "chaos", "time_s"].iloc[0])
    victims = set(events.loc[events["kind"] == "agent_failed", "subject"])
    agents = live.result.agents
    pool_a = agents[(agents["role"] == "specialist") & (agents["zone"] == "A")]
    assert victims == set(pool_a["agent"]) and len(victims) == 2

    # 2. The pool's queue moved to B once the deaths were detected, and ran there once.
    evacuated = events[(events["kind"] == "pool_evacuated") & (events["subject"] == "A")]
    assert len(evacuated) >= 1
    moved = sum(json.loads(str(d))["tasks"] for d in evacuated["detail"])
    assert moved >= 1
    done = tasks[tasks["outcome"] == "completed"]
    detected = events[(events["kind"] == "agent_detected") & events["subject"].isin(victims)]
    assert len(detected) == 2
    detected_s = float(detected["time_s"].max())
    assert float(evacuated["time_s"].iloc[0]) >= float(detected["time_s"].min())
    # Everything that arrived in A before the detection and was not started before the kill
    # waited in A's queue (or on a victim's subject): it ran on B, once (exactly_once above) —
    # by the duration, or while the run drained (a late evacuation on a busy machine).
    drained = set(live.drained["task_id"]) if live.drained is not None else set()
    from_a = tasks[(tasks["home_zone"] == "A") & (tasks["arrival_s"] < detected_s)]
    in_window = (from_a["outcome"] == "completed") & (from_a["start_s"] > kill_s)
    late = from_a[in_window | from_a["task_id"].isin(drained)]
    assert len(late) >= moved
    assert set(late["zone"]) == {"B"} and not set(late["agent"]) & victims
    assert not set(done.loc[done["start_s"] > kill_s, "agent"]) & victims

    # 3. Each zone's work-queue streams (its shards), capturing only that zone's subjects;
    # the moved tasks crossed from A's streams to B's. Each task an agent started came off
    # its own zone's streams: B's agents never died, so B's stored exactly one message per
    # task they ran; A's stored at most one more per victim (assigned to an idle victim
    # after the kill, never started: purged and placed anew). Every zone, no other stream.
    streams = {s.name: s for s in live.task_streams}
    shards = {zone: zone_tasks_streams(zone) for zone in ("A", "B")}
    laid_out = {name: (subjects,) for zone in shards for name, subjects in shards[zone]}
    assert {name: s.subjects for name, s in streams.items()} == laid_out, list(streams)
    stored = {zone: sum(streams[name].stored for name, _ in shards[zone]) for zone in shards}
    # (The streams saw the whole run: the window's attempts and what ran as the run drained.)
    assert live.drained is not None
    ran = {
        zone: set(
            tasks.loc[tasks["agent"].isin(agents.loc[agents["zone"] == zone, "agent"]), "task_id"]
        )
        | set(live.drained.loc[live.drained["zone"] == zone, "task_id"])
        for zone in ("A", "B")
    }
    assert ran["A"] and set(late["task_id"]) <= ran["B"]
    assert stored["B"] == len(ran["B"])
    assert len(ran["A"]) <= stored["A"] <= len(ran["A"]) + len(victims)

    # 4. The directory replays in the simulator without naming the scenario again: the
    # same arrivals, the same kills at the same times.
    run_dir, replay_dir = tmp_path / "live-run", tmp_path / "replay"
    write_outputs(Outcome(live.summary, [live.result]), run_dir, report=False)
    atomic_write_text(run_dir / "scenario.yaml", scenario_yaml(scenario))
    code = main(["replay", str(run_dir), "--out", str(replay_dir), "--no-report", "--quiet"])
    assert code == 0
    replayed_tasks = pd.read_parquet(replay_dir / "tasks.parquet")
    replayed_events = pd.read_parquet(replay_dir / "events.parquet")
    assert arrivals(replayed_tasks) == arrivals(tasks)
    assert kills(replayed_events) == kills(events)
    assert kills(events) == [(kill_s, sorted(victims))]
