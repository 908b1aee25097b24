"""The run folder is the user's record: `--ckpt_path last` skips unreadable files and says
when there is nothing to resume, a plain `fit` in a folder with checkpoints resumes from the
newest step and says so, and a second `fit` on a folder in use refuses."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pconv.training.cli import run

ROOT = Path(__file__).resolve().parents[2]


def overlay(tmp: Path, steps: int = 2) -> Path:
    """configs/demo.yaml cut to a tiny network, no logger, no validation."""
    config = {
        "trainer": {
            "max_steps": steps,
            "logger": False,
            "default_root_dir": str(tmp),
            "limit_val_batches": 0,
            "val_check_interval": None,
            "callbacks": [],
            "enable_model_summary": False,
        },
        "model": {"net": {"init_args": {"levels": 4, "width_mult": 0.125}}},
        "data": {"image_size": 32, "batch_size": 2, "num_workers": 0, "train_samples_per_epoch": 4},
        "checkpoint": {"monitor": None, "save_top_k": 0, "every_n_train_steps": 1},
    }
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def pconv(subcommand: str, config: Path, *args: str) -> None:
    run([subcommand, "--config", str(ROOT / "configs/demo.yaml"), "--config", str(config), *args])


def step(path: Path) -> int:
    return torch.load(path, weights_only=True)["global_step"]


def one_line(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("pconv:")]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    return tmp_path


def test_ckpt_path_last_with_nothing_to_resume(folder, capsys):
    config = overlay(folder)
    with pytest.raises(SystemExit) as refused:
        pconv("validate", config, "--ckpt_path", "last")
    assert refused.value.code == 2
    [line] = one_line(capsys)
    assert "--ckpt_path last: no readable checkpoint in" in line and "--ckpt_path <file>" in line
    pconv("fit", config, "--ckpt_path", "last")
    assert any("training starts from step 0" in line for line in one_line(capsys))
    assert step(folder / "checkpoints" / "last.ckpt") == 2


def test_ckpt_path_last_skips_an_empty_last_ckpt_with_one_line(folder, capsys):
    pconv("fit", overlay(folder), "--ckpt_path", "last")
    checkpoints = folder / "checkpoints"
    (checkpoints / "last.ckpt").rename(checkpoints / "interrupted.ckpt")
    (checkpoints / "last.ckpt").write_bytes(b"")  # a 0-byte file beside a good one
    capsys.readouterr()
    pconv("fit", overlay(folder, steps=3), "--ckpt_path", "last")
    lines = one_line(capsys)
    skipped = [line for line in lines if line.startswith("pconv: skipping")]
    assert len(skipped) == 1 and "last.ckpt" in skipped[0] and "unreadable" in skipped[0]
    assert step(checkpoints / "last.ckpt") == 3  # resumed at 2, one more step


def test_a_plain_fit_in_a_folder_with_checkpoints_resumes_from_the_newest_step(folder, capsys):
    checkpoints = folder / "checkpoints"
    pconv("fit", overlay(folder, steps=1))
    first = (checkpoints / "last.ckpt").read_bytes()
    pconv("fit", overlay(folder, steps=2), "--ckpt_path", "last")
    (checkpoints / "last.ckpt").rename(checkpoints / "interrupted.ckpt")  # step 2
    (checkpoints / "last.ckpt").write_bytes(first)  # step 1
    capsys.readouterr()
    pconv("fit", overlay(folder, steps=4), "--model.optimizer.init_args.lr", "0.01")
    [line] = [line for line in one_line(capsys) if "already holds" in line]
    assert "interrupted.ckpt (step 2)" in line and "model.optimizer values" in line
    assert step(checkpoints / "last.ckpt") == 4
    assert not (checkpoints / "last-v1.ckpt").exists()


def test_resume_takes_slurms_hpc_checkpoint_when_it_holds_the_highest_step(folder, capsys):
    """A requeued job finds hpc_ckpt_* (Lightning's requeue save) beside a last.ckpt written
    later but holding fewer steps: the step decides, not the file time."""
    checkpoints = folder / "checkpoints"
    pconv("fit", overlay(folder, steps=1))
    first = (checkpoints / "last.ckpt").read_bytes()
    pconv("fit", overlay(folder, steps=3), "--ckpt_path", "last")
    (checkpoints / "last.ckpt").rename(folder / "hpc_ckpt_1.ckpt")  # step 3
    (checkpoints / "last.ckpt").write_bytes(first)  # step 1, the newer file
    capsys.readouterr()
    pconv("fit", overlay(folder, steps=4))
    [line] = [line for line in one_line(capsys) if "already holds" in line]
    assert "hpc_ckpt_1.ckpt (step 3)" in line
    assert step(checkpoints / "last.ckpt") == 4


def test_fit_removes_half_written_checkpoints_a_killed_run_left(folder, capsys):
    """A run killed while saving leaves a hidden temporary (utils.files.atomic_path); the
    next fit on the folder removes it, and only it."""
    checkpoints = folder / "checkpoints"
    checkpoints.mkdir()
    stray = checkpoints / f".last.ckpt.{'0123456789abcdef' * 2}.ckpt"
    stray.write_bytes(b"half a checkpoint")
    theirs = [checkpoints / ".notes.ckpt", checkpoints / ".last.ckpt.backup.ckpt"]
    for path in theirs:
        path.write_bytes(b"the user's")
    pconv("fit", overlay(folder, steps=1))
    [line] = [line for line in one_line(capsys) if "half-written" in line]
    assert stray.name in line and str(checkpoints) in line
    assert not stray.exists() and all(path.read_bytes() == b"the user's" for path in theirs)
    assert step(checkpoints / "last.ckpt") == 1


def test_a_second_fit_on_a_folder_in_use_refuses_in_one_line(folder, capsys):
    config = overlay(folder)
    lock = folder / "checkpoints" / ".pconv-fit.lock"
    lock.parent.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
            "fcntl.flock(f, fcntl.LOCK_EX); f.write('4242\\n'); f.flush(); "
            "print('held', flush=True); time.sleep(600)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SystemExit) as refused:
            pconv("fit", config)
        assert refused.value.code == 2
        [line] = one_line(capsys)
        assert "in use by process 4242" in line and "another folder" in line
        assert sorted(p.name for p in lock.parent.iterdir()) == [".pconv-fit.lock"]
    finally:
        holder.kill()
        holder.wait()
    pconv("fit", config)  # a dead process holds no lock
    assert step(folder / "checkpoints" / "last.ckpt") == 2
