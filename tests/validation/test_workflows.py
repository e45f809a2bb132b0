"""DAG scheduling on real scientific workflows: HEFT and the simulator against the lower bound.

The reduced copy of ``python -m sim.analysis.workflow_table`` (which writes the
full 48-row table to reports/workflows/): every WfCommons recipe at about 200
tasks, from the committed fixtures under scenarios/workflows/, on P = 4, 16 and
64 identical agents. It asserts the issue's goals on what it runs:

* the geometric mean of makespan / LB is at most 1.05 for static HEFT and for
  the simulator (LB = max(critical path, work / P));
* neither is ever worse than greedy FIFO list scheduling, like for like and
  strictly (no allowance): static HEFT against static greedy, which both pay
  data transfers only; the simulator against greedy FIFO paying the same
  control path as the simulator (its completion reports, routes, pushes and
  pulls, measured on the same scenario with probe jobs).

Why like for like: static greedy decides for free. Where it is already
optimal up to its transfers (the critical path with agents to spare, or
independent tasks on a busy fleet) the simulator's 12 ms per graph level and
4 ms per pull exceed whatever its data locality saves, so on 4 of the 48 rows
of the full table it ends up to 0.14 % later than static greedy; paying the
same control path, greedy ends later than the simulator on every row.

With planned dispatch (``policies.dag.dispatch: planned``) the simulator pays
its control path once per job instead of once per level, and is never worse
than static greedy except where no run on this network could be: static
greedy ending before the delivery bound (LB plus the chief-to-agent latency
down and back), which here is soykb-200 on 64 agents alone (2.7 ms over LB,
against 6 ms of network latency alone).

And that the fixtures are what WfCommons, at the pinned version and seed,
generates — so the committed files are reproducible, not hand-tuned.
"""

from __future__ import annotations

import math
from importlib.metadata import version

import pytest

from sim.analysis.workflow_table import SEED, Row, control_path, geomean, measure, verdict
from sim.analysis.workflows import (
    RECIPES,
    WFCOMMONS_VERSION,
    fixture_path,
    generate_workflow,
    read_dag_json,
)
from sim.policies.dag_schedule import ControlPath

SIZE = 200
AGENTS = (4, 16, 64)


@pytest.fixture(scope="session")  # (once, however the worker interleaves modules)
def controls(tmp_path_factory: pytest.TempPathFactory) -> dict[int, ControlPath]:
    probes = tmp_path_factory.mktemp("probes")
    return {p: control_path(p, probes) for p in AGENTS}


@pytest.fixture(scope="session")
def rows(controls: dict[int, ControlPath]) -> list[Row]:
    out = []
    for recipe in RECIPES:
        path = fixture_path(recipe, SIZE)
        dag = read_dag_json(path)
        out.extend(measure(dag, recipe, p, path, control=controls[p]) for p in AGENTS)
    return out


def test_every_recipe_and_fleet_ran(rows: list[Row]) -> None:
    assert {(r.recipe, r.agents) for r in rows} == {(k, p) for k in RECIPES for p in AGENTS}
    for r in rows:
        assert 190 <= r.tasks <= SIZE
        assert not math.isnan(r.sim_s) and not math.isnan(r.sim_fifo_s)
        assert not math.isnan(r.sim_planned_s)


def test_no_makespan_beats_either_lower_bound(rows: list[Row]) -> None:
    """Both bounds are bounds: every schedule and every simulated run ends at or after them."""
    for r in rows:
        assert r.interval_bound_s >= r.lower_bound_s
        for makespan in (
            r.heft_s,
            r.heft_append_s,
            r.greedy_s,
            r.greedy_ctl_s,
            r.sim_s,
            r.sim_fifo_s,
            r.sim_planned_s,
        ):
            assert makespan >= r.interval_bound_s * (1 - 1e-12), r


def test_geometric_means_meet_the_goal(rows: list[Row]) -> None:
    v = verdict(rows)
    assert v.heft_geomean <= 1.05
    assert v.sim_geomean <= 1.05
    # And the goal is not met trivially: greedy FIFO alone misses it on these workflows.
    assert geomean([r.ratio(r.greedy_s) for r in rows]) > 1.05


def test_heft_is_never_worse_than_greedy_fifo(rows: list[Row]) -> None:
    assert verdict(rows).heft_worse_than_greedy == ()


