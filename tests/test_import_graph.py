"""The import graph of ``sim``, read from the source: no circle anywhere, ``sim.model`` included.

A circle means two modules that cannot be understood (or tested, or moved)
one without the other. The graph counts every import at any depth — late
imports inside functions and ``TYPE_CHECKING`` blocks too, since they
couple the modules just as much. The import rules between the packages are
``tests/policies/test_purity.py``'s; this test adds: no circle anywhere.

The SimPy shell was the last circle (nine modules around a ``Simulation``
passed as a service locator; issue 13). Its collaborators now get what they
use from the engine, the slot loop states what it needs as a protocol of its
own (``sim.model.agent.SlotHost``), and the graph inside ``sim.model`` is a
tree of layers: agent and records at the bottom, then the dispatch side,
then fleet and failover, then control and chaos, the engine on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sim

SIM = Path(sim.__file__).parent


def module_names() -> dict[str, Path]:
    names = {}
    for path in SIM.rglob("*.py"):
        parts = path.relative_to(SIM.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported(module: str, path: Path) -> set[str]:
    """Every ``sim`` name *module* imports (absolute or relative, any depth)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = (
                    module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                )
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "sim" or name.startswith("sim.")}


def graph() -> dict[str, set[str]]:
    names = module_names()

    def owner(name: str) -> str | None:
        while name and name not in names:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {}
    for module, path in names.items():
        targets = {owner(name) for name in imported(module, path)}
        edges[module] = {t for t in targets if t is not None and t != module}
    return edges


def circles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_the_finder_sees_a_circle_it_is_shown() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(edges) == [frozenset({"a", "b", "c"})]


def test_relative_and_late_imports_count() -> None:
    edges = graph()
    # sim.cli registers the analysis commands: a plain edge the graph must see.
    assert "sim.analysis.cli" in edges["sim.cli"]
    assert "sim.cli_support" in edges["sim.analysis.cli"]


def test_no_import_circle() -> None:
    found = circles(graph())
    assert found == [], f"import circles: {[sorted(c) for c in found]}"


def test_the_simpy_shell_has_no_circle_and_one_would_be_caught() -> None:
    """sim.model alone is circle-free; one back edge (the agent importing its host) is caught."""
    edges = graph()
    model = {m: {t for t in ts if t.startswith("sim.model")} for m, ts in edges.items()}
    model = {m: ts for m, ts in model.items() if m.startswith("sim.model")}
    assert len(model) > 20
    assert circles(model) == []
    # The slot books depend on the agent; were the agent to import them back, that is a circle.
    assert "sim.model.agent" in model["sim.model.slots"]
    model["sim.model.agent"] = model["sim.model.agent"] | {"sim.model.slots"}
    assert any({"sim.model.agent", "sim.model.slots"} <= c for c in circles(model))


def test_no_collaborator_takes_the_simulation() -> None:
    """Only the engine knows the Simulation: no module of the shell imports sim.model.engine."""
    edges = graph()
    users = sorted(m for m, targets in edges.items() if "sim.model.engine" in targets)
    assert all(not m.startswith("sim.model") for m in users), users
