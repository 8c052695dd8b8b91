# GuildHub: `make demo` runs everything on this machine, `make test` checks it.
# Python 3.11 is the supported version; python3 is tried when python3.11 is missing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
# Touched after a successful install: the venv is rebuilt only when a requirements file changes.
STAMP := $(VENV)/.requirements-installed
# Found the same way the tests find it (empty when the server binaries are missing).
PG_BINDIR ?= $(shell $(PYTHON) tests/pgcluster.py 2>/dev/null)
PYTEST_WORKERS ?= 2

.PHONY: venv test lint format demo

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: venv lint
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS)
ifeq ($(strip $(PG_BINDIR)),)
	@echo "PostgreSQL server binaries (initdb, postgres) not found: skipping the PostgreSQL run (.ci/run installs them)"
else
	@echo "Running the tests again on PostgreSQL ($(PG_BINDIR))"
	PG_BINDIR='$(PG_BINDIR)' $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --db=postgres
endif

demo: venv
	$(VENV)/bin/python manage.py demo
