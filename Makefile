# One environment for everything, built from the pinned lock file.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export ZEOS_LAKE ?= $(CURDIR)/lake

.PHONY: env demo dev test lint lock clean

env: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

demo: env
	$(BIN)/zeos-forecast demo

dev: env
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

test: env lint
	$(BIN)/pytest

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lock:
	rm -rf /tmp/zeos-lock && $(PYTHON) -m venv /tmp/zeos-lock
	/tmp/zeos-lock/bin/pip install --quiet -r requirements.in
	(head -2 requirements.lock; /tmp/zeos-lock/bin/pip freeze | grep -v '^-e') > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .dagster lake
