# sagepipe: every developer and CI entry point. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The project runs on the Lambda runtime's Python. pyenv shims only answer for the active version,
# so look in pyenv's version directories too.
PYTHON_VERSION ?= 3.13
ifeq ($(origin PYTHON), undefined)
PYTHON := $(shell for c in $$HOME/.pyenv/versions/$(PYTHON_VERSION)*/bin/python$(PYTHON_VERSION) python$(PYTHON_VERSION) /usr/local/bin/python$(PYTHON_VERSION) /usr/bin/python$(PYTHON_VERSION); do "$$c" -c '' >/dev/null 2>&1 && { echo "$$c"; break; }; done)
endif

VENV := .venv
CHECKOV_VENV := .venv-checkov
BIN := $(VENV)/bin
BUILD_DIR := .build

# Offline, credential-free AWS tooling (see README, "Working offline").
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true
# sam build looks for python3.13 on PATH: the venv provides it.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- environments
$(BIN)/.installed: requirements/dev.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python $(PYTHON_VERSION) not found (set PYTHON=/path/to/python$(PYTHON_VERSION))" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(CHECKOV_VENV)/bin/.installed: requirements/checkov.txt
	@test -n "$(PYTHON)" || { echo "error: Python $(PYTHON_VERSION) not found" >&2; exit 1; }
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/checkov.txt
	touch $@

.PHONY: venv
venv: $(BIN)/.installed ## Create the project virtual environment (.venv)

.PHONY: system-deps
system-deps: ## Install Graphviz (for graph.svg) when it is missing and we may
	@command -v dot >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO=sudo; else \
	  echo "note: Graphviz 'dot' is missing; run 'sudo apt-get install graphviz' to get graph.svg" >&2; exit 0; fi; \
	$$SUDO apt-get install -y -qq graphviz >/dev/null 2>&1 || { $$SUDO apt-get update -qq >/dev/null && $$SUDO apt-get install -y -qq graphviz >/dev/null; }

.PHONY: browser-deps
browser-deps: ## Install Debian's Chromium (for the console's browser tests) when it is missing and we may
	@test -x /usr/bin/chromium && exit 0; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO=sudo; else \
	  echo "note: /usr/bin/chromium is missing; run 'sudo apt-get install chromium' for the console's browser tests" >&2; exit 0; fi; \
	$$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || { $$SUDO apt-get update -qq >/dev/null && $$SUDO apt-get install -y -qq chromium >/dev/null; }

.PHONY: lock
lock: ## Re-pin requirements/*.txt from requirements/*.in (needs uv)
	uv pip compile requirements/dev.in -o requirements/dev.txt --python-version $(PYTHON_VERSION) --no-header --quiet
	uv pip compile requirements/checkov.in -o requirements/checkov.txt --python-version $(PYTHON_VERSION) --no-header --quiet

# ---------------------------------------------------------------- the product
.PHONY: demo
demo: venv system-deps ## Run the whole pipeline locally: no AWS account, no Docker
	$(BIN)/sagepipe local run
	@echo
	@echo "See the runs in a browser (http://127.0.0.1:8765):  $(BIN)/sagepipe console --local"

.PHONY: build
build: venv ## sam build (cached, parallel)
	$(BIN)/sam build --cached --parallel

# ---------------------------------------------------------------- checks
.PHONY: lint
lint: venv ## ruff, mypy, and shellcheck on the local build's shell scripts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/shellcheck sagepipe/local/codebuild/*.sh sagepipe/local/codebuild/stubs/*.sh

.PHONY: translate
translate: venv ## Translate the SAM template (ASL inlined) into $(BUILD_DIR)/
	$(BIN)/sagepipe dev translate --out-dir $(BUILD_DIR)

.PHONY: validate
validate: translate ## sam validate --lint, and cfn-lint on the SAM and the translated templates
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint --include-checks I -- template.yaml $(BUILD_DIR)/template.all-features.yaml
	$(BIN)/cfn-lint --include-checks I -- $(BUILD_DIR)/translated.json $(BUILD_DIR)/translated.all-features.json

.PHONY: checkov
checkov: translate $(CHECKOV_VENV)/bin/.installed ## checkov on the SAM and translated templates, every condition on
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
	  -f template.yaml -f $(BUILD_DIR)/template.all-features.yaml \
	  -f $(BUILD_DIR)/translated.json -f $(BUILD_DIR)/translated.all-features.json

