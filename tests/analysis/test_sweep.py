"""Sweeps: designs, common random numbers, failures, resume, and one result on any executor.

The executor test is the issue's evidence at reduced size: the same sweep
run serially, on two local processes and on a Dask cluster of two workers
(a real ``dask scheduler`` and two ``dask worker`` processes on loopback)
gives identical DataFrames. The full-size timing is benchmarks/bench_sweep.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from support import ROOT, SCENARIOS

from sim.analysis.executors import (
    DaskExecutor,
    LocalExecutor,
    SerialExecutor,
    local_dask_cluster,
    unordered,
)
from sim.analysis.replicas import Replicas
from sim.analysis.sweep import grid, latin_hypercube, parse_grid, parse_range, sweep
from sim.cli import main
from sim.scenario.load import load_scenario

BASELINE = SCENARIOS / "baseline_200.yaml"
#: About 0.2 s of CPU per run: 20 simulated minutes of the spec's fleet, autoscaling on.
SHORT = ["duration=20m", "warmup=5m"]
INCREMENT = "scaling.auto_scale.scale_up.increment"
BALANCER = "policies.load_balancing"


def test_grid_is_the_cartesian_product_last_axis_fastest() -> None:
    points = grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(points) == 6
    assert points[0] == {"a": 1, "b": "x"} and points[1] == {"a": 1, "b": "y"}
    assert points[-1] == {"a": 2, "b": "z"}


def test_latin_hypercube_hits_every_stratum_once_and_is_reproducible() -> None:
    n = 20
    points = latin_hypercube({"x": (0.0, 10.0), "k": (1, 100)}, n, seed=7)
    xs = np.array([p["x"] for p in points])
    assert sorted(np.floor(xs / (10.0 / n)).astype(int).tolist()) == list(range(n))
    assert all(isinstance(p["k"], int) and 1 <= p["k"] <= 100 for p in points)
    assert latin_hypercube({"x": (0.0, 10.0), "k": (1, 100)}, n, seed=7) == points
    assert latin_hypercube({"x": (0.0, 10.0), "k": (1, 100)}, n, seed=8) != points


def test_cli_specs_are_typed_like_set() -> None:
    assert parse_grid("policies.load_balancing=round_robin,p2c") == (
        BALANCER,
        ["round_robin", "p2c"],
    )
    assert parse_grid("a.b=1,2.5,6h") == ("a.b", [1, 2.5, "6h"])
    assert parse_range("a.b=60..600") == ("a.b", (60, 600))
    for bad in ("a.b", "=1,2", "a.b=x..y", "a.b=9..1"):
        with pytest.raises(ValueError, match="expected"):
            parse_grid(bad) if ".." not in bad and bad != "a.b" else parse_range(bad)


def test_rows_are_points_by_replications_on_common_random_numbers() -> None:
    frame = sweep(
        BASELINE,
        grid({BALANCER: ["round_robin", "least_connections"]}),
        replications=2,
        overrides=SHORT,
        workers=1,
    )
    assert list(frame[["point", "replication"]].itertuples(index=False, name=None)) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert frame["error"].isna().all()
    assert frame[f"set.{BALANCER}"].tolist() == ["round_robin"] * 2 + ["least_connections"] * 2
    assert {"wait_s.p99", "tasks.completed", "cost.usd_total", "events_sha256"} <= set(frame)
    # Replication r of every point sees the same arrivals; replications differ from each other.
    submitted = frame.pivot(index="replication", columns="point", values="tasks.submitted")
    assert (submitted[0] == submitted[1]).all()
    assert submitted.loc[0, 0] != submitted.loc[1, 0]
    # ... while the policy really changed the runs.
    assert frame.loc[0, "events_sha256"] != frame.loc[2, "events_sha256"]


def test_a_failed_point_is_reported_with_its_parameters_and_the_rest_completes() -> None:
    points = [
        {INCREMENT: 20},
        {INCREMENT: -1},  # the schema rejects it
        {"workload.arrivals.process": "trace", "workload.arrivals.trace": "/no/such.csv"},
    ]
    frame = sweep(BASELINE, points, replications=1, overrides=SHORT, workers=2)
    assert frame["error"].isna().tolist() == [True, False, False]
    assert "expected greater than 0, got -1" in frame.loc[1, "error"]
    assert frame.loc[1, f"set.{INCREMENT}"] == -1
    assert "WorkloadError" in frame.loc[2, "error"] and "/no/such.csv" in frame.loc[2, "error"]
    assert frame.loc[0, "tasks.completed"] > 0


def test_an_interrupted_sweep_resumes_and_ends_identical(tmp_path: Path) -> None:
    points = grid({INCREMENT: [5, 10, 20]})
    out = tmp_path / "sweep.parquet"
    seen: list[int] = []

    def stop_after_two(done: int, total: int, failed: int) -> None:
        seen.append(done)
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(BASELINE, points, 2, overrides=SHORT, workers=1, out=out, progress=stop_after_two)
    parts = sorted((tmp_path / "sweep.parquet.parts").glob("*.json"))
    assert len(parts) == 2 and not out.exists()
    stamps = {p: p.stat().st_mtime_ns for p in parts}

    starts: list[int] = []
    resumed = sweep(
        BASELINE,
        points,
        2,
        overrides=SHORT,
        workers=1,
        out=out,
        progress=lambda done, total, failed: starts.append(done),
    )
    assert starts[0] == 2  # the first report already counts the two stored runs
    assert {p: p.stat().st_mtime_ns for p in parts} == stamps  # not rewritten
    fresh = sweep(BASELINE, points, 2, overrides=SHORT, workers=1)
    pdt.assert_frame_equal(resumed, fresh)
    pdt.assert_frame_equal(pd.read_parquet(out), fresh)


def test_unordered_reports_a_raising_job_and_finishes_the_rest() -> None:
    executor = LocalExecutor(2)
    try:
        got = dict(unordered(executor, _inverse, [(2,), (0,), (4,)]))
    finally:
        executor.close()
    assert got[0] == 0.5 and got[2] == 0.25
    assert isinstance(got[1], ZeroDivisionError)


def _inverse(x: int) -> float:
    return 1 / x


# --------------------------------------------------------------------------- executors


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A real Dask scheduler and two single-thread workers, as separate processes on loopback."""
    with local_dask_cluster(workers=2, threads=1, logs=tmp_path) as address:
        yield address


