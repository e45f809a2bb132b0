"""Pinned failure matrices: ``orchestra check`` fails when a mode's worst case got worse.

A pin (``baselines/failover/NAME.json``) names a scenario, its overrides,
the modes and the trial count, and stores each mode's worst detection,
worst unavailability and worst leaderless time. The check re-runs exactly that matrix — same seed,
same trials, so an unchanged model reproduces the pin bit for bit — and
judges each mode: worse when a worst case grew by more than
``max(abs_s, rel x pinned)`` (the slack is in the pin, editable per
matrix), when a detection the pin had is gone, or when any task was lost.
A figure the pin has no value for (a mode nothing detects) is not judged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.analysis.failover_matrix import PINNED, run_matrix
from sim.analysis.failover_modes import parse_modes
from sim.metrics.store import write_json
from sim.scenario.load import ScenarioError, load_scenario

PIN_KIND = "failover_matrix"
DEFAULT_RULE = {"abs_s": 0.05, "rel": 0.10}


@dataclass(frozen=True)
class ModeVerdict:
    """One pinned figure of one mode, judged."""

    pin: str
    mode: str
    figure: str
    pinned: float
    now: float
    worse: bool

    def message(self) -> str:
        verdict = "WORSE" if self.worse else "ok"
        return (
            f"{self.pin}: {self.mode}.{self.figure}: {self.pinned:.4g} -> {self.now:.4g} {verdict}"
        )


def pin_document(
    name: str,
    scenario_path: str,
    overrides: Sequence[str],
    matrix: dict[str, Any],
    rule: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A pin for *matrix*, as produced by ``orchestra failover ... --pin``."""
    worst = {
        mode: {key: entry.get(key, math.nan) for key in (*PINNED, "lost_total")}
        for mode, entry in matrix["modes"].items()
    }
    return {
        "version": 1,
        "kind": PIN_KIND,
        "name": name,
        "scenario": scenario_path,
        "overrides": list(overrides),
        "trials": matrix["trials"],
        "modes": list(matrix["modes"]),
        "rule": dict(rule or DEFAULT_RULE),
        "worst": worst,
    }


def write_pin(path: Path, document: dict[str, Any]) -> None:
    write_json(path, document)


def read_pin(path: Path) -> dict[str, Any]:
    """A pin file, checked field by field (a one-line error names the field)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: expected a failover pin (JSON): {exc}") from None
    expected = {
        "kind": str,
        "name": str,
        "scenario": str,
        "overrides": list,
        "trials": int,
        "modes": list,
        "rule": dict,
        "worst": dict,
    }
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a JSON object")
    for key, kind in expected.items():
        if not isinstance(raw.get(key), kind):
            raise ScenarioError(f"{path}: {key}: expected {kind.__name__}, got {raw.get(key)!r}")
    if raw["kind"] != PIN_KIND:
        raise ScenarioError(f"{path}: kind: expected {PIN_KIND!r}, got {raw['kind']!r}")
    return raw


def pin_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def judge(pin: dict[str, Any], matrix: dict[str, Any]) -> list[ModeVerdict]:
    """Every pinned figure of every pinned mode against the new matrix."""
    slack_abs = float(pin["rule"].get("abs_s", DEFAULT_RULE["abs_s"]))
    slack_rel = float(pin["rule"].get("rel", DEFAULT_RULE["rel"]))
    verdicts: list[ModeVerdict] = []
    for mode, worst in pin["worst"].items():
        entry = matrix["modes"].get(mode, {})
        for figure in PINNED:
            pinned = _number(worst.get(figure))
            now = _number(entry.get(figure))
            if math.isnan(pinned):
                continue  # nothing to hold it to (e.g. a mode nothing detects)
            worse = math.isnan(now) or now > pinned + max(slack_abs, slack_rel * pinned)
            verdicts.append(ModeVerdict(pin["name"], mode, figure, pinned, now, worse))
        lost = _number(entry.get("lost_total"))
        verdicts.append(ModeVerdict(pin["name"], mode, "lost_total", 0.0, lost, lost != 0.0))
    return verdicts


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def check_pin(
    path: Path,
    *,
    extra: Sequence[str] = (),
    executor: Any | None = None,
    workers: int | None = None,
) -> list[ModeVerdict]:
    """Re-run one pinned matrix (with *extra* ``--set`` overrides) and judge it."""
    pin = read_pin(path)
    scenario = load_scenario(_scenario_path(path, pin), [*pin["overrides"], *extra])
    try:
        modes = parse_modes(pin["modes"])
    except ValueError as exc:
        raise ScenarioError(f"{path}: modes: {exc}") from None
    run = run_matrix(scenario, modes, pin["trials"], executor=executor, workers=workers)
    return judge(pin, run.matrix)


def split_targets(targets: Sequence[str], directory: Path) -> tuple[list[Path], list[str]]:
    """``orchestra check``'s targets: the failover pins they name, and the rest.

    No targets means every pin in ``DIR/failover/`` (and every ordinary
    baseline, which the caller handles).
    """
    pins_dir = directory / "failover"
    if not targets:
        return pin_files(pins_dir), []
    pins: list[Path] = []
    rest: list[str] = []
    for target in targets:
        by_name = pins_dir / f"{target}.json"
        as_path = Path(target)
        if by_name.exists():
            pins.append(by_name)
        elif as_path.suffix == ".json" and as_path.parent.name == "failover":
            pins.append(as_path)
        else:
            rest.append(target)
    return pins, rest


def check_pins(
    pins: Sequence[Path],
    *,
    extra: Sequence[str] = (),
    update: bool = False,
    executor: Any | None = None,
    workers: int | None = None,
    say: Any = print,
) -> bool:
    """Check (or, with *update*, re-pin) each matrix; True when none got worse."""
    ok = True
    for path in pins:
        if update:
            pin = read_pin(path)
            scenario = load_scenario(_scenario_path(path, pin), [*pin["overrides"], *extra])
            run = run_matrix(scenario, parse_modes(pin["modes"]), pin["trials"], workers=workers)
            document = pin_document(pin["name"], pin["scenario"], pin["overrides"], run.matrix)
            write_pin(path, {**document, "rule": pin["rule"]})
            say(f"updated failover pin {path}")
            continue
        verdicts = check_pin(path, extra=extra, executor=executor, workers=workers)
        worse = [v for v in verdicts if v.worse]
        for verdict in worse:
            say(verdict.message())
        say(f"failover pin {read_pin(path)['name']}: {len(verdicts)} figures, {len(worse)} worse")
        ok = ok and not worse
    return ok


def _scenario_path(path: Path, pin: dict[str, Any]) -> Path:
    """The pin's scenario: relative to the project (baselines/failover/ is two levels down)."""
    root = path.resolve().parent.parent.parent
    scenario_path = Path(pin["scenario"])
    if not scenario_path.is_absolute() and (root / scenario_path).exists():
        return root / scenario_path
    return scenario_path
