"""Exact resume: a run interrupted (Ctrl-C, SIGTERM) at any step and resumed from its newest
checkpoint (interrupt, or last.ckpt at an epoch's end) ends with bit-identical weights,
buffers, optimizer and scheduler state to a straight run, mid-epoch, at an epoch's end, across
the fine-tune switch, for a folder source and LitData shards (local, and in a bucket of a
loopback S3 server), with 0 and 2 loader workers,
with gradient accumulation and limit_train_batches; a signal in the middle of a step finishes
it first. Epochs not a multiple of the accumulation, and epochs cut by limit_train_batches,
train every item exactly once a pass."""

import os
import signal

import lightning as L
import pytest
import skimage.data
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from PIL import Image
from trainers import cpu_trainer

from pconv.data.datamodule import InpaintingDataModule
from pconv.losses import InpaintingLoss
from pconv.nn import PConvUNet
from pconv.training.callbacks import FinetuneSwitch, InterruptCheckpoint
from pconv.training.module import InpaintingModule
from pconv.weights import newest_checkpoint

SIZE = 32
STEPS = 7  # 3 batches of 2 per epoch: the runs cross two epoch boundaries
ITEMS = 6


class CtrlC(L.Callback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == self.at:
            raise KeyboardInterrupt


def cosine(optimizer):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=STEPS)


