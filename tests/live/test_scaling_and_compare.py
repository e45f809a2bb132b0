"""A burst live and simulated: real processes scale up and drain; compare agrees with the sim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from conftest import HERE, exactly_once, run_live

from sim.live.cli import comparison
from sim.runner import Outcome, run, write_outputs
from sim.scenario.load import load_scenario


def test_burst_scales_real_processes_and_matches_the_simulator(tmp_path: Path) -> None:
    scenario = load_scenario(HERE / "burst.yaml")
    live = run_live(scenario, tmp_path, time_scale=30.0)
    exactly_once(live)
    events = live.result.events
    agents = live.result.agents
    started = agents[(agents["role"] == "specialist") & agents["from_reserve"]]
    assert len(started) == 6  # the scale-up became six real agent processes that heartbeat
    left = events[events["kind"] == "agent_left"]
    drained = left[left["time_s"] <= scenario.duration]  # (the end of the run stops the rest)
    assert len(drained) == 6  # the quiet drained as many, each exiting on its own
    assert set(drained["subject"]) <= set(agents["agent"])

    sim_dir, live_dir = tmp_path / "sim", tmp_path / "live"
    write_outputs(run(scenario), sim_dir, report=False)
    write_outputs(Outcome(live.summary, [live.result]), live_dir, report=False)
    table = comparison(sim_dir, live_dir)
    sim_tp, live_tp = table["figures"]["throughput / min"]
    assert abs(live_tp - sim_tp) <= 0.10 * sim_tp, (sim_tp, live_tp)
    assert table["same_scaling_sequence"], table["scaling"]
    assert [d["delta"] for d in table["scaling"][0]] == [6, -2, -2, -2]
    # At the same evaluations, not a minute apart: a task on its way to a free slot had
    # counted as waiting, and a pool with one waiting gives up no agent (10 s of scenario
    # time is a third of a wall second at x30, for a late wake-up of the scaling loop).
    for simulated, lived in zip(*table["scaling"], strict=True):
        assert abs(lived["time_s"] - simulated["time_s"]) <= 10.0, table["scaling"]
    # Every evaluation, holds included (scaling.parquet): at the same instants, on a fleet of
    # the same size, asking for the same changes, so no evaluation is apart.
    sim_evals, live_evals = (pd.read_parquet(d / "scaling.parquet") for d in (sim_dir, live_dir))
    assert len(live_evals) == len(sim_evals) > len(table["scaling"][0])
    assert np.allclose(live_evals["time_s"], sim_evals["time_s"], atol=10.0)
    assert live_evals["agents"].tolist() == sim_evals["agents"].tolist()
    assert live_evals["asked"].tolist() == sim_evals["asked"].tolist()
    assert table["scaling_evaluations"] and table["scaling_apart"] is None
