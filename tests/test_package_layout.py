"""The layout issue 13 asks for, read from the source, for the packages already split.

* The split packages stay small: no module over ~450 lines, no function over
  ~60, so a newcomer can hold one module and read one function at a time.
* No module of the core or the neutral world imports another module's private
  (``_underscore``) name: a name shared between modules is public there.
* A package's submodules never import the package itself, so the re-exporting
  ``__init__`` cannot close an import circle.
* The import paths that existed before the split still work, so callers need
  not know a module became a package.
* The live shell (``sim/live``) is held to the same: no module over 500
  lines; no function over ~60 but a few named ones not split yet, each held
  to its length today so it can only shrink (and leaves the list once short).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import sim

SIM = Path(sim.__file__).parent
SPLIT_PACKAGES = (
    "policies/balancing",
    "policies/autoscale",
    "policies/health",
    "policies/raft",
    "scenario",
    "world/dag_shapes",
)
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
MAX_LIVE_MODULE_LINES = 500

#: sim/live functions over MAX_FUNCTION_LINES not split yet: "path:name" -> lines today.
LIVE_LONG_FUNCTIONS: dict[str, int] = {}
#: The SimPy shell is split by actor (chief, zone coordinators, slots, fleet, failover,
#: ...), not into packages; its modules stay under ~500 lines (the Raft shell is the largest).
SHELL_MODULE_LINES = 500

#: What callers imported from each module before it became a package.
SURFACE = {
    "sim.policies.balancing": (
        "STRATEGIES AffinityBalancer LeastConnectionsBalancer LoadBalancer PowerOfTwoBalancer "
        "RoundRobinBalancer WeightedBalancer make_balancer"
    ),
    "sim.policies.autoscale": (
        "AUTOSCALERS DEFAULT_SCALE_DOWN DEFAULT_SCALE_UP STEP_METRICS Autoscaler FleetObservation "
        "HpaConfig HpaPolicy KedaConfig KedaQueuePolicy ScaleDecision ScalingPolicy ScalingRules "
        "SizeOption StepConfig StepPolicy configure size_options"
    ),
    "sim.policies.health": (
        "Cdf ConsecutiveFailureDetector FailureDetector HealthState HealthTransition PhaseSource "
        "PhiAccrualDetector phi_value"
    ),
    "sim.policies.raft": (
        "LOCAL_KINDS RESPONSE_KINDS Entry HardState InvalidTransition MemoryStorage Message "
        "MessageKind Progress ProgressState RaftLog RaftNode Ready Role RoleChange Storage Tracker "
        "VoteResult quorum_index"
    ),
    "sim.scenario.schema": (
        "SPEC_CATEGORY_SHARES AgentSelector AlertRule Arrivals ChaosEvent Cost Health Network "
        "RandomChaos Scaling Scenario ServiceTime Severity Slow"
    ),
    "sim.live.agent": (
        "AgentConfig AgentLink EpochWatch LiveAgent add_agent_arguments agent_main make_handler "
        "while_swamped"
    ),
    "sim.live.records": (
        "DRAINED_COLUMNS TRANSPORT_SLACK_WALL_S LiveRecords agents_frame build_records"
    ),
    "sim.live.runtime": "LiveOptions LiveRun arrivals live_run scaled_scenario",
    "sim.world.dag_shapes": (
        "SCIENTIFIC_SHAPES SHAPES SYNTHETIC_SHAPES DagFileError generate_dag generate_typed_dag "
        "load_dag_file parse_dag_document task_type_category"
    ),
}


def split_modules() -> list[Path]:
    found = [path for package in SPLIT_PACKAGES for path in sorted((SIM / package).glob("*.py"))]
    assert len(found) >= 4 * len(SPLIT_PACKAGES)  # each is a package of several modules
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(SIM.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_split_modules_are_short() -> None:
    for path in split_modules():
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_MODULE_LINES, f"{path.relative_to(SIM)}: {lines} lines"


def shell_modules() -> list[Path]:
    found = sorted((SIM / "model").glob("*.py"))
    assert len(found) > 20
    return found


def test_shell_modules_are_short() -> None:
    for path in shell_modules():
        lines = len(path.read_text().splitlines())
        assert lines <= SHELL_MODULE_LINES, f"{path.relative_to(SIM)}: {lines} lines"


def test_split_modules_have_no_long_function() -> None:
    for path in [*split_modules(), *shell_modules()]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                assert lines <= MAX_FUNCTION_LINES, (
                    f"{path.relative_to(SIM)}:{node.lineno} {node.name}: {lines} lines"
                )


@pytest.mark.parametrize("package", ["policies", "scenario", "world"])
def test_no_module_imports_a_private_name_of_another(package: str) -> None:
    modules = sorted((SIM / package).rglob("*.py"))
    assert len(modules) > 10
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sim"):
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                assert not private, f"{path.relative_to(SIM)} imports {private} from {node.module}"


def test_submodules_never_import_their_own_package() -> None:
    for path in split_modules():
        if path.name == "__init__.py":
            continue
        package = module_name(path.parent / "__init__.py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != package, f"{path.relative_to(SIM)} imports {package}"


@pytest.mark.parametrize("module", sorted(SURFACE))
def test_the_import_paths_from_before_the_split_still_work(module: str) -> None:
    imported = importlib.import_module(module)
    exported = set(imported.__all__)
    for name in SURFACE[module].split():
        assert name in exported, f"{module} no longer exports {name}"
        assert getattr(imported, name) is not None
    for name in exported:  # and __all__ names nothing that is not there
        assert hasattr(imported, name), f"{module}.__all__ names missing {name}"


def live_modules() -> list[Path]:
    found = sorted((SIM / "live").rglob("*.py"))
    assert len(found) > 40
    return found


def test_live_modules_are_short() -> None:
    for path in live_modules():
        lines = len(path.read_text().splitlines())
        assert lines <= MAX_LIVE_MODULE_LINES, f"{path.relative_to(SIM)}: {lines} lines"


def test_live_functions_are_short_or_listed_and_not_growing() -> None:
    long: dict[str, int] = {}
    for path in live_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SIM).as_posix()}:{node.name}"] = lines
    for name, lines in long.items():
        assert name in LIVE_LONG_FUNCTIONS, f"{name}: {lines} lines"
        assert lines <= LIVE_LONG_FUNCTIONS[name], f"{name} grew to {lines} lines"
    shortened = set(LIVE_LONG_FUNCTIONS) - set(long)
    assert not shortened, f"short now, take off LIVE_LONG_FUNCTIONS: {sorted(shortened)}"


#: Every module of the product, whatever its package: a newcomer reads one in a sitting.
ANY_MODULE_LINES = 500


def test_no_module_of_the_product_is_long_and_no_function_either() -> None:
    """The rule of the whole tree (issue 13): modules up to ~500 lines, functions up to 60."""
    offenders: list[str] = []
    for path in sorted(SIM.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(SIM).as_posix()
        if len(text.splitlines()) > ANY_MODULE_LINES:
            offenders.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    offenders.append(f"{name}:{node.name}: {lines} lines")
    assert not offenders, offenders


def modules_loaded(setup: str, unwanted: str) -> str:
    """The modules a fresh interpreter has loaded after *setup* that *unwanted* (an
    expression in ``m``, a module's name) matches, as the printed sorted list."""
    import subprocess
    import sys

    probe = f"import sys; {setup}; print(sorted(m for m in sys.modules if {unwanted}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_simulators_command_line_does_not_load_the_live_shell() -> None:
    """``orchestra run`` builds the live commands' parsers but loads none of the live shell:
    neither shell imports the other, and nats-py with the live modules cost 0.35-0.4 s of
    every simulator command's start (0.9 s to 0.5 s for ``--help``)."""
    unwanted = (
        "m == 'nats' or m.startswith(('nats.', 'sim.live.')) and m not in "
        "('sim.live.cli', 'sim.live.serve_cli', 'sim.live.agent_config')"
    )
    assert modules_loaded("import sim.cli; sim.cli._parser()", unwanted) == "[]"


def test_an_agent_process_loads_no_policy_it_does_not_use() -> None:
    """``python -m sim.live.agent`` needs the LLM retry rule, the attempt's fate (errors,
    deadlines) and the keyed draws of ``sim.policies`` and nothing else of it: loading
    every policy (numpy with the balancers) doubled an agent's start, 0.35 s to 0.16 s,
    paid 173 times when the spec's fleet starts."""
    unwanted = (
        "m in ('numpy', 'pandas', 'simpy') "
        "or m.startswith('sim.policies.') "
        "and not m.startswith("
        "('sim.policies.llm', 'sim.policies.task_faults', 'sim.policies.keyed_draws'))"
    )
    assert modules_loaded("import sim.live.agent", unwanted) == "[]"


def test_the_policy_package_still_offers_every_public_name() -> None:
    """The names load on first use, from the module that defines each (one table)."""
    import sim.policies as policies

    assert sorted(policies.__all__) == sorted(policies._HOME)
    for name in policies.__all__:
        value = getattr(policies, name)
        assert getattr(value, "__module__", policies._HOME[name]).startswith("sim.policies")
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = policies.Nope
