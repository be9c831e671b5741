# EdgeZoo: `make run` sets up and runs the main job; `make test` sets up and runs the tests.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export EDGEZOO_WORKSPACE ?= $(CURDIR)/edgezoo-workspace

.PHONY: setup run run-lm test test-slow test-macos bench clean

$(STAMP): pyproject.toml
	@# Debian's chromium drives the dashboard's browser test (Playwright never downloads a browser here);
	@# Debian's OpenBLAS is preloaded into MLX's measuring children (its bundled CPU BLAS is slow)
	@if command -v apt-get >/dev/null && { ! command -v chromium >/dev/null || \
		[ ! -e /usr/lib/x86_64-linux-gnu/libopenblas.so.0 ]; }; then \
		apt-get update -qq && apt-get install -y -qq chromium libopenblas0-pthread >/dev/null; fi
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/edgezoo run

# the language-model path: OpenELM byte LM x {fp32, int8, int4, SeedLM-4, SeedLM-3} x {torch, ONNX, MLX, Core ML}
run-lm: setup
	$(BIN)/edgezoo lm run --compressions none,int8,int4,seedlm4,seedlm3

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