def test_serial_local_processes_and_dask_give_identical_frames(
    dask_cluster: str, tmp_path: Path
) -> None:
    points = grid({INCREMENT: [5, 20], BALANCER: ["round_robin", "least_connections"]})
    serial = sweep(BASELINE, points, 2, overrides=SHORT, executor=SerialExecutor())
    local = sweep(BASELINE, points, 2, overrides=SHORT, workers=2)

    executor = DaskExecutor.connect(dask_cluster, timeout=60)
    try:
        executor.client.wait_for_workers(2, timeout=60)
        assert executor.slots == 2
        on_dask = sweep(BASELINE, points, 2, overrides=SHORT, executor=executor.client)
        # A lambda travels by value (cloudpickle); a function of this test module would not.
        workers = executor.client.run(lambda: str(Path(__import__("sim").__file__).parent))
        # With the client's threads running, local workers come from a forkserver instead.
        local_beside_dask = sweep(BASELINE, points, 2, overrides=SHORT, workers=2)

        # The command line's --dask reaches the same cluster and writes the same table.
        out = tmp_path / "cli.parquet"
        args = ["sweep", str(BASELINE), *(f"--set={s}" for s in SHORT), "--replications", "2"]
        grids = [
            "--grid",
            f"{INCREMENT}=5,20",
            "--grid",
            f"{BALANCER}=round_robin,least_connections",
        ]
        code = main([*args, *grids, "--dask", dask_cluster, "--out", str(out), "--quiet"])
        from_cli = pd.read_parquet(out)
        # ... and so does the regression check.
        check = ["check", "baseline_1h", "--baseline", str(ROOT / "baselines")]
        check_code = main([*check, "--dask", dask_cluster, "--quiet"])
        # The planner's and tuner's replications run on the same cluster, with the same answers.
        scenario = load_scenario(BASELINE, SHORT)
        with Replicas(executor=executor.client) as replicas:
            on_cluster = replicas.summaries(scenario, [0, 1])
    finally:
        executor.close()

    assert serial["error"].isna().all() and len(serial) == 8
    pdt.assert_frame_equal(serial, local)
    pdt.assert_frame_equal(serial, on_dask)
    with Replicas(1) as replicas:
        here = replicas.summaries(scenario, [0, 1])
    assert [s["events_sha256"] for s in on_cluster] == [s["events_sha256"] for s in here]
    pdt.assert_frame_equal(serial, local_beside_dask)
    assert code == 0 and check_code == 0
    pdt.assert_frame_equal(pd.read_parquet(_written(serial, tmp_path)), from_cli)
    # The work really ran in the two worker processes, on this checkout of the package.
    assert len(workers) == 2
    assert set(workers.values()) == {str(ROOT / "sim")}


