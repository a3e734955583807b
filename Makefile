# One entry point for setup, synth, the test gate and the benchmarks.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
# jsii and the CDK CLI run on the Node.js pinned in package.json, not the system's.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# Synth is offline: no credentials, no instance-metadata probing, no telemetry or notices.
export AWS_EC2_METADATA_DISABLED := true
export CDK_DISABLE_CLI_TELEMETRY := true
# Python writes its bytecode (into the venvs and the ignored __pycache__/ folders) even where the
# shell says not to: otherwise every process that imports the CDK compiles its modules again,
# seconds each, and the tests start dozens.
unexport PYTHONDONTWRITEBYTECODE
CDK_FLAGS := --no-notices --no-version-reporting

STACKS ?= ZeroCostStack ProdStack
FROM ?= -c phase=1
TO ?= -c phase=2
STACK ?= ZeroCostStack

.PHONY: help synth test test-fast lint typecheck pytest pytest-fast diff deploy cost system-deps run-local \
        bench-synth bench-app bench-copy rehearse clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# uv installs the pinned requirements (seconds where pip takes minutes); pip only installs uv.
UV_VERSION := 0.9.17
UV := $(VENV)/bin/uv
UV_INSTALL = $(UV) pip install --quiet --python

$(UV):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.app-installed: requirements.txt | $(UV)
	@echo "installing the CDK app's Python dependencies into $(VENV)"
	$(UV_INSTALL) $(PY) -r requirements.txt
	@touch $@

# The operator CLIs (migrate-redis, shift-traffic, monitor-migration) and their runtime
# dependencies, installed editable from pyproject.toml so `scripts/*.py` run from the checkout too.
$(VENV)/.cli-installed: $(VENV)/.app-installed pyproject.toml | $(UV)
	@echo "installing the operator CLIs (migrate-redis, shift-traffic, monitor-migration) into $(VENV)/bin"
	$(UV_INSTALL) $(PY) --editable .
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.cli-installed requirements-dev.txt runtime/service/requirements.txt | $(UV)
	@echo "installing the test and lint tools into $(VENV)"
	$(UV_INSTALL) $(PY) -r requirements-dev.txt
	@touch $@

# checkov pins its own dependencies (boto3 among them): it gets a venv of its own.
SCAN_VENV := .venv-scan
$(SCAN_VENV)/.installed: requirements-scan.txt | $(UV)
	@echo "installing checkov into its own venv, $(SCAN_VENV)"
	@test -x $(SCAN_VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(SCAN_VENV)
	$(UV_INSTALL) $(SCAN_VENV)/bin/python -r requirements-scan.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "installing the pinned CDK CLI and Node.js into node_modules (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

system-deps:  ## Install redis-server, nginx and wrk with apt-get when missing
	@bash scripts/install_system_deps.sh

synth: $(VENV)/.cli-installed node_modules/.installed  ## Set up, install the operator CLIs, synthesize both stacks into cdk.out/
	$(CDK) synth $(CDK_FLAGS) --quiet $(CDK_ARGS)
	@echo "synthesized: $$(ls cdk.out/*.template.json | xargs -n1 basename | tr '\n' ' ')"

# The Python and Node installs run side by side, then lint; mypy (one process, about 30 s
# cold) runs beside pytest.
test:  ## The whole gate: ruff, mypy, pytest (the 20 slowest tests listed)
	@$(MAKE) --no-print-directory -j2 system-deps $(VENV)/.dev-installed node_modules/.installed $(SCAN_VENV)/.installed
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory -j2 typecheck pytest

test-fast:  ## The gate without the slow tiers (pytest -m "not slow")
	@$(MAKE) --no-print-directory -j2 system-deps $(VENV)/.dev-installed node_modules/.installed
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory -j2 typecheck pytest-fast

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/actionlint .github/workflows/*.yml

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy infra runtime scripts tests devtools app.py

# Three workers on two cores: the tests wait on servers and subprocesses often enough that a
# third keeps both cores busy (a quiet run ~20 s shorter). Each xdist_group on one worker; work
# handed out in collection order, which tests/conftest.py sorts heaviest first.
PYTEST := $(VENV)/bin/pytest -n 3 --dist loadgroup --no-loadscope-reorder

pytest: $(VENV)/.dev-installed $(SCAN_VENV)/.installed
	$(PYTEST) --durations=20 $(PYTEST_ARGS)

pytest-fast: $(VENV)/.dev-installed
	$(PYTEST) -m "not slow" --durations=10 $(PYTEST_ARGS)

diff: $(VENV)/.app-installed node_modules/.installed  ## Offline diff of two flag sets: make diff FROM="-c phase=1" TO="-c phase=2" [STACK=ZeroCostStack]
	@bash scripts/flag_diff.sh "$(STACK)" "$(FROM)" "$(TO)"

deploy: $(VENV)/.cli-installed node_modules/.installed  ## Deploy the committed environments/production.json: make deploy STACKS="ZeroCostStack" [CDK_ARGS="-c ..."]
	$(CDK) deploy $(CDK_FLAGS) $(CDK_ARGS) $(STACKS)

cost: $(VENV)/.cli-installed node_modules/.installed  ## Monthly list-price cost of each phase, resource by resource; last line JSON
	$(PY) scripts/cost.py $(COST_ARGS)

run-local: system-deps $(VENV)/.dev-installed  ## Run nginx -> gunicorn -> redis on 127.0.0.1:8080 until Ctrl-C
	$(PY) scripts/run_local.py

bench-synth: $(VENV)/.app-installed node_modules/.installed  ## Time the default synth against a one-bucket app
	$(PY) scripts/bench_synth.py

bench-app: system-deps $(VENV)/.dev-installed  ## wrk through nginx -> gunicorn -> redis on one core
	$(PY) scripts/bench_app.py

bench-copy: system-deps $(VENV)/.dev-installed  ## Copy 1M keys between two local redis-servers against REPLICAOF, with each process's CPU seconds (goals: copy alone >= 0.8x, default command >= 0.5x, 150k-key reconciliation <= 10 s)
	$(PY) scripts/bench_copy.py

# Each rehearsal keeps its logs and report (~17 MB): the newest REHEARSALS_KEPT runs are kept.
REHEARSALS_KEPT ?= 5
rehearse: system-deps $(VENV)/.dev-installed  ## Rehearse the whole cutover under load; reports of the last 5 runs in .rehearsal/
	@bash scripts/prune_runs.sh .rehearsal $$(( $(REHEARSALS_KEPT) > 0 ? $(REHEARSALS_KEPT) - 1 : 0 ))
	$(PY) scripts/rehearse.py --workdir .rehearsal/$$(date -u +%Y%m%dT%H%M%SZ)

clean:  ## Remove build output (keeps the venv and node_modules)
	rm -rf cdk.out cdk.out.* .bench .rehearsal .pytest_cache .mypy_cache .ruff_cache
