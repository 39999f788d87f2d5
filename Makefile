# Two commands: `make run` serves the app, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.11 python3.12 python3.10 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3,10) <= sys.version_info[:2] <= (3,12))' && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8501
ADDRESS ?= 127.0.0.1
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: run test install test-deps system-deps lint bench demo clean-venv

$(VENV)/.installed: requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.10-3.12 is required"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade --quiet pip
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m platform_core demo init --if-missing

run: demo
	$(PY) -m streamlit run app/main.py --server.address $(ADDRESS) --server.port $(PORT)

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt
	$(PIP) install --quiet -r requirements-test.txt
	touch $@

system-deps:
	@bash scripts/install_system_deps.sh

test-deps: $(VENV)/.test-installed system-deps

test: test-deps
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: test-deps
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

bench: test-deps
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
