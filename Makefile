# `make run` and `make test` bootstrap .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# A temporary Prefect server offline would log failed telemetry calls.
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: install run test bench clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# The study end to end: cross-validate the final model, then train it on all images, evaluate it on
# the test set and register it (champion if at least as good as the current one).
run: install
	$(BIN)/mnist-pipeline cv --model deeper
	$(BIN)/mnist-pipeline retrain --model deeper

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/cv_study.py

clean:
	rm -rf $(VENV) artifacts/cache artifacts/runs
