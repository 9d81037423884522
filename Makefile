# accessd developer entry points. `make demo` needs only Python 3.11; `make test` also needs
# root (or the packages already installed) for the system services in tests/services.sh.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Resolved before PATH below puts the venv first.
ifndef PYTHON
PYTHON := $(shell command -v python3.11 || command -v python3)
endif
export PYTHON
VENV := .venv
BIN := $(VENV)/bin

# Stamps: reinstall only when pyproject.toml changes (or the venv is new).
VENV_STAMP := $(VENV)/.created
CORE_STAMP := $(VENV)/.installed-core
DEV_STAMP := $(VENV)/.installed-dev

# The venv's commands (accessd) first for the tests; Debian installs mosquitto and pcscd in
# sbin, which a non-login shell may not have. Once only, not again in each sub-make.
ifeq ($(MAKELEVEL),0)
export PATH := $(CURDIR)/$(BIN):$(PATH):/usr/sbin:/sbin
endif
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The tests start many Python processes (workers, the CLI, simulators); without bytecode
# caches each one compiles every module again, and pytest rewrites the asserts of every
# plugin's modules (schemathesis has hundreds) in each worker: 5-7 s of CPU a process.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help venv install demo services dev vectors libosdp lint format typecheck pytest test clean

help:
	@echo "make demo       run the demo on http://127.0.0.1:8000 (SQLite, sample data)"
	@echo "make test       services + dev install + ruff + mypy + pytest (what CI runs)"
	@echo "make services   install/start PostgreSQL, mosquitto, pcscd+vpcd (tests/services.sh)"
	@echo "make lint       ruff check and ruff format --check"
	@echo "make format     ruff format and ruff check --fix"
	@echo "make typecheck  mypy (strict, configured in pyproject.toml)"
	@echo "make pytest     the test suite alone"
	@echo "make vectors    fetch the NIST PKITS path-validation vectors (tests/vectors.sh)"
	@echo "make libosdp    make .venv-libosdp, the reference OSDP peer (tests/libosdp_env.sh)"
	@echo "make venv       create $(VENV) and upgrade pip"
	@echo "make clean      remove $(VENV) and caches"

venv: $(VENV_STAMP)

# Debian's python3 has no ensurepip without the python3-venv package.
$(VENV_STAMP):
	@test -n "$(PYTHON)" || { echo "error: no python3.11 or python3 on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        echo "installing python3-venv (Debian's python3 has no ensurepip without it)"; \
	        rm -rf $(VENV); apt-get update -qq && \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv && \
	        $(PYTHON) -m venv $(VENV); \
	    else \
	        echo "error: '$(PYTHON) -m venv' failed; on Debian: apt-get install python3-venv" >&2; \
	        exit 1; \
	    fi; }
	$(BIN)/python -m pip install --upgrade pip
	touch $@

install: $(CORE_STAMP)

$(CORE_STAMP): pyproject.toml $(VENV_STAMP)
	$(BIN)/python -m pip install -e .
	touch $@

dev: $(DEV_STAMP)

# pyscard (in the dev extra) ships only an sdist and compiles against libpcsclite with swig.
$(DEV_STAMP): pyproject.toml $(VENV_STAMP)
	@test -f /usr/include/PCSC/winscard.h && command -v swig >/dev/null || { \
	    echo "error: pyscard needs libpcsclite-dev, swig and gcc: run 'make services'" >&2; \
	    exit 1; }
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@ $(CORE_STAMP)

# The demo runs the project's own Mosquitto config; installed here when root and missing.
# Where it cannot be installed, the embedded-broker extra (amqtt, MQTT 3.1.1) stands in.
demo: $(CORE_STAMP)
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto; \
	    fi; } || true
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || { \
	    echo "note: no mosquitto (apt-get install mosquitto): installing the embedded broker" >&2; \
	    $(BIN)/python -m pip install -e '.[embedded-broker]'; }
	$(BIN)/accessd demo

services:
	bash tests/services.sh

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# The PKITS vectors come from PyPI (pyhanko-certvalidator's sdist), not from the repository.
vectors: $(VENV_STAMP)
	PYTHON=$(BIN)/python sh tests/vectors.sh

# libosdp 3.x, the reference OSDP peer of tests/drivers/osdp/test_osdp_interop.py, in a venv of its
# own: its `osdp` package clashes with another. The script keeps a stamp (0.2 s when done).
libosdp:
	bash tests/libosdp_env.sh

# Workers for pytest-xdist: the suite mostly waits (brokers, databases, child processes), so
# more workers than the 2 cores pay off; loadgroup keeps the vpcd tests on one worker, and
# the browser tests on one (one Chromium, not one a worker).
PYTEST_WORKERS ?= 6

# No `|| true` or exit-code mapping: pytest's 5 ("no tests collected") fails the build.
pytest: $(DEV_STAMP) vectors libosdp
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

# Sequential on purpose: the dev install needs the packages that services.sh installs.
test:
	$(MAKE) --no-print-directory services
	$(MAKE) --no-print-directory dev
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory pytest

clean:
	rm -rf $(VENV) .venv-libosdp .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
