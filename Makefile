# Two commands: `make run` and `make test`. Everything else is set up by them.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Django 6 needs Python 3.12+: take the first interpreter that qualifies.
PYTHON ?= $(shell for c in python3.14 python3.13 python3.12 python3 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null); do \
	if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then command -v $$c; break; fi; done)

.PHONY: run test lint bench setup clean

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12+ is required (Django 6)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) tools/run.py

# PYTEST_ARGS narrows the run, e.g. make test PYTEST_ARGS="-m e2e"
test: $(STAMP)
	@bash tools/ensure_chromium.sh
	$(PY) tools/devenv.py exec -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) tools/devenv.py exec -- $(PY) bench/run.py

# 10 minutes of mixed load on loopback; memory of every process must stay flat (not part of CI).
.PHONY: soak
soak: $(STAMP)
	$(PY) tools/devenv.py exec -- $(PY) bench/soak.py

clean:
	-$(PY) tools/devenv.py clean
	rm -rf $(VENV)
