# Two commands matter: `make demo` and `make test`. Both build the venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NPROC  := $(shell nproc 2>/dev/null || echo 2)

.PHONY: bytecode setup demo test lint format typecheck bench docs clean browser check check-update

setup: $(STAMP)

# uv resolves and installs the same versions as pip in a fifth of the time (about 25 s
# against 2 min here); pip stays the fallback where uv cannot be installed.
# --compile-bytecode: uv leaves packages without .pyc files (pip compiles them), and
# where PYTHONDONTWRITEBYTECODE is set (as on our CI machine) nothing ever caches
# them, so every Python process compiled pandas, pydantic and numpy from source:
# 3.4 s to import the engine instead of 1.1 s, paid by every CLI call, test
# subprocess, notebook kernel, sweep worker and live service.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	if $(BIN)/python -m pip install --quiet uv; then \
		$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev,bench]'; \
	else \
		$(BIN)/python -m pip install --quiet --upgrade pip && \
		$(BIN)/python -m pip install --quiet -e '.[dev,bench]'; \
	fi
	touch $(STAMP)

# The product's own modules, compiled where they changed (an editable install is not
# compiled by the installer; a .pyc older than its source is ignored, never wrong).
bytecode: setup
	$(BIN)/python -m compileall -q sim

demo: setup bytecode
	$(BIN)/orchestra run scenarios/baseline_200.yaml

lint: setup
	$(BIN)/ruff check sim tests benchmarks
	$(BIN)/ruff format --check sim tests benchmarks
	$(BIN)/mypy sim

format: setup
	$(BIN)/ruff format sim tests benchmarks
	$(BIN)/ruff check --fix sim tests benchmarks

# Chromium for the report's browser test (Debian's package; never `playwright install`).
browser:
	command -v chromium >/dev/null 2>&1 || (S=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$S apt-get update -qq && $$S env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Two lanes side by side: the wall-clock live tests one at a time, the rest on every core
# at a lower priority (tests/run_two_lanes.sh says why). The type check (about 30 s on a
# fresh clone) runs beside them at the lower priority too, off the live lane's critical
# path; ruff, a fraction of a second, first.
test: setup bytecode browser
	$(BIN)/ruff check sim tests benchmarks
	$(BIN)/ruff format --check sim tests benchmarks
	PY=$(BIN)/python NPROC=$(NPROC) TYPECHECK="$(BIN)/mypy sim" tests/run_two_lanes.sh

# CI regression of the pinned scenarios in baselines/ (also run by `make test`, from pytest).
check: setup bytecode
	$(BIN)/orchestra check --baseline baselines --junit reports/check-junit.xml

# After an intended model or policy change: re-pin every baseline (review the diff, commit it).
check-update: setup
	$(BIN)/orchestra check --baseline baselines --update

bench: setup bytecode
	$(BIN)/python benchmarks/bench_core.py

docs: setup
	$(BIN)/orchestra schema --markdown > docs/scenarios.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