def test_the_simulator_is_never_worse_than_greedy_fifo_paying_its_control_path(
    rows: list[Row],
) -> None:
    for r in rows:
        assert r.sim_s <= r.greedy_ctl_s, (r.workflow, r.agents, r.sim_s - r.greedy_ctl_s)
    v = verdict(rows)
    assert v.sim_over_greedy_ctl == ()
    assert v.met


def test_no_dispatcher_beats_the_dispatch_bound(rows: list[Row]) -> None:
    """The simulator and greedy with control pay the control path, so end after its bound."""
    for r in rows:
        assert r.dispatch_bound_s >= r.lower_bound_s
        for makespan in (r.sim_s, r.sim_fifo_s, r.greedy_ctl_s):
            assert makespan >= r.dispatch_bound_s * (1 - 1e-12), r


def test_no_run_beats_the_delivery_bound(rows: list[Row]) -> None:
    """Every simulated run sends work down and reports back, so ends after LB + 3 ms + 3 ms."""
    for r in rows:
        assert r.delivery_bound_s == pytest.approx(r.lower_bound_s + 0.006, abs=1e-9)
        for makespan in (r.sim_s, r.sim_fifo_s, r.sim_planned_s, r.greedy_ctl_s):
            assert makespan >= r.delivery_bound_s * (1 - 1e-12), r


def test_planned_dispatch_runs_the_heft_plan_one_control_path_late(
    rows: list[Row], controls: dict[int, ControlPath]
) -> None:
    """The plan is HEFT's; the run pays the first route and push and the last report, at least.

    More where many entry nodes queue at the chief behind each other (up to
    75 ms on these rows), never per level of the graph.
    """
    for r in rows:
        ctl = controls[r.agents]
        once = ctl.route_s + ctl.assign_s + ctl.report_s
        assert r.heft_s + once - 1e-9 <= r.sim_planned_s <= r.heft_s + 0.075, r


def test_planned_dispatch_is_never_worse_than_static_greedy_where_any_run_could_be(
    rows: list[Row],
) -> None:
    v = verdict(rows)
    assert v.planned_geomean <= 1.05
    assert {k for k, _d, _x in v.planned_over_greedy} == {"soykb-200 P=64"}
    assert v.greedy_beats_any_run == ("soykb-200 P=64",)
    assert v.planned_met
    # The row the dynamic path lost for want of staging is won: epigenomics-200 P=64.
    (epi,) = [r for r in rows if r.workflow == "epigenomics-200" and r.agents == 64]
    assert epi.sim_planned_s < epi.greedy_s < epi.sim_s


def test_where_static_greedy_wins_no_dispatcher_could_but_one(rows: list[Row]) -> None:
    """Why the rule is like for like: static greedy ends before any dispatcher could.

    Where the simulator ends after static greedy, greedy ended before the
    dispatch bound (CP-bound rows with agents to spare: 12 ms a level of
    messages against greedy's few ms of transfers), except on
    epigenomics-200 P=64. There both pay a 333 ms transfer into node 1 when it
    starts; static HEFT ends exactly on the critical path because its plan
    moves that input while node 1's last predecessor still runs, which a
    dispatcher fetching inputs on assignment cannot (planned dispatch stages
    them: see the test above).
    """
    v = verdict(rows)
    lost = {k for k, _d, _x in v.sim_over_greedy}
    assert lost - set(v.greedy_beats_dispatchers) == {"epigenomics-200 P=64"}
    assert lost & set(v.greedy_beats_dispatchers) == {"cycles-200 P=64", "soykb-200 P=64"}


def test_the_probes_read_one_control_path_on_every_fleet(controls: dict[int, ControlPath]) -> None:
    """The probes read the same legs on every fleet size: 12 ms per release, 4 ms per pull.

    Larger fleets' heartbeats stretch the coordinators' per-message cost a
    little (microseconds), so the legs agree to 20 us.
    """
    for p, ctl in controls.items():
        assert ctl.report_s == pytest.approx(0.005, abs=2e-5), p
        assert ctl.route_s == pytest.approx(0.0035, abs=2e-5), p
        assert ctl.assign_s == pytest.approx(0.0035, abs=2e-5), p
        assert ctl.pull_s == pytest.approx(0.004, abs=2e-5), p


def test_the_pinned_wfcommons_is_installed() -> None:
    assert version("wfcommons") == WFCOMMONS_VERSION


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_fixtures_are_what_wfcommons_generates(recipe: str) -> None:
    """Regenerated in this process (another hash seed than the one that wrote them): equal."""
    assert generate_workflow(recipe, SIZE, SEED) == read_dag_json(fixture_path(recipe, SIZE))
