"""The notebooks run, top to bottom, at CI size (papermill injects smaller parameters).

Each notebook ends with a cell of assertions about its own results, so a
notebook that runs but computes nonsense fails here too. Outputs are kept out
of git: the committed files must be stripped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from support import ROOT

NOTEBOOKS = ROOT / "notebooks"

#: Parameters for CI: each notebook well under a minute on one core.
CI_PARAMETERS: dict[str, dict[str, Any]] = {
    "01_tune_autoscaler.ipynb": {
        "HOURS": 1.5,
        "BURST": "[{at: 40m, duration: 15m, factor: 5}]",
        "THRESHOLDS": [50, 150],
        "COOLDOWNS": ["2m", "10m"],
        "REPLICATIONS": 1,
        "TRIALS": 4,
        "WORKERS": 1,
    },
    "02_load_balancing.ipynb": {"HOURS": 0.5, "REPLICATIONS": 1},
    "03_capacity_plan.ipynb": {
        "HOURS": 1.0,
        "WARMUP_HOURS": 0.25,
        "MAX_REPLICATIONS": 4,
        "PHASES": ["phase_3_1", "phase_3_4"],
        "WORKERS": 1,
    },
    "04_chaos_replay.ipynb": {"DURATION": "2h"},
}


def all_notebooks() -> list[str]:
    return sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_has_ci_parameters() -> None:
    assert all_notebooks() == sorted(CI_PARAMETERS)


@pytest.mark.parametrize("name", all_notebooks())
def test_notebook_is_stored_without_outputs(name: str) -> None:
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a cell has outputs; strip them before committing"
            assert cell.execution_count is None, f"{name}: a cell has an execution count"
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected one cell tagged 'parameters' at the top"
    assert book.cells.index(tagged[0]) <= 1


@pytest.mark.parametrize("name", all_notebooks())
def test_notebook_runs_at_ci_size(name: str, tmp_path: Path) -> None:
    executed = tmp_path / name
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(executed),
        parameters=CI_PARAMETERS[name],
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
    )
    book = nbformat.read(executed, as_version=4)
    errors = [
        output
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    images = [
        output
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{name}: expected at least one figure"
