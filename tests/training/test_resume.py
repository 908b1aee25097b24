"""Exact resume: a run interrupted (Ctrl-C) at any step and resumed from its newest checkpoint
(interrupt, or last.ckpt at an epoch's end) ends with bit-identical weights, optimizer and
scheduler state to a straight run, mid-epoch, at an epoch's end, across the fine-tune switch,
for a folder source and LitData shards (local, and in a bucket of a loopback S3 server), with 0
and 2 loader workers."""

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


def fit(root, source, data_root, workers, switch_at, callbacks=(), ckpt_path=None):
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
        train_samples_per_epoch=ITEMS,
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
            FinetuneSwitch(at_step=switch_at, lr=3e-4),
            *callbacks,
        ],
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


def assert_identical(a: L.Trainer, b: L.Trainer) -> None:
    assert a.global_step == b.global_step == STEPS
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
