"""SIGKILL at random moments: `pconv fit --ckpt_path last` killed with kill -9 again and again
(once while a checkpoint is being written) and resumed each time ends bit-identical to a
straight run, and no checkpoint is ever left half-written."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from slow_save_fit import HALF_WRITTEN

ROOT = Path(__file__).resolve().parents[2]
STEPS = 30
KILLS = 5


def overlay(tmp: Path, run: Path) -> Path:
    """configs/demo.yaml cut to a tiny network, no validation, last.ckpt after every step."""
    config = {
        "trainer": {
            "max_steps": STEPS,
            "logger": False,
            "default_root_dir": str(run),
            "limit_val_batches": 0,
            "val_check_interval": None,
            "callbacks": [],
        },
        "model": {"net": {"init_args": {"levels": 4, "width_mult": 0.125}}},
        "data": {
            "image_size": 32,
            "batch_size": 2,
            "num_workers": 0,
            "train_samples_per_epoch": 6,
        },
        "checkpoint": {"monitor": None, "save_top_k": 0, "every_n_train_steps": 1},
    }
    path = tmp / f"{run.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start(config: Path, log: Path, script: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(NO_ALBUMENTATIONS_UPDATE="1", OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    command = [sys.executable, "-m", "pconv"] if script is None else [sys.executable, script]
    args = ["fit", "--config", "configs/demo.yaml", "--config", str(config), "--ckpt_path", "last"]
    with open(log, "ab") as output:
        return subprocess.Popen(command + args, cwd=ROOT, env=env, stdout=output, stderr=output)


def step_of(path: Path) -> int:
    try:
        return torch.load(path, weights_only=True, map_location="cpu")["global_step"]
    except Exception:
        return -1


def wait_for(condition, process: subprocess.Popen, timeout: float = 300) -> bool:
    """Poll ``condition`` until true (True) or the process ended (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    raise TimeoutError


def assert_complete_checkpoints(folder: Path) -> None:
    for path in folder.glob("*.ckpt"):
        if not path.name.startswith("."):  # not a temporary (.last.ckpt.<id>.ckpt)
            assert step_of(path) >= 0, f"{path} is not a complete checkpoint"


def test_kill_9_at_random_moments_then_resume_equals_a_straight_run(tmp_path):
    straight = tmp_path / "straight"
    process = start(overlay(tmp_path, straight), tmp_path / "straight.log")
    assert process.wait(timeout=600) == 0, (tmp_path / "straight.log").read_text()[-3000:]

    run = tmp_path / "killed"
    config, log = overlay(tmp_path, run), tmp_path / "killed.log"
    last = run / "checkpoints" / "last.ckpt"
    rng = random.Random(0)
    for kill in range(KILLS + 1):
        before = step_of(last)
        if kill == 2:  # while a checkpoint is being written: half of it on disk
            half_written = log.read_text().count(HALF_WRITTEN)
            process = start(config, log, str(Path(__file__).with_name("slow_save_fit.py")))
            assert wait_for(lambda n=half_written: log.read_text().count(HALF_WRITTEN) > n, process)
        else:  # at a random moment after this run trained at least one step of its own
            process = start(config, log)
            assert wait_for(lambda before=before: step_of(last) > before, process)
            time.sleep(rng.uniform(0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert_complete_checkpoints(last.parent)
        if kill == 2:
            assert step_of(last) == before  # the previous last.ckpt, intact
    process = start(config, log)
    assert process.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert log.read_text().count("pconv: skipping") == 0
    assert_complete_checkpoints(last.parent)

    a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert a["global_step"] == b["global_step"] == STEPS
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    opt_a, opt_b = a["optimizer_states"][0], b["optimizer_states"][0]
    assert opt_a["param_groups"] == opt_b["param_groups"]
    for index, state in opt_a["state"].items():
        for name, value in state.items():
            assert torch.equal(value, opt_b["state"][index][name]), (index, name)
