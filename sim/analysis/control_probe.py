"""The simulator's DAG control path on a fleet, measured with two probe jobs.

The pure planners (:mod:`sim.policies.dag_schedule`) pay data transfers only;
the simulator's dispatcher also pays its messages: a node's completion report
up to the chief, the chief's release of its successors to the zone, the zone's
assignment down to an agent, and an agent's pull of queued work. To compare
the simulator with greedy FIFO like for like, greedy must pay the same legs
(:class:`sim.policies.dag_schedule.ControlPath`). Rather than re-derive them
from the scenario's network, coordinator costs and Raft commit (and drift
when any of those changes), this module reads them off the simulator itself,
on the same scenario and fleet, with two probe jobs that meet no contention:

* a chain of two nodes (no data): the child's release after its parent's end
  splits into the report (parent's end to the child's release at the chief),
  the route (release to the zone's assignment) and the assignment (to the
  agent's start, less any transfer);
* P + 1 independent nodes of distinct lengths on P agents: the one left
  queued is pulled by the first agent to free, and the gap between that
  agent's two services (less any transfer) is the pull.

Each leg is one number because the validation scenario has no jitter.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from sim.analysis.workflows import CATEGORY, write_dag_json
from sim.model.engine import run_scenario
from sim.policies.dag import Dag, DagEdge, DagNode
from sim.policies.dag_schedule import ControlPath
from sim.scenario.schema import Scenario

#: The probe nodes' work (s): long beside any control leg, short beside a run.
PROBE_WORK_S = 1.0


def chain_probe() -> Dag:
    """Two nodes, one edge without data: the release path, uncontended."""
    nodes = (DagNode(0, CATEGORY, PROBE_WORK_S), DagNode(1, CATEGORY, PROBE_WORK_S))
    return Dag("probe-chain", nodes, (DagEdge(0, 1, 0.0),))


def fan_probe(agents: int) -> Dag:
    """*agents* + 1 independent nodes of distinct lengths: one waits and is pulled."""
    nodes = tuple(DagNode(i, CATEGORY, PROBE_WORK_S * (i + 1)) for i in range(agents + 1))
    return Dag("probe-fan", nodes, ())


def _completed(scenario: Scenario) -> pd.DataFrame:
    tasks = run_scenario(scenario).tasks
    done = tasks[tasks["outcome"] == "completed"]
    return done.set_index("node").sort_index()


def measure_control_path(
    scenario_for: Callable[[Path], Scenario], agents: int, folder: Path
) -> ControlPath:
    """The control legs of ``scenario_for(dag_file)`` on *agents* agents (probe files in *folder*).

    *scenario_for* builds the scenario under test around one DAG file
    released at time 0 (the validation suite's own builder).
    """
    chain = _completed(scenario_for(write_dag_json(chain_probe(), folder / "probe-chain.json")))
    parent, child = chain.loc[0].to_dict(), chain.loc[1].to_dict()
    report = float(child["arrival_s"] - parent["end_s"])
    route = float(child["dispatch_s"] - child["arrival_s"])
    assign = float(child["start_s"] - child["dispatch_s"] - child["transfer_s"])

    fan = _completed(scenario_for(write_dag_json(fan_probe(agents), folder / "probe-fan.json")))
    waited = fan[fan["queue_s"] > 0]
    if len(waited) != 1:
        raise RuntimeError(f"fan probe on {agents} agents: {len(waited)} nodes queued, not 1")
    pulled = waited.iloc[0]
    same = fan[(fan["agent"] == pulled["agent"]) & (fan["end_s"] <= pulled["start_s"])]
    before = float(same["end_s"].max())
    pull = float(pulled["start_s"] - before - pulled["transfer_s"])
    return ControlPath(report_s=report, route_s=route, assign_s=assign, pull_s=pull)
