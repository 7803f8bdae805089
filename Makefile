# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv from the
# project's own files (pyproject.toml extras) and reuse it while pyproject.toml is unchanged.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[recon,test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/tomoalign demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info

# --- Benchmarks (benchmarks/README.md) ---------------------------------------------------------
# ETSpy baselines, each in a virtual environment of its own built with the system Python, so that
# the benchmark never times the ETSpy copy installed in .venv for the co-installation test.
BENCH_ETSPY_VERSIONS := 1.3.0 1.1.1
BENCH_VENV_STAMPS := $(foreach v,$(BENCH_ETSPY_VERSIONS),benchmarks/.venv-etspy$(subst .,,$(v))/.installed)

.PHONY: bench-venvs

benchmarks/.venv-etspy%/.installed:
	$(PYTHON) -m venv benchmarks/.venv-etspy$*
	benchmarks/.venv-etspy$*/bin/python -m pip install --quiet --upgrade pip
	benchmarks/.venv-etspy$*/bin/python -m pip install --quiet \
		"etspy==$(shell echo $* | sed -E 's/^([0-9])([0-9])([0-9]+)$$/\1.\2.\3/')"
	touch $@

bench-venvs: $(BENCH_VENV_STAMPS)

# Options go in BENCH_ARGS, e.g. make bench BENCH_ARGS="--small --repeats 1"
BENCH_ARGS ?=

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_align.py $(BENCH_ARGS)

# Tilt-axis estimators and reconstruction (benchmarks/README.md); options in BENCH_TILT_ARGS,
# e.g. make bench-tilt BENCH_TILT_ARGS="--small --repeats 1"
BENCH_TILT_ARGS ?=

.PHONY: bench-tilt

bench-tilt: $(STAMP)
	$(BIN)/python benchmarks/bench_tilt_axis.py $(BENCH_TILT_ARGS)
