# EdgeZoo: `make run` sets up and runs the main job; `make test` sets up and runs the tests.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export EDGEZOO_WORKSPACE ?= $(CURDIR)/edgezoo-workspace

.PHONY: setup run test test-slow test-macos bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/edgezoo run

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

test-macos: setup
	$(BIN)/python -m pytest -q -m macos

bench: setup
	$(BIN)/python -m pytest -q -s -m benchmark tests/benchmarks

clean:
	rm -rf $(VENV) edgezoo-workspace
