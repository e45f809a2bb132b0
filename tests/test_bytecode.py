"""The environment `make setup` builds ships compiled bytecode for what the product imports.

Without it, where PYTHONDONTWRITEBYTECODE is set (our CI machine sets it), every
Python process compiles pandas, pydantic and numpy from source: importing the
engine took 3.4 s instead of 1.1 s, paid by every CLI call, notebook kernel,
sweep worker and live service.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

HEAVY_IMPORTS = ["pandas", "pydantic", "numpy", "simpy", "nats", "pyarrow"]


def compiled_beside(source: Path) -> Path:
    """Where CPython looks for *source*'s bytecode when no cache prefix is set."""
    return source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"


@pytest.mark.parametrize("name", HEAVY_IMPORTS)
def test_installed_packages_carry_bytecode(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    source = Path(module.__file__)
    assert compiled_beside(source).is_file(), (
        f"{name} has no bytecode beside {source}: the venv was installed without "
        "compiling (make setup passes --compile-bytecode to uv)"
    )


def test_the_engine_is_compiled_by_make() -> None:
    engine = Path(importlib.import_module("sim.model.engine").__file__ or "")
    compiled = compiled_beside(engine)
    assert compiled.is_file(), "run `make bytecode` (make test and make demo do)"