# pytest-xdist: one worker per core (PYTEST_WORKERS=1 runs in one process), each worker with its own emulator
# (tests/local/conftest.py), port and temporary directories; --dist loadfile keeps each test file on one worker, in
# its order, so that a module's provisioned stack is built once (the story tests of the audit trail and the model
# gate depend on it). xdist_group marks are not used: under pytest 9.2 with pytest-xdist 3.8 --dist loadgroup
# spread one group's tests over both workers (tried on 2026-12-01). --no-loadscope-reorder hands the files out in
# collection order (tests/local's end-to-end files, then the quick tiers, which fill the gaps) instead of xdist's
# default, most tests first, which left the end-to-end files of one to three long tests (the storm's two take
# 110-120 s each) for last: simulated from the tests' junit durations, 971 s of pytest becomes 889 s; measured in
# fresh-clone .ci/run proofs (2026-12-01), 1,010 s on 4477311 became 848 s on 3d5e1e4.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder
# Python writes its bytecode caches (__pycache__, gitignored; pytest's rewritten test modules among them) even where
# the environment sets PYTHONDONTWRITEBYTECODE (this machine's does): without them every run, in every worker and
# every `sagepipe` subprocess, compiled the tests and sources again: 7–11 s of make test-fast's 65–77 s (2026-12-01).
# They go to one tree of their own under $(BUILD_DIR) (PYTHONPYCACHEPREFIX, honoured by pytest's rewritten modules
# too), not beside the sources: sam build, running beside the suite in make test, checksums and copies functions/,
# and a __pycache__ written there while it reads would change what it builds.
PYTEST := PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/$(BUILD_DIR)/pycache $(BIN)/pytest

.PHONY: pytest
pytest: venv system-deps browser-deps ## The test suite (unit, static, contract, local end to end, browser), in parallel
	$(PYTEST) $(PYTEST_PARALLEL)

.PHONY: test-fast
test-fast: lint ## The inner loop: lint, and every test except the end-to-end tier (marker e2e)
	$(PYTEST) $(PYTEST_PARALLEL) -m "not e2e"

.PHONY: console-screenshot
console-screenshot: venv system-deps browser-deps ## Regenerate docs/console.png (the README's) from the browser tests
	SAGEPIPE_TEST_OUTPUT=$(BUILD_DIR)/test-output $(BIN)/pytest -q tests/local/test_console_browser.py -k failed_run
	cp $(BUILD_DIR)/test-output/console/failed-run.png docs/console.png

# make test runs the static checks (lint, validate, checkov) and sam build beside the test suite, in a second job
# slot. The suite leaves part of the two cores idle (`time make pytest` on 2026-12-01: 25 min 33 s of user CPU in
# 15 min 5 s, 85% of two cores); the checks and the build, about 3 min of one core, fill part of the rest. They read
# the template, the state machine and the sources, and write .build/, .aws-sam/ and the tools' caches, which no test
# reads; the tests write no file under functions/ (their bytecode goes to $(BUILD_DIR)/pycache: see PYTEST above). The
# checks' output is kept in .build/static-checks.log and printed when they end, so that it does not break up pytest's.
STATIC_CHECKS_LOG := $(BUILD_DIR)/static-checks.log

.PHONY: static-checks
static-checks: venv $(CHECKOV_VENV)/bin/.installed ## lint, validate, checkov and sam build, one after another
	$(MAKE) --no-print-directory lint validate checkov build

.PHONY: static-checks-beside
static-checks-beside: venv $(CHECKOV_VENV)/bin/.installed
	@mkdir -p $(BUILD_DIR)
	@$(MAKE) --no-print-directory static-checks >$(STATIC_CHECKS_LOG) 2>&1 && status=0 || status=$$?; \
	  echo "---- static checks (lint, validate, checkov, sam build), run beside the test suite: exit $$status"; \
	  cat $(STATIC_CHECKS_LOG); echo "---- end of the static checks"; exit $$status

.PHONY: checks-and-suite
checks-and-suite: static-checks-beside pytest

.PHONY: test
test: venv $(CHECKOV_VENV)/bin/.installed ## Every check, as CI runs them: the static checks and sam build beside the test suite
	$(MAKE) --no-print-directory -j2 checks-and-suite

.PHONY: bench
bench: venv ## Print the measured figures quoted in the README (every script in bench/)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python "$$script"; done

# py-spy is a profiling tool, not a project dependency: the target installs it into the venv on first use.
# --gil samples only the thread holding the GIL (the emulator's threads share one core's worth of Python);
# --nonblocking, because pausing a storm's thousands of threads for every sample would slow the storm itself.
PY_SPY_VERSION := 0.4.3
STORM_PROFILE_DELIVERIES ?= 300

.PHONY: profile-storm
profile-storm: venv ## Profile the local runtime under a trigger storm (py-spy flame graph: $(BUILD_DIR)/storm-profile.svg)
	@test -x $(BIN)/py-spy || $(BIN)/pip install --quiet py-spy==$(PY_SPY_VERSION)
	@mkdir -p $(BUILD_DIR)
	$(BIN)/py-spy record --gil --nonblocking --rate 25 -o $(BUILD_DIR)/storm-profile.svg -- \
	  $(BIN)/python bench/trigger_storm.py --storm-only --deliveries $(STORM_PROFILE_DELIVERIES)

.PHONY: clean
clean: ## Remove build output and local run state (keeps the virtual environments)
	rm -rf $(BUILD_DIR) .aws-sam .sagepipe .pytest_cache .mypy_cache .ruff_cache

.PHONY: distclean
distclean: clean ## Also remove the virtual environments
	rm -rf $(VENV) $(CHECKOV_VENV)
