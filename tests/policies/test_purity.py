"""The architecture's import rules, read from the source (DESIGN.md, "functional core, two shells").

* ``sim/policies`` is pure: no simulation clock, event loop or broker, and
  nothing of the project but its own modules — not the scenario schema (the
  one factory that reads the schema is ``sim.world.policy_set``).
* The two shells never import each other: ``sim/model`` (SimPy) and
  ``sim/live`` (asyncio + NATS).
* The neutral packages ``sim/world`` and ``sim/metrics`` import neither shell,
  nor SimPy, asyncio or NATS.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sim.policies

SIM = Path(sim.policies.__file__).parent.parent
FORBIDDEN_IN_CORE = {"simpy", "asyncio", "nats", "time", "threading", "socket", "random"}
SHELL_RUNTIMES = {"simpy", "asyncio", "nats"}


def imports(path: Path) -> set[str]:
    """Every absolute module name *path* imports, at any depth (TYPE_CHECKING blocks too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def roots(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def modules(package: str) -> list[Path]:
    found = sorted((SIM / package).rglob("*.py"))
    assert len(found) >= 3, package
    return found


def test_no_policy_module_imports_a_clock_loop_or_broker() -> None:
    found = modules("policies")
    assert any(module.parent.name == "raft" for module in found)  # sub-packages too
    for module in found:
        bad = roots(imports(module)) & FORBIDDEN_IN_CORE
        assert not bad, f"{module.name} imports {sorted(bad)}"


def test_the_core_imports_nothing_of_the_project_but_itself() -> None:
    for module in modules("policies"):
        outside = {
            name
            for name in imports(module)
            if name.startswith("sim.") and not name.startswith("sim.policies")
        }
        assert not outside, f"{module.relative_to(SIM)} imports {sorted(outside)}"


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("model", ("sim.live",)),
        ("live", ("sim.model",)),
        ("world", ("sim.model", "sim.live")),
        ("metrics", ("sim.model", "sim.live")),
    ],
)
def test_the_shells_never_import_each_other(package: str, forbidden: tuple[str, ...]) -> None:
    for module in modules(package):
        bad = {name for name in imports(module) if name.startswith(forbidden)}
        assert not bad, f"{module.relative_to(SIM)} imports {sorted(bad)}"


@pytest.mark.parametrize("package", ["world", "metrics"])
def test_the_neutral_packages_need_no_shell_runtime(package: str) -> None:
    for module in modules(package):
        bad = roots(imports(module)) & SHELL_RUNTIMES
        assert not bad, f"{module.relative_to(SIM)} imports {sorted(bad)}"


def test_the_exported_surface_is_explicit() -> None:
    exported = sim.policies.__all__
    assert len(set(exported)) == len(exported)  # ruff's RUF022 keeps it sorted
    for name in exported:
        assert hasattr(sim.policies, name), name
