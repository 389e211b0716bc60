# tether — set-up, checks, demo and benchmarks. Every target creates .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
STAMP_BENCH := $(VENV)/.installed-bench

.PHONY: demo test lint typecheck importlint unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setup.py compiles hot modules with mypyc (docs/compiled.md): editing them rebuilds.
BUILD_INPUTS := pyproject.toml setup.py $(shell find src/tether -name '*.py')

$(STAMP_RUN): $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(STAMP_DEV): $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(STAMP_RUN)

$(STAMP_BENCH): pyproject.toml $(STAMP_DEV)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $@

## make demo: install tether and run the demo over tcp, unix, tls and memory
demo: $(STAMP_RUN)
	$(BIN)/tether demo

## make test: lint, format check, type check, architecture check, then every test
test: lint typecheck importlint unit

lint: $(STAMP_DEV)
	$(BIN)/ruff check src tests docs
	$(BIN)/ruff format --check src tests docs

typecheck: $(STAMP_DEV)
	$(BIN)/mypy

importlint: $(STAMP_DEV)
	$(BIN)/lint-imports

unit: $(STAMP_DEV)
	$(BIN)/tether --version  # compiled (mypyc) or pure Python: the build under test
	$(BIN)/python -m pytest -q

## make bench: every transport x protocol, the Python peers and the raw ceiling (tether bench)
bench: $(STAMP_BENCH)
	@# Bytecode for tether's modules, as a regular pip install writes it (the peers have
	@# theirs): without it every server process compiles them again, ~1 MiB more RSS.
	$(BIN)/python -m compileall -q src/tether
	$(BIN)/tether bench --peers --out bench-results

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find src -name '*.so' -delete; rm -f src/tether/_compiled_sources.txt