def _written(frame: pd.DataFrame, tmp_path: Path) -> Path:
    """*frame* after a Parquet round trip, as the CLI's file would read back."""
    from sim.metrics.store import write_parquet

    path = tmp_path / "reference.parquet"
    write_parquet(path, frame)
    return path


def test_equal_points_share_their_runs() -> None:
    reports: list[tuple[int, int, int]] = []
    frame = sweep(
        BASELINE,
        [{INCREMENT: 10}, {INCREMENT: 10}],
        2,
        overrides=SHORT,
        workers=1,
        progress=lambda *r: reports.append(r),
    )
    assert reports[-1] == (4, 4, 0) and len(reports) == 3  # the start, then two runs, not four
    figures = [c for c in frame.columns if "." in c and not c.startswith("set.")]
    pdt.assert_frame_equal(
        frame.loc[frame.point == 0, figures].reset_index(drop=True),
        frame.loc[frame.point == 1, figures].reset_index(drop=True),
    )


# --------------------------------------------------------------------------- command line


def test_cli_sweep_writes_parquet_and_lists_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.parquet"
    args = ["sweep", str(BASELINE), *(f"--set={s}" for s in SHORT), "--quiet", "--out", str(out)]
    code = main([*args, "--grid", f"{INCREMENT}=10,-3", "--workers", "1"])
    assert code == 0
    frame = pd.read_parquet(out)
    assert len(frame) == 2 and frame["error"].notna().tolist() == [False, True]
    err = capsys.readouterr().err
    assert "point 1" in err and f"{INCREMENT}=-3" in err
    assert main([*args, "--grid", f"{INCREMENT}=10,-3", "--workers", "1", "--strict"]) == 1
    # Every point failing is an error.
    assert main([*args, "--grid", f"{INCREMENT}=-3,-4"]) == 1
    assert "expected greater than 0" in capsys.readouterr().err


def test_cli_sweep_samples(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    code = main(
        [
            "sweep",
            str(BASELINE),
            *(f"--set={s}" for s in SHORT),
            "--sample",
            "scaling.auto_scale.scale_up.cooldown_seconds=60..600",
            "--grid",
            f"{BALANCER}=round_robin",
            "--points",
            "3",
            "--quiet",
            "--workers",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    frame = pd.read_parquet(out)
    cooldowns = frame["set.scaling.auto_scale.scale_up.cooldown_seconds"].tolist()
    assert len(set(cooldowns)) == 3 and all(60 <= c <= 600 for c in cooldowns)
    assert (frame[f"set.{BALANCER}"] == "round_robin").all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid", "nonsense"], "--grid/--sample: expected PATH=v1,v2"),
        ([], "expected at least one --grid"),
        (["--grid", "a=1", "--replications", "0"], "--replications: expected at least 1"),
        (["--grid", f"{INCREMENT}=1", "--out", "x.csv"], "--out: expected a .parquet file"),
        (["--grid", "no.such.field=1"], "no: unknown key"),
    ],
)
def test_cli_sweep_bad_input_is_one_line(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", str(BASELINE), "--quiet", *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_parts_are_plain_json_named_by_content(tmp_path: Path) -> None:
    out = tmp_path / "one.parquet"
    sweep(BASELINE, [{INCREMENT: 10}], 1, overrides=SHORT, workers=1, out=out)
    (part,) = (tmp_path / "one.parquet.parts").glob("*.json")
    record = json.loads(part.read_text())
    assert record["figures"]["tasks.completed"] == pd.read_parquet(out).loc[0, "tasks.completed"]
    assert len(part.stem) == 24


def test_cli_resumes_unless_fresh(tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    args = ["sweep", str(BASELINE), *(f"--set={s}" for s in SHORT), "--quiet", "--out", str(out)]
    args += ["--grid", f"{INCREMENT}=10", "--workers", "1"]
    assert main(args) == 0
    (part,) = (tmp_path / "r.parquet.parts").glob("*.json")
    first = part.stat().st_mtime_ns
    assert main(args) == 0
    assert part.stat().st_mtime_ns == first  # resumed: the stored run was not redone
    assert main([*args, "--fresh"]) == 0
    assert part.stat().st_mtime_ns > first  # redone (a run takes far longer than a tick)