def fit(
    root, source, data_root, workers, switch_at, callbacks=(), ckpt_path=None, items=ITEMS, **kw
):
    L.seed_everything(0)
    module = InpaintingModule(
        net=PConvUNet(levels=4, width_mult=0.125),
        loss=InpaintingLoss(vgg_weights=None),
        optimizer=lambda groups: torch.optim.Adam(groups, lr=1e-3),
        scheduler=cosine,
        nan_check_every=1,
    )
    data = InpaintingDataModule(
        source=source,
        root=str(data_root),
        image_size=SIZE,
        batch_size=2,
        num_workers=workers,
        train_samples_per_epoch=items,
        pin_memory=False,
    )
    trainer = cpu_trainer(
        root,
        STEPS,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[
            ModelCheckpoint(dirpath=root / "checkpoints", save_last=True),
            InterruptCheckpoint(),
            switch_at
            if isinstance(switch_at, FinetuneSwitch)
            else FinetuneSwitch(at_step=switch_at, lr=3e-4),
            *callbacks,
        ],
        **kw,
    )
    trainer.fit(module, data, ckpt_path=ckpt_path)
    return trainer


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four real photos, 96 px wide."""
    root = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        image = Image.fromarray(getattr(skimage.data, name)())
        image.resize((96, 96 * image.height // image.width)).save(root / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def shards(tmp_path_factory, folder):
    from pconv.data.prepare import prepare

    output = tmp_path_factory.mktemp("shards")
    for split in ("train", "val"):
        prepare("folder", str(folder), str(output), split, num_workers=1)
    return output


@pytest.fixture(scope="module")
def s3_shards(folder, s3_endpoint):
    """The shards of ``shards``, written by `pconv prepare` to a bucket of ``s3_endpoint``."""
    import boto3

    from pconv.data.prepare import main

    boto3.client("s3").create_bucket(Bucket="resume")
    for split in ("train", "val"):
        argv = ["folder", str(folder), "-o", "s3://resume/shards", "--splits", split]
        assert main([*argv, "--workers", "1"]) == 0
    return "s3://resume/shards"


def assert_identical(a: L.Trainer, b: L.Trainer, steps: int = STEPS) -> None:
    assert a.global_step == b.global_step == steps
    state_a, state_b = a.lightning_module.state_dict(), b.lightning_module.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    opt_a, opt_b = a.optimizers[0].state_dict(), b.optimizers[0].state_dict()
    assert opt_a["param_groups"] == opt_b["param_groups"]  # lrs included
    for index, state in opt_a["state"].items():
        for name, value in state.items():
            assert torch.equal(value, opt_b["state"][index][name]), (index, name)
    sched_a, sched_b = a.lr_scheduler_configs[0].scheduler, b.lr_scheduler_configs[0].scheduler
    assert sched_a.state_dict() == sched_b.state_dict()


@pytest.mark.parametrize(
    ("source", "workers", "stop_at", "switch_at"),
    [
        ("folder", 0, 4, 2),  # mid-epoch, after the fine-tune switch
        ("folder", 2, 2, 5),  # before the switch, with workers
        ("folder", 0, 3, 1),  # at an epoch's end (3 batches): resumed from last.ckpt
        ("shards", 0, 3, None),  # mid-epoch (2 batches an epoch)
        ("shards", 2, 5, 4),  # with workers, after the switch
        ("shards", 0, 2, None),  # at epoch ends: Lightning finishes the "old" epoch first
        ("shards", 2, 4, None),
        ("s3", 2, 4, 3),  # streamed from the bucket, with workers, across the switch
    ],
)
def test_interrupted_and_resumed_run_equals_a_straight_run(
    tmp_path, request, folder, restore_sigint, source, workers, stop_at, switch_at
):
    data_root = request.getfixturevalue(
        {"folder": "folder", "shards": "shards"}.get(source, "s3_shards")
    )
    source = "folder" if source == "folder" else "shards"
    straight = fit(tmp_path / "straight", source, data_root, workers, switch_at)
    resumed = tmp_path / "resumed"
    with pytest.raises(SystemExit):
        fit(resumed, source, data_root, workers, switch_at, [CtrlC(stop_at)])
    # interrupted.ckpt, or last.ckpt when the stop came right after an epoch-end save
    saved = newest_checkpoint(sorted((resumed / "checkpoints").glob("*.ckpt")))
    assert torch.load(saved, weights_only=True)["global_step"] == stop_at
    again = fit(resumed, source, data_root, workers, switch_at, ckpt_path=saved)
    assert_identical(straight, again)


class Signal(L.Callback):
    """Sends ``signals`` to this process in the middle of the ``micro``-th batch (from 1) of
    the accumulation group of optimizer step ``at``: after its forward pass (BatchNorm
    statistics already updated), before its backward pass."""

    def __init__(self, at: int, signals=(signal.SIGINT,), micro: int = 1) -> None:
        self.at, self.signals, self.micro, self.sent = at, signals, micro, False

    def on_before_backward(self, trainer, module, loss):
        accumulate = trainer.accumulate_grad_batches
        micro = (trainer.fit_loop.epoch_loop.batch_progress.current.ready - 1) % accumulate + 1
        if trainer.global_step == self.at and micro == self.micro and not self.sent:
            self.sent = True
            for signum in self.signals:
                os.kill(os.getpid(), signum)


@pytest.mark.parametrize(
    ("source", "signum", "accumulate", "workers", "stop_at", "limit"),
    [
        ("folder", signal.SIGINT, 1, 0, 2, None),
        ("folder", signal.SIGTERM, 1, 2, 4, None),
        ("folder", signal.SIGINT, 2, 0, 3, None),  # inside a group, at an epoch's short group
        ("folder", signal.SIGTERM, 2, 2, 4, None),
        ("folder", signal.SIGINT, 1, 0, 3, 2),  # epochs of 2 batches, passes of 3
        ("shards", signal.SIGTERM, 2, 0, 3, None),  # 2 batches a pass: one group an epoch
    ],
)
def test_a_signal_mid_step_finishes_the_step_then_saves_and_resumes_exactly(
    tmp_path, folder, shards, restore_sigint, source, signum, accumulate, workers, stop_at, limit
):
    data_root = folder if source == "folder" else shards
    run = dict(accumulate_grad_batches=accumulate, limit_train_batches=limit)
    straight = fit(tmp_path / "straight", source, data_root, workers, 2, **run)
    resumed = tmp_path / "resumed"
    with pytest.raises(SystemExit) as stopped:
        fit(resumed, source, data_root, workers, 2, [Signal(stop_at, (signum,))], **run)
    assert stopped.value.code == 128 + signum  # a scheduler sees the job did not finish
    saved = resumed / "checkpoints" / "interrupted.ckpt"
    assert torch.load(saved, weights_only=True)["global_step"] == stop_at + 1  # step finished
    again = fit(resumed, source, data_root, workers, 2, ckpt_path=saved, **run)
    assert_identical(straight, again)


def test_slurms_requeue_signal_mid_step_saves_at_the_step_boundary_and_resumes_exactly(
    tmp_path, folder, restore_sigint, monkeypatch
):
    """Lightning's SLURM auto-requeue saves ``hpc_ckpt_<n>.ckpt`` when SIGUSR1 lands; in the
    middle of a step that checkpoint held a half-done step. The step finishes first now, the
    job is requeued (``scontrol requeue``, a stand-in here) and training goes on."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "requeued"}\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "train", "SLURM_NTASKS": "1"}
    slurm |= {"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    straight = fit(tmp_path / "straight", "folder", folder, 0, 2)
    run = tmp_path / "requeued-run"
    plugins = [SLURMEnvironment(auto_requeue=True)]
    fit(run, "folder", folder, 0, 2, [Signal(3, (signal.SIGUSR1,))], plugins=plugins)
    (hpc,) = run.glob("hpc_ckpt_*.ckpt")
    assert torch.load(hpc, weights_only=True)["global_step"] == 4  # step 3 finished first
    assert (tmp_path / "requeued").read_text() == "requeue 4242\n"
    again = fit(tmp_path / "requeued-job", "folder", folder, 0, 2, ckpt_path=hpc)
    assert_identical(straight, again)


def test_a_second_signal_stops_at_once_without_saving(tmp_path, folder, restore_sigint):
    twice = Signal(2, (signal.SIGTERM, signal.SIGTERM))
    with pytest.raises(SystemExit) as stopped:
        fit(tmp_path, "folder", folder, 0, None, [twice])
    assert stopped.value.code not in (0, None)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*")) == []


class TrainedKeys(L.Callback):
    """The sample keys each training batch held, per Lightning epoch."""

    def __init__(self) -> None:
        self.epochs: list[list[int]] = []

    def on_train_epoch_start(self, trainer, module):
        self.epochs.append([])

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.epochs[-1] += batch["key"].tolist()


@pytest.fixture
def keyed_samples(monkeypatch):
    """Training samples carry their sample key (``epoch * length + index``)."""
    from pconv.data.datasets import TrainDataset

    getitem = TrainDataset.__getitem__

    def keyed(self, key):
        return {**getitem(self, key), "key": key}

    monkeypatch.setattr(TrainDataset, "__getitem__", keyed)


def test_an_epoch_not_a_multiple_of_the_accumulation_trains_every_sample_once(
    tmp_path, folder, keyed_samples
):
    keys = TrainedKeys()
    # 10 items, batches of 2: 5 batches an epoch, accumulated by 2 -> steps after 2, 4, 5.
    trainer = fit(
        tmp_path,
        "folder",
        folder,
        0,
        None,
        [keys],
        items=10,
        accumulate_grad_batches=2,
        max_steps=-1,
        max_epochs=3,
    )
    assert [sorted(epoch) for epoch in keys.epochs] == [
        list(range(10)),
        list(range(10, 20)),
        list(range(20, 30)),
    ]
    assert trainer.global_step == 9  # 3 optimizer steps an epoch, the last on one batch


def test_limit_train_batches_cuts_a_pass_into_equal_epochs(tmp_path, folder, keyed_samples):
    keys = TrainedKeys()
    switch = FinetuneSwitch(at_epoch=2, lr=3e-4)
    trainer = fit(
        tmp_path,
        "folder",
        folder,
        0,
        switch,
        [keys],
        items=10,
        limit_train_batches=3,
        max_steps=-1,
        max_epochs=4,
    )
    # Epochs of 3 batches each; the data runs on through passes of 5 batches, every item
    # once a pass (keys 10 * pass + index).
    assert [len(epoch) for epoch in keys.epochs] == [6, 6, 6, 6]
    stream = [key for epoch in keys.epochs for key in epoch]
    assert sorted(stream[:10]) == list(range(10))
    assert sorted(stream[10:20]) == list(range(10, 20))
    assert len(set(stream[20:])) == 4 and all(20 <= key < 30 for key in stream[20:])
    assert switch.switched_at_step == 6  # at_epoch counts these epochs: 2 x 3 steps
    assert trainer.global_step == 12
