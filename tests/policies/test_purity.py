"""The functional core stays pure: no simulation clock, event loop or broker in sim/policies."""

from __future__ import annotations

import ast
from pathlib import Path

import sim.policies

POLICIES = Path(sim.policies.__file__).parent
FORBIDDEN = {"simpy", "asyncio", "nats", "time", "threading", "socket", "random"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_policy_module_imports_a_clock_loop_or_broker() -> None:
    modules = sorted(POLICIES.rglob("*.py"))
    assert len(modules) >= 5
    assert any(module.parent.name == "raft" for module in modules)  # sub-packages too
    for module in modules:
        bad = imported_roots(module) & FORBIDDEN
        assert not bad, f"{module.name} imports {sorted(bad)}"


def test_the_exported_surface_is_explicit() -> None:
    exported = sim.policies.__all__
    assert len(set(exported)) == len(exported)  # ruff's RUF022 keeps it sorted
    for name in exported:
        assert hasattr(sim.policies, name), name
