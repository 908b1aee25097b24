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
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

params: install
	$(BIN)/pconv params

# Trains on the training photos of skimage.data (CPU: about 7 minutes on 2 quiet cores, far
# longer on a busy machine, README "Time"; no download; W&B
# runs offline unless you are logged in), then scores the last checkpoint and the classical
# methods on the held-out photos with `pconv evaluate`: one PSNR table per hole-ratio bucket,
# and outputs/demo/results.png (input, pconv, Telea, Navier-Stokes, mean fill, ground truth).
DEMO_EVAL_ARGS := --images samples:heldout --size 128 --per-bucket 10 --optional-metrics none
demo: install
	$(BIN)/pconv fit --config configs/demo.yaml --checkpoint.dirpath outputs/demo/checkpoints
	@# A re-run in the same folder writes last-v1.ckpt (Lightning never replaces an older run's
	@# file): evaluate the newest, and show the command as it runs.
	@ckpt=$$(ls -t outputs/demo/checkpoints/last*.ckpt | head -1) && \
	echo "$(BIN)/pconv evaluate --ckpt $$ckpt $(DEMO_EVAL_ARGS) --compact --overwrite -o outputs/demo/heldout" && \
	$(BIN)/pconv evaluate --ckpt "$$ckpt" $(DEMO_EVAL_ARGS) --compact --overwrite -o outputs/demo/heldout
	cp outputs/demo/heldout/examples.png outputs/demo/results.png
	@echo "Results picture: outputs/demo/results.png (held-out photos; full tables in outputs/demo/heldout)"

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
