# Two commands from a fresh clone: `make demo` and `make test`. Every target creates .venv when it
# is missing and installs the pinned versions from constraints.txt (regenerate it with
# `make constraints` after changing setup.cfg on a working install).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JAX_PLATFORMS ?= cpu
# Compiled XLA programs are reused across test workers, subprocess smoke tests and later runs.
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax
# Fewer XLA threads than cores would be slower; more than the 2 CI cores only adds contention.
PYTEST_WORKERS ?= 2
# Tests and smoke runs are dominated by XLA compilation of small programs on the CPU: skipping
# LLVM's expensive passes cuts the suite's CPU time by about a fifth (measured; the tests pass with
# and without it). Benchmarks and full reproductions keep the default optimisation.
FAST_COMPILE_XLA_FLAGS := --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true

.PHONY: demo test lint bench reproduce venv constraints clean

$(STAMP): setup.cfg constraints.txt
	@test -x $(PY) || (command -v $(PYTHON) >/dev/null && $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV))
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	@touch $(STAMP)

venv: $(STAMP)

# One headline experiment per paper at its demo preset (minutes of computing, so XLA keeps its
# default optimisation); a second call resumes finished runs.
demo: $(STAMP)
	$(PY) -m launch.reproduce --preset=demo --out=results

test: $(STAMP)
	XLA_FLAGS="$(FAST_COMPILE_XLA_FLAGS) $$XLA_FLAGS" $(PY) -m pytest -q -n $(PYTEST_WORKERS) --durations=15 -m "not slow" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

reproduce: $(STAMP)
	$(PY) -m launch.reproduce --preset=full --out=results

constraints:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
