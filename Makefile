# Everything installs into .venv; each target installs first if needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The releases that lie on the build machines' disk; users may install any torch>=2.4.
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
export NO_ALBUMENTATIONS_UPDATE := 1
export WANDB_SILENT := true

.PHONY: install test lint format demo bench params clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[dev,eval,app]" $(TORCH_PIN)
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

params: install
	$(BIN)/pconv params

# Trains on the built-in sample photos (CPU, a few minutes, no download); W&B runs offline
# unless you are logged in. The last validation grid becomes outputs/demo/results.png.
demo: install
	$(BIN)/pconv fit --config configs/demo.yaml
	cp "$$(ls -t outputs/demo/images/val_step*.png | head -1)" outputs/demo/results.png
	@echo "Results picture: outputs/demo/results.png (input, mask, output, composite, truth)"

# e.g. make bench BENCH_ARGS="--threads 1" for per-core figures
bench: install
	$(BIN)/python experiments/benchmarks/run_all.py $(BENCH_ARGS)

# One CUDA GPU, about 7 minutes: CUDA tests, training and inference speed, MFU, a profile; writes
# experiments/benchmarks/results/gpu-<device>.json. GPU machines are often offline, so this
# installs only where there is no venv yet (never a reinstall because pyproject.toml changed).
# e.g. make gpu-check GPU_CHECK_ARGS="--overwrite"; GPU_CHECK_ARGS=--dry-run rehearses on CPU.
.PHONY: gpu-check
gpu-check:
	test -x $(BIN)/python || $(MAKE) install
	$(BIN)/python experiments/gpu/check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache lightning_logs wandb outputs
