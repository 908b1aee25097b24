"""The CLI's trainer writes checkpoints durably: the bytes reach the disk (fsync) in a
temporary beside the target before it replaces the old file, and the rename is flushed too,
so a node that dies, not only a killed process, keeps the old file or the new one."""

import os
from pathlib import Path

import torch

from pconv.training.cli import make_cli

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_trainer_flushes_a_checkpoint_before_and_after_its_rename(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cli = make_cli(
        ["--config", str(ROOT / "configs/demo.yaml"), "--trainer.logger", "false"], run=False
    )
    events = []
    fsync, replace = os.fsync, os.replace

    def spy_fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        fsync(descriptor)

    def spy_replace(source, target):
        events.append(("replace", str(source), str(target)))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"the previous checkpoint")
    cli.trainer.strategy.checkpoint_io.save_checkpoint({"global_step": 3}, target)
    assert torch.load(target, weights_only=True) == {"global_step": 3}
    [flush_file, rename, flush_folder] = [e for e in events if str(tmp_path) in e[1]]
    temporary = Path(flush_file[1])
    assert temporary.parent == tmp_path and temporary != target
    assert rename == ("replace", str(temporary), str(target))
    assert flush_folder == ("fsync", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
