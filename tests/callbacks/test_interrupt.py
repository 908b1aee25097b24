"""Ctrl-C leaves a checkpoint that resumes the run; a NaN loss leaves none."""

import signal

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader
from trainers import cpu_trainer

from pconv.callbacks import InterruptCheckpoint
from pconv.losses import InpaintingLoss
from pconv.module import InpaintingModule, NonFiniteLossError
from pconv.nn import PConvUNet

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


@pytest.fixture
def restore_sigint():
    # Lightning ignores SIGINT after a KeyboardInterrupt; give pytest its handler back.
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def test_ctrl_c_checkpoint_resumes(tmp_path, restore_sigint):
    with pytest.raises(SystemExit):
        fit(tmp_path, [CtrlC()], loader())
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
