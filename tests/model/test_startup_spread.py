"""New agents' start-ups: the same for every agent by default, or drawn around their mean."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support import short_baseline

from sim.model.engine import Simulation, run_scenario
from sim.scenario.load import ScenarioError
from sim.world.start_turns import StartTurns, waits
from sim.world.startup import startup_sampler

#: Draws per statistical check; every tolerance below is four standard errors at this size.
N = 20_000


def _draws(*overrides: str) -> np.ndarray:
    scenario = short_baseline(*overrides)
    draw = startup_sampler(scenario.scaling, np.random.default_rng(11))
    return np.array([draw() for _ in range(N)])


def test_the_default_start_up_is_the_delay_itself_and_draws_no_random_number() -> None:
    scenario = short_baseline("scaling.spawn_delay=45s")
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    draw = startup_sampler(scenario.scaling, rng)
    assert [draw() for _ in range(5)] == [45.0] * 5
    assert rng.bit_generator.state == before


def test_lognormal_start_ups_have_the_delay_as_mean_and_the_given_spread() -> None:
    mean, cv = 60.0, 0.8
    values = _draws(
        "scaling.spawn_delay=60s",
        "scaling.spawn_delay_dist.dist=lognormal",
        f"scaling.spawn_delay_dist.cv={cv}",
    )
    assert abs(values.mean() - mean) < 4 * mean * cv / math.sqrt(N)
    # The median of a lognormal with this mean and cv, and its standard error at N draws.
    sigma = math.sqrt(math.log1p(cv**2))
    median = mean / math.sqrt(1 + cv**2)
    median_se = median * sigma * math.sqrt(2 * math.pi) / (2 * math.sqrt(N))
    assert abs(float(np.median(values)) - median) < 4 * median_se
    assert (values > 0).all()


def test_empirical_start_ups_keep_the_observed_shape_rescaled_to_the_delay() -> None:
    values = _draws(
        "scaling.spawn_delay=26s",
        "scaling.spawn_delay_dist.dist=empirical",
        "scaling.spawn_delay_dist.samples=[2, 4, 6, 40]",
    )
    # Observed mean 13 s, the scenario's 26 s: every observation counts double.
    assert set(values.tolist()) == {4.0, 8.0, 12.0, 80.0}
    for value in (4.0, 8.0, 12.0, 80.0):
        share = float((values == value).mean())
        assert abs(share - 0.25) < 4 * math.sqrt(0.25 * 0.75 / N)


def test_a_sequence_replays_the_observed_start_ups_in_order_then_draws_from_them() -> None:
    """A calibrated replay's k-th start-up is live's k-th (rescaled to the delay)."""
    scenario = short_baseline(
        "scaling.spawn_delay=26s",
        "scaling.spawn_delay_dist.dist=sequence",
        "scaling.spawn_delay_dist.samples=[40, 0, 6, 4, 2]",
    )
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    draw = startup_sampler(scenario.scaling, rng)
    # Observed mean 10.4 s, the scenario's 26 s: each is 2.5 times as long, in order.
    assert [draw() for _ in range(5)] == pytest.approx([100.0, 0.0, 15.0, 10.0, 5.0])
    assert rng.bit_generator.state == before  # no draw while the record lasts
    later = [draw() for _ in range(200)]
    assert set(later) <= {100.0, 0.0, 15.0, 10.0, 5.0} and len(set(later)) == 5


def test_an_empirical_spread_without_samples_is_one_clear_error() -> None:
    with pytest.raises(ScenarioError, match=r"scaling\.spawn_delay_dist.*samples: expected"):
        short_baseline("scaling.spawn_delay_dist.dist=empirical")
    with pytest.raises(ScenarioError, match=r"spawn_delay_dist.*samples: expected.*sequence"):
        short_baseline("scaling.spawn_delay_dist.dist=sequence")
    with pytest.raises(ScenarioError, match=r"scaling\.spawn_delay: "):
        short_baseline("scaling.spawn_delay=-5")


def _replaced_at(overrides: tuple[str, ...]) -> tuple[list[float], object]:
    """Join times of 12 replacements requested at 600 s, and the run's result."""
    sim = Simulation(short_baseline(*overrides, hours=0.5))
    requested: list[str | None] = []

    def burst() -> None:
        for _ in range(12):
            requested.append(sim.fleet.spawn("B", "CodeGen", sim.fleet.startup_s(), "test"))

    sim.env.timeout(600).callbacks.append(lambda _: burst())
    result = sim.run()
    joined = result.agents.set_index("agent").loc[requested, "joined_s"]
    return sorted(float(t) for t in joined), result


def test_a_burst_of_replacements_joins_spread_out_and_the_workload_is_untouched() -> None:
    same, plain = _replaced_at(("scaling.spawn_delay=60s",))
    spread_overrides = (
        "scaling.spawn_delay=60s",
        "scaling.spawn_delay_dist.dist=gamma",
        "scaling.spawn_delay_dist.cv=1",
    )
    spread, varied = _replaced_at(spread_overrides)
    assert same == [660.0] * 12
    assert len(set(spread)) == 12 and min(spread) > 600.0

    # Common random numbers: the stream's tasks and their drawn work do not move with the
    # spread (their ids may: a DAG's later nodes are numbered when their parents finish).
    def drawn(result: object) -> list[tuple[str, float]]:
        tasks = result.tasks  # type: ignore[attr-defined]
        first = tasks[(tasks["attempt"] == 1) & (tasks["job_id"] == -1)].sort_values("task_id")
        return list(zip(first["category"], first["work_s"], strict=True))

    assert len(drawn(plain)) > 1_000 and drawn(plain) == drawn(varied)
    # And the spread itself is reproducible.
    again, _ = _replaced_at(spread_overrides)
    assert again == spread


def test_paced_starts_join_one_gap_apart_in_the_order_asked_and_restarts_take_turns() -> None:
    """``scaling.spawn_gap``: the provisioner starts one agent per gap, first come first served.

    Twelve replacements asked for at 600 s with a 60 s start-up and a 5 s
    gap join at 660, 665, ... 715 s, in the order asked; without a gap, all
    at 660 s. Restarted hosts take turns like new agents: three agents killed
    at 20 min and back at 23 min serve at 45, 50 and 55 s after that.
    """
    paced, _ = _replaced_at(("scaling.spawn_delay=60s", "scaling.spawn_gap=5s"))
    assert paced == [660.0 + 5.0 * k for k in range(12)]
    result = run_scenario(
        short_baseline(
            "chaos=[{at: 20m, kill: {category: Support, zone: D, count: 3}, restart_after: 3m}]",
            "scaling.spawn_delay=45s",
            "scaling.spawn_gap=5s",
            hours=0.5,
        )
    )
    events = result.events
    back = sorted(events.loc[events["kind"] == "agent_restarted", "time_s"])
    assert back == pytest.approx([20 * 60 + 180 + 45 + 5.0 * k for k in range(3)])


def test_start_turns_are_first_come_first_served_and_a_gap_of_zero_never_waits() -> None:
    turns = StartTurns(2.0)
    assert [turns.wait(at) for at in (10.0, 10.0, 11.0, 20.0, 20.5)] == [0, 2, 3, 0, 1.5]
    assert waits([5.0, 5.0, 5.0], 0.0) == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="gap_s"):
        StartTurns(-1.0)
