"""Ctrl-C leaves a checkpoint that resumes the run; a NaN loss leaves none."""

import logging

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader
from trainers import cpu_trainer

from pconv.losses import InpaintingLoss
from pconv.nn import PConvUNet
from pconv.training.callbacks import InterruptCheckpoint
from pconv.training.module import InpaintingModule, NonFiniteLossError

SIZE = 64
STOP_AT = 2


def loader(nan: bool = False) -> DataLoader:
    image = torch.full((3, SIZE, SIZE), float("nan")) if nan else torch.rand(3, SIZE, SIZE)
    return DataLoader([{"image": image, "mask": torch.ones(1, SIZE, SIZE)}] * 4, batch_size=1)


class StartStep(L.Callback):
    def on_train_start(self, trainer, module):
        self.step = trainer.global_step


class CtrlC(L.Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == STOP_AT:
            raise KeyboardInterrupt


def fit(tmp_path, callbacks, data, ckpt_path=None, steps=4):
    module = InpaintingModule(
        net=PConvUNet(levels=4, width_mult=0.125),
        loss=InpaintingLoss(vgg_weights=None),
        nan_check_every=1,
    )
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    trainer = cpu_trainer(
        tmp_path, steps, callbacks=[checkpoint, InterruptCheckpoint(), *callbacks]
    )
    trainer.fit(module, data, ckpt_path=ckpt_path)
    return trainer


def test_ctrl_c_checkpoint_resumes(tmp_path, restore_sigint, caplog):
    caplog.set_level(logging.INFO, logger="lightning.pytorch")
    with pytest.raises(SystemExit):
        fit(tmp_path, [CtrlC()], loader())
    assert "weights_only" not in caplog.text  # Lightning's notice when it is left unset
    saved = tmp_path / "checkpoints" / "interrupted.ckpt"
    assert torch.load(saved, weights_only=True)["global_step"] == STOP_AT
    start = StartStep()
    trainer = fit(tmp_path, [start], loader(), ckpt_path=saved)
    assert (start.step, trainer.global_step) == (STOP_AT, 4)
    assert not saved.exists()  # removed once the resumed run finished normally


def test_non_finite_loss_leaves_no_interrupt_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError, match="step 0"):
        fit(tmp_path, [], loader(nan=True))
    assert not (tmp_path / "checkpoints" / "interrupted.ckpt").exists()


class Crash(L.Callback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == self.at:
            raise RuntimeError("boom")


def test_failed_start_never_replaces_a_real_interrupt_checkpoint(tmp_path):
    saved = tmp_path / "checkpoints" / "interrupted.ckpt"
    saved.parent.mkdir()
    torch.save({"global_step": 4}, saved)
    before = saved.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        fit(tmp_path, [Crash(0)], loader())  # crashes before any optimizer step
    assert saved.read_bytes() == before


def test_crash_with_progress_is_saved_but_never_over_a_later_step(tmp_path):
    saved = tmp_path / "checkpoints" / "interrupted.ckpt"
    with pytest.raises(RuntimeError, match="boom"):
        fit(tmp_path, [Crash(STOP_AT)], loader())
    assert torch.load(saved, weights_only=True)["global_step"] == STOP_AT
    torch.save({"global_step": 9}, saved)  # a file holding more progress
    before = saved.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        fit(tmp_path, [Crash(STOP_AT)], loader())
    assert saved.read_bytes() == before


class Diverge(L.Callback):
    """Turns the weights NaN after ``at`` optimizer steps, as an overflowing lr would."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.at:
            with torch.no_grad():
                next(module.net.parameters()).fill_(float("inf"))


def test_no_checkpoint_ever_holds_non_finite_weights(tmp_path):
    module = InpaintingModule(
        net=PConvUNet(levels=4, width_mult=0.125),
        loss=InpaintingLoss(vgg_weights=None),
        nan_check_every=1000,  # the loss check alone would come far too late
    )
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path / "checkpoints", every_n_train_steps=1, save_top_k=-1, save_last=True
    )
    trainer = cpu_trainer(tmp_path, 6, callbacks=[checkpoint, InterruptCheckpoint(), Diverge(3)])
    with pytest.raises(NonFiniteLossError, match="weights are NaN/Inf at step 3") as error:
        trainer.fit(module, loader())
    files = sorted((tmp_path / "checkpoints").glob("*.ckpt"))
    steps = [torch.load(f, weights_only=True)["global_step"] for f in files]
    assert max(steps) == 2 and "interrupted.ckpt" not in [f.name for f in files]
    for file in files:
        weights = torch.load(file, weights_only=True)["state_dict"].values()
        assert all(torch.isfinite(w).all() for w in weights if w.is_floating_point())
    assert "resume from" in str(error.value) and "step=2" in str(error.value)


def test_ckpt_path_last_takes_the_highest_step_not_the_newest_file(tmp_path, tiny_checkpoint):
    from pconv.weights import newest_checkpoint

    state = torch.load(tiny_checkpoint, weights_only=True)
    late, early = tmp_path / "interrupted.ckpt", tmp_path / "last.ckpt"
    torch.save({**state, "global_step": 8}, late)
    torch.save({**state, "global_step": 4}, early)  # written after: the newer file
    assert newest_checkpoint([early, late]) == str(late)


def test_a_finished_run_never_deletes_an_interrupt_checkpoint_of_a_later_step(tmp_path):
    saved = tmp_path / "checkpoints" / "interrupted.ckpt"
    saved.parent.mkdir()
    torch.save({"global_step": 9}, saved)  # another run's, ahead of this one
    before = saved.read_bytes()
    fit(tmp_path, [], loader())  # 4 steps, ends normally
    assert saved.read_bytes() == before
