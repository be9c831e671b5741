# EdgeZoo: `make run` sets up and runs the main job; `make test` sets up and runs the tests.
# Supported Pythons (pyproject's requires-python); the first one on PATH builds the venv unless PY=... is given
SUPPORTED_PY := 3.11 3.12 3.13
PY ?= $(firstword $(foreach v,$(SUPPORTED_PY),$(shell command -v python$(v) 2>/dev/null)))
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export EDGEZOO_WORKSPACE ?= $(CURDIR)/edgezoo-workspace
# the resolved versions for this platform and Python (.ci/locks), when there is a lock for them
OS_ARCH := $(shell uname -s)-$(shell uname -m)
LOCK_PLATFORM := $(if $(filter Linux-x86_64,$(OS_ARCH)),linux-x86_64,$(if $(filter Darwin-arm64,$(OS_ARCH)),macos-arm64))
PY_TAG := $(if $(PY),$(shell $(PY) -c 'import sys; print("py%d%d" % sys.version_info[:2])' 2>/dev/null))
LOCK := $(wildcard .ci/locks/$(LOCK_PLATFORM)-$(PY_TAG).txt)

.PHONY: setup run run-lm test test-slow test-macos bench check-macos-wheels clean

$(STAMP): pyproject.toml $(LOCK)
	@test -n "$(PY)" || { echo "error: no supported Python ($(SUPPORTED_PY)) on PATH -> install one (macOS: \
	brew install python@3.13; Debian: apt-get install python3.11) or run make PY=/path/to/python3.X"; exit 1; }
	@# Debian's chromium drives the dashboard's browser test (Playwright never downloads a browser here);
	@# Debian's OpenBLAS is preloaded into MLX's measuring children (its bundled CPU BLAS is slow)
	@if command -v apt-get >/dev/null && { ! command -v chromium >/dev/null || \
		[ ! -e /usr/lib/x86_64-linux-gnu/libopenblas.so.0 ]; }; then \
		apt-get update -qq && apt-get install -y -qq chromium libopenblas0-pthread >/dev/null; fi
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' $(if $(LOCK),-c $(LOCK))
	@# on macOS the browser test drives Playwright's own Chromium (on Linux: Debian's, installed above)
	@if [ "$$(uname -s)" = Darwin ]; then $(BIN)/python -m playwright install chromium; fi
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

# every dependency has a macOS 14 arm64 wheel for each supported Python (resolution only, nothing installed)
check-macos-wheels: setup
	PYTHONS="$(SUPPORTED_PY)" UV="$(BIN)/uv" bash .ci/check-macos-wheels
