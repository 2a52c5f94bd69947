# cementleak — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/cementleak
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(PY) -m compileall -q cementleak_stats >/dev/null  # byte-compiled as pip compiles an installed package
	$(PY) -m cementleak_stats.models.compiled  # numba compiles its kernels once, here, not in the first analysis
	touch $@

install: $(STAMP) ## Create .venv and install the package with its test tools

report: $(STAMP) ## Validate the data, run the analysis and render the report into _output/
	$(CLI) report

analyze: $(STAMP) ## Run the analysis only; results into _output/results/
	$(CLI) analyze

validate: $(STAMP) ## Check study.yaml and the data files
	$(CLI) validate

test: $(STAMP) ## Run the whole test suite (what CI runs)
	$(PY) -m pytest -n 2 --dist loadgroup --durations=15 $(PYTEST_ARGS)

bench: ## Measure the speed goals (a few minutes; BENCH_FULL=1 adds n = 1,000,000); writes benchmarks/RESULTS.md
	@test -x $(PY) || $(MAKE) install  # an existing venv is used as it is: the benchmark downloads nothing
	$(PY) -m benchmarks.run $(if $(filter-out 0,$(BENCH_FULL)),--full) $(BENCH_ARGS)

simulate: $(STAMP) ## Regenerate the shipped synthetic cohort in data/ (documented seed)
	$(CLI) simulate --out data

clean: ## Remove outputs and caches (never data/)
	rm -rf _output .cementleak-cache .pytest_cache .hypothesis build *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

distclean: clean ## Also remove the virtual environment
	rm -rf $(VENV)

.PHONY: help install report analyze validate test bench simulate clean distclean
