# The two commands a user needs: `make run` and `make test`. Each builds what it needs first.
# Stamp files are keyed on a hash of the dependency spec, so a second run on a ready machine
# installs nothing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
SPEC_HASH := $(shell sha256sum pyproject.toml | cut -c1-16)
STAMP := $(VENV)/.stamp-$(SPEC_HASH)
CHECKOV_STAMP := $(CHECKOV_VENV)/.stamp-$(CHECKOV_VERSION)
ARGS ?=

.PHONY: run test lint env clean

run: env
	$(VENV)/bin/python main.py $(ARGS)

test: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest $(ARGS)

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

env: $(STAMP) $(CHECKOV_STAMP)

$(STAMP): pyproject.toml
	@echo "==> building $(VENV) (torch and the SageMaker core take a few minutes the first time)"
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (sagegate needs Python 3.11)"; exit 1; }
	rm -f $(VENV)/.stamp-*
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --progress-bar on -e '.[dev]'
	# PYTHONDONTWRITEBYTECODE is set on these machines: compile once so every run starts fast.
	$(VENV)/bin/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	touch $@

$(CHECKOV_STAMP):
	@echo "==> building $(CHECKOV_VENV) (checkov $(CHECKOV_VERSION) pins old boto3: it lives alone)"
	rm -f $(CHECKOV_VENV)/.stamp-*
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --progress-bar on 'checkov==$(CHECKOV_VERSION)'
	$(CHECKOV_VENV)/bin/python -m compileall -q -j 0 $(CHECKOV_VENV)/lib >/dev/null || true
	touch $@

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) outputs multirun
