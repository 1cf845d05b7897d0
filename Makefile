# The two commands of the README: `make run` runs the mat, `make test` passes the tests.
# Both create .venv and install what they need on first use (python3 with venv required).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

ON_PI  := $(shell grep -qas "Raspberry Pi" /proc/device-tree/model && echo yes)
# On a Pi: the installed config if there is one, else the example. Elsewhere: the simulator.
CONFIG ?= $(if $(ON_PI),$(firstword $(wildcard /etc/matpi/matpi.toml) config/matpi.toml))
RUN_ARGS ?= $(if $(CONFIG),--config $(CONFIG),--simulate)
EXTRAS := $(if $(ON_PI),[pi],)

.PHONY: run test lint clean

run: $(VENV)/.run-installed
	$(BIN)/matpi run $(RUN_ARGS)

test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e ".$(EXTRAS)"
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.run-installed

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
