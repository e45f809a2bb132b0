"""The path of one task through the code, traced: the figures of docs/path-of-one-task.md.

Covers: the three legs of a task's path — the YAML read into a Scenario, one
task's life in the SimPy shell, and the records turned into summary.json —
as the sequence of ``sim/`` files the calls pass through.

Scenario: the default scenario (the spec's 200 agents) runs for 20 minutes.
When task number 500 reaches the chief, a profiler starts recording every
``sim/`` function called while some frame holds that task (as an argument,
a message's payload, an event's value, or the agent loop's ``task``), until
the collector has counted it. The YAML leg and the summary leg are traced
whole. For each leg it prints the calls in order, the files passed, and how
many times the path *returns* to a file it had already left — the figure
issue 13 counts (agent <-> coordinator <-> engine callbacks). Deterministic:
the same seed gives the same path.

Usage: ``python benchmarks/path_of_one_task.py [task_id] [--calls]``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import sim
from sim.metrics.replications import combine_replications
from sim.model.engine import Simulation
from sim.model.task import Task
from sim.runner import run, summary_of, write_outputs
from sim.scenario.load import load_scenario

ROOT = str(Path(sim.__file__).parent)
DURATION = "20m"


def relative(frame: FrameType) -> str | None:
    name = frame.f_code.co_filename
    return "sim" + name[len(ROOT) :] if name.startswith(ROOT) else None


def holds(value: Any, task: Task, depth: int = 0) -> bool:
    """Whether *value* is the task, or carries it (a tuple, a message, an event's value)."""
    if value is task:
        return True
    if depth > 1:
        return False
    if isinstance(value, tuple | list):
        return any(holds(v, task, depth + 1) for v in value[:4])
    if getattr(value, "payload", None) is task:
        return True
    inner = getattr(value, "_value", None)
    return inner is not None and inner is not value and holds(inner, task, depth + 1)


def legs(trail: list[tuple[str, str]]) -> tuple[int, int, int]:
    """Files passed, file changes, and returns to a file already left."""
    files: list[str] = []
    returns = 0
    for path, _ in trail:
        if files and files[-1] == path:
            continue
        returns += path in files
        files.append(path)
    return len(set(files)), len(files) - 1, returns


def one_task(task_id: int) -> list[tuple[str, str]]:
    """The calls made while some frame holds task *task_id*, until the collector counts it."""
    simulation = Simulation(load_scenario(_yaml()), 0)
    trail: list[tuple[str, str]] = []
    roots: list[FrameType] = []
    target: list[Task] = []

    def note(path: str, name: str) -> None:
        if not trail or trail[-1] != (path, name):
            trail.append((path, name))

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "return" and roots and roots[-1] is frame:
            roots.pop()
            return
        path = relative(frame) if event == "call" else None
        if path is None:
            return
        code = frame.f_code
        if roots:
            note(path, code.co_name)
            return
        args = [frame.f_locals.get(n) for n in code.co_varnames[: code.co_argcount]]
        task = target[0]
        if any(holds(a, task) for a in args) or frame.f_locals.get("task") is task:
            roots.append(frame)
            note(path, code.co_name)

    submit: Callable[[Task, float], None] = simulation.chief.submit

    def watched_submit(task: Task, now: float) -> None:
        if task.id == task_id and not target:
            target.append(task)
            trail.append(("sim/model/engine.py", "_next_arrival"))
            sys.setprofile(profile)
        submit(task, now)

    simulation.chief.submit = watched_submit  # type: ignore[method-assign]
    simulation.run()
    sys.setprofile(None)
    end = next(i for i, (_, name) in enumerate(trail) if name == "task_finished")
    return trail[: end + 1]


def whole(call: Callable[[], object]) -> list[tuple[str, str]]:
    """Every ``sim/`` call *call* makes."""
    trail: list[tuple[str, str]] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        path = relative(frame) if event == "call" else None
        if path is not None and (not trail or trail[-1] != (path, frame.f_code.co_name)):
            trail.append((path, frame.f_code.co_name))

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return trail


def _yaml() -> Path:
    path = Path(tempfile.gettempdir()) / "path_of_one_task.yaml"
    path.write_text(f"duration: {DURATION}\nwarmup: 1m\n")
    return path


def main() -> None:
    task_id = int(next((a for a in sys.argv[1:] if a.isdigit()), "500"))
    show_calls = "--calls" in sys.argv
    outcome = run(load_scenario(_yaml()), 1)
    with tempfile.TemporaryDirectory() as out:
        found = {
            "YAML -> Scenario": whole(lambda: load_scenario(_yaml())),
            f"task {task_id}: arrival -> collector": one_task(task_id),
            "records -> summary": whole(
                lambda: combine_replications([summary_of(outcome.results[0])])
            ),
            "summary -> summary.json": whole(
                lambda: write_outputs(outcome, Path(out), report=False)
            ),
        }
    for leg, trail in found.items():
        files, changes, returns = legs(trail)
        print(f"{leg}: {files} files, {changes} file changes, {returns} returns")
        if show_calls:
            for path, name in trail:
                print(f"    {path}:{name}")


if __name__ == "__main__":
    main()
