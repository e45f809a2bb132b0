# Two commands matter: `make demo` and `make test`. Both build the venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NPROC  := $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup demo test lint format typecheck bench docs clean browser check check-update

setup: $(STAMP)

# uv resolves and installs the same versions as pip in a fifth of the time (about 25 s
# against 2 min here); pip stays the fallback where uv cannot be installed.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	if $(BIN)/python -m pip install --quiet uv; then \
		$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,bench]'; \
	else \
		$(BIN)/python -m pip install --quiet --upgrade pip && \
		$(BIN)/python -m pip install --quiet -e '.[dev,bench]'; \
	fi
	touch $(STAMP)

demo: setup
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
test: setup browser
	$(BIN)/ruff check sim tests benchmarks
	$(BIN)/ruff format --check sim tests benchmarks
	PY=$(BIN)/python NPROC=$(NPROC) TYPECHECK="$(BIN)/mypy sim" tests/run_two_lanes.sh

# CI regression of the pinned scenarios in baselines/ (also run by `make test`, from pytest).
check: setup
	$(BIN)/orchestra check --baseline baselines --junit reports/check-junit.xml

# After an intended model or policy change: re-pin every baseline (review the diff, commit it).
check-update: setup
	$(BIN)/orchestra check --baseline baselines --update

bench: setup
	$(BIN)/python benchmarks/bench_core.py

docs: setup
	$(BIN)/orchestra schema --markdown > docs/scenarios.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
