# `make run` and `make test` bootstrap .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# uv, installed beside the project (not into the environment it manages), installs exactly uv.lock.
UV := .tools/bin/uv

# A temporary Prefect server offline would log failed telemetry calls.
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

# The Prefect server of `make server`, which `make deploy` and `make worker` talk to.
PREFECT_HOST ?= 127.0.0.1
PREFECT_PORT ?= 4200
PREFECT_SERVER_URL ?= http://$(PREFECT_HOST):$(PREFECT_PORT)
# prefect.yaml's deployments run on this process work pool.
WORK_POOL := mnist-pool

# `make serve`: the prediction service on the registry's champion, on loopback unless SERVE_HOST says otherwise.
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000

# The end-to-end test drives Debian's Chromium through Playwright (which downloads no browser here).
CHROMIUM := /usr/bin/chromium
# ... and scrapes a real `serve` with Debian's Prometheus (the binary alone; the Debian service is not started).
PROMETHEUS := /usr/bin/prometheus
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install lock run test lint bench clean server deploy worker serve audit

install: $(INSTALLED)

$(UV):
	$(PYTHON) -m pip install --quiet --target .tools uv

# The environment is exactly uv.lock (the project itself editable, with the test and bench extras),
# compiled to bytecode once here: where Python may not write .pyc files (PYTHONDONTWRITEBYTECODE, a
# read-only install) every process would otherwise compile TensorFlow's and Prefect's sources at each
# start (importing TensorFlow: 15-17 s of CPU instead of 6).
$(INSTALLED): pyproject.toml uv.lock Makefile | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --all-extras --compile-bytecode --python $(PYTHON) --quiet
	touch $@

# After changing a dependency in pyproject.toml; `make lock UPGRADE=--upgrade` moves every package to its newest allowed release.
lock: | $(UV)
	$(UV) lock --python $(PYTHON) $(UPGRADE)

# The locked packages (all extras) against published advisories, with pip-audit from PyPI run by uv. Its advisory
# source is PyPI's JSON API; where this machine cannot reach it, the audit says so in one line and succeeds.
PIP_AUDIT := pip-audit==2.10.1
ADVISORY_PROBE := https://pypi.org/pypi/pip/24.0/json
audit: | $(UV)
	@if ! $(PYTHON) -c "import urllib.request; urllib.request.urlopen('$(ADVISORY_PROBE)', timeout=20)" 2>/dev/null; then \
		echo "make audit: skipped: pip-audit's advisory source (PyPI's JSON API, $(ADVISORY_PROBE)) cannot be reached from this machine"; \
	else \
		$(UV) export --format requirements-txt --no-hashes --all-extras --no-emit-project --frozen --quiet -o .tools/audit-requirements.txt && \
		$(UV) tool run --python $(PYTHON) $(PIP_AUDIT) --strict --no-deps --disable-pip --progress-spinner off -r .tools/audit-requirements.txt; \
	fi

# The study end to end: cross-validate the final model, then train it on all images, evaluate it on
# the test set and register it (champion if at least as good as the current one).
run: install
	$(BIN)/mnist-pipeline cv --model deeper
	$(BIN)/mnist-pipeline retrain --model deeper

# pytest-xdist workers, each taking the next test, the deploy tests together on one (tests/conftest.py): while one
# worker waits on a server or a process it started, another computes. TEST_WORKERS=0 runs the tests in this process.
TEST_WORKERS ?= 2

test: install lint $(CHROMIUM) $(PROMETHEUS)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

$(PROMETHEUS):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus

# The UI asks PREFECT_UI_API_URL for its data: the address browsers reach the server at.
server: export PREFECT_UI_API_URL ?= $(PREFECT_SERVER_URL)/api
server: install
	$(BIN)/prefect server start --host $(PREFECT_HOST) --port $(PREFECT_PORT)

deploy worker: export PREFECT_API_URL ?= $(PREFECT_SERVER_URL)/api

deploy: install
	$(BIN)/prefect work-pool inspect $(WORK_POOL) >/dev/null 2>&1 || $(BIN)/prefect work-pool create $(WORK_POOL) --type process
	$(BIN)/prefect --no-prompt deploy --all

worker: install
	$(BIN)/prefect worker start --pool $(WORK_POOL)

serve: install
	$(BIN)/mnist-pipeline serve --host $(SERVE_HOST) --port $(SERVE_PORT)

bench: install
	$(BIN)/python bench/cv_study.py

clean:
	rm -rf $(VENV) .tools artifacts/cache artifacts/runs
