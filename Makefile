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

# Programs the tests run for real: a broker, systemd's unit checker, the page's browser.
SYSTEM_TOOLS := mosquitto:mosquitto mosquitto_passwd:mosquitto-clients systemd-analyze:systemd \
                chromium:chromium

.PHONY: run test mutate system-tools test-systemd clean

run: $(VENV)/.run-installed
	$(BIN)/matpi run $(RUN_ARGS)

test: $(VENV)/.test-installed system-tools
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# Each safety guard weakened in a copy of the repo must fail a test (issue #13).
mutate: $(VENV)/.test-installed
	$(BIN)/python scripts/mutate.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e ".$(EXTRAS)"
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.run-installed

# The installed service under a real systemd, in a Debian 12 container (root; not in CI).
test-systemd:
	scripts/test-systemd.sh

system-tools:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  tool=$${pair%%:*}; pkg=$${pair##*:}; \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$tool >/dev/null || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "the tests need:$$missing -- run: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
