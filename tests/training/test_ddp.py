"""Real DDP on CPU (gloo, 2 processes) through the real CLI, as a subprocess: plain ``ddp``
inside pytest would re-run the whole test selection in the second rank.

A probe callback (this module, loaded by the CLI via ``class_path``) writes what each rank did
to ``rank<r>.json``: its world size, training batches, training sampler indices, validation
item indices, fine-tune switch step, parameter checksum and checkpoint writes.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.plugins.layer_sync import TorchSyncBatchNorm
from lightning.pytorch.trainer.states import RunningStage

from pconv.data.buckets import NUM_BUCKETS
from pconv.data.datamodule import InpaintingDataModule
from pconv.losses.inpainting import InpaintingLoss
from pconv.metrics import BORDER_SPLITS, cell_name
from pconv.nn.unet import PConvUNet
from pconv.training.callbacks.finetune import FINETUNE_LR, FinetuneSwitch
from pconv.training.module import ENCODER_BN_GROUP, InpaintingModule, encoder_batch_norms

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORLD_SIZE = 2
SIZE = 64
BATCH = 2
VAL_MASKS_PER_BUCKET = 1
EVAL_ITEMS = NUM_BUCKETS * len(BORDER_SPLITS) * VAL_MASKS_PER_BUCKET
TRAIN_ITEMS = 8
STEPS = 4
VAL_EVERY = 2
SWITCH_AT = 2


def checksum(net: torch.nn.Module) -> float:
    """Sum of every parameter, in float64."""
    return sum(float(p.detach().double().sum()) for p in net.parameters())


class RankProbe(L.Callback):
    """Records one rank's view of a DDP run in ``<out_dir>/rank<global rank>.json``."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.record: dict = {"train_batches": 0, "val_indices": [], "checkpoint_writes": 0}

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        io = trainer.strategy.checkpoint_io
        save = io.save_checkpoint

        def counting_save(*args, **kwargs):
            self.record["checkpoint_writes"] += 1
            return save(*args, **kwargs)

        io.save_checkpoint = counting_save

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.record.update(
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            train_indices=list(trainer.train_dataloader.sampler),
        )

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.record["train_batches"] += 1

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.record["val_indices"].append([])

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, *_) -> None:
        self.record["val_indices"][-1] += batch["index"].tolist()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        (switch,) = [c for c in trainer.callbacks if isinstance(c, FinetuneSwitch)]
        self.record.update(
            switched_at_step=switch.switched_at_step,
            group_lrs={g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups},
            param_checksum=checksum(module.net),
        )

    def teardown(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        path = self.out_dir / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(self.record))


class SignalRank(L.Callback):
    """Sends SIGTERM to one rank in the middle of optimizer step ``at`` (after its forward
    pass): every rank must still stop after that same step."""

    def __init__(self, rank: int, at: int) -> None:
        self.rank, self.at, self.sent = rank, at, False

    def on_before_backward(self, trainer, module, loss) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.at and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


def overlay(tmp: Path) -> Path:
    """On top of configs/demo.yaml: 2 CPU processes with gloo, a tiny network, a CSV logger."""
    config = {
        "trainer": {
            "accelerator": "cpu",
            "devices": WORLD_SIZE,
            "strategy": "ddp",
            "max_steps": STEPS,
            "val_check_interval": VAL_EVERY,
            "log_every_n_steps": 1,
            "default_root_dir": str(tmp),
            "logger": {
                "class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": str(tmp), "name": "csv"},
            },
            "callbacks+": [
                {"class_path": "test_ddp.RankProbe", "init_args": {"out_dir": str(tmp)}}
            ],
        },
        "model": {"net": {"init_args": {"levels": 4, "width_mult": 0.125}}},
        "data": {
            "image_size": SIZE,
            "batch_size": BATCH,
            "num_workers": 0,
            "val_masks_per_bucket": VAL_MASKS_PER_BUCKET,
            "train_samples_per_epoch": TRAIN_ITEMS,
        },
        "checkpoint": {"dirpath": str(tmp / "checkpoints")},
        "finetune": {"at_step": SWITCH_AT},
    }
    path = tmp / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fit_ddp(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """`pconv fit` with 2 gloo ranks on :func:`overlay` (plus ``extra`` arguments)."""
    env = dict(
        os.environ,
        WANDB_MODE="disabled",
        NO_ALBUMENTATIONS_UPDATE="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    )
    args = ["fit", "--config", "configs/demo.yaml", "--config", str(overlay(tmp)), *extra]
    return subprocess.run(
        [str(BIN / "pconv"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One `pconv fit` with 2 gloo ranks: (tmp dir, per-rank records)."""
    tmp = tmp_path_factory.mktemp("ddp")
    result = fit_ddp(tmp)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    return tmp, records


def test_both_ranks_trained_in_step(ddp_run):
    _, records = ddp_run
    assert [r["rank"] for r in records] == list(range(WORLD_SIZE))
    assert all(r["world_size"] == WORLD_SIZE for r in records)
    assert all(r["train_batches"] == STEPS for r in records)
    # DDP averaged the gradients: both replicas end with the same weights.
    assert records[0]["param_checksum"] == records[1]["param_checksum"]


def test_ranks_train_on_disjoint_items(ddp_run):
    _, records = ddp_run
    per_rank = [set(r["train_indices"]) for r in records]
    assert not per_rank[0] & per_rank[1]
    assert per_rank[0] | per_rank[1] == set(range(TRAIN_ITEMS))


def test_finetune_switch_on_every_rank_at_the_same_step(ddp_run):
    _, records = ddp_run
    for record in records:
        assert record["switched_at_step"] == SWITCH_AT
        assert record["group_lrs"][ENCODER_BN_GROUP] == 0.0
        assert record["group_lrs"]["net"] == pytest.approx(FINETUNE_LR)


def test_validation_covers_every_item_once_and_metrics_sync(ddp_run):
    tmp, records = ddp_run
    validations = STEPS // VAL_EVERY
    assert all(len(r["val_indices"]) == validations for r in records)
    for run in range(validations):
        seen = [index for r in records for index in r["val_indices"][run]]
        assert sorted(seen) == list(range(EVAL_ITEMS))
    # Rank 0 logs the synced metric states: the counts cover both ranks' items.
    with open(tmp / "csv" / "version_0" / "metrics.csv") as file:
        rows = [row for row in csv.DictReader(file) if row["val/count"]]
    assert len(rows) == validations
    for row in rows:
        assert float(row["val/count"]) == EVAL_ITEMS
        for bucket in range(NUM_BUCKETS):
            per_bucket = len(BORDER_SPLITS) * VAL_MASKS_PER_BUCKET
            assert float(row[f"val/count/{cell_name(bucket)}"]) == per_bucket
            for split in range(len(BORDER_SPLITS)):
                cell = cell_name(bucket, split)
                assert float(row[f"val/count/{cell}"]) == VAL_MASKS_PER_BUCKET


def test_checkpoints_written_once_by_rank_zero_and_load(ddp_run):
    tmp, records = ddp_run
    assert records[0]["checkpoint_writes"] > 0
    assert records[1]["checkpoint_writes"] == 0
    last = tmp / "checkpoints" / "last.ckpt"
    module = InpaintingModule.load_from_checkpoint(last)
    assert module.net.levels == 4
    assert checksum(module.net) == records[0]["param_checksum"]


def test_evaluation_split_across_ranks_has_no_repeats():
    """12 items over 8 ranks: Lightning's default DistributedSampler would pad with repeats,
    and the repeated items would be counted twice by the metrics."""
    ranks = 8
    data = InpaintingDataModule(
        source="samples", image_size=SIZE, val_masks_per_bucket=VAL_MASKS_PER_BUCKET, num_workers=0
    )
    data.setup("validate")
    seen = []
    for rank in range(ranks):
        # A DDP trainer as rank `rank` of 8 sees it (nothing is launched).
        trainer = L.Trainer(accelerator="cpu", devices=ranks, strategy="ddp", logger=False)
        trainer.strategy.cluster_environment.set_world_size(ranks)
        trainer.strategy.cluster_environment.set_global_rank(rank)
        data.trainer = trainer
        # What Lightning's data connector does to the loader before validating.
        loader = trainer._data_connector._prepare_dataloader(
            data.val_dataloader(), shuffle=False, mode=RunningStage.VALIDATING
        )
        seen += list(loader.sampler)
    assert sorted(seen) == list(range(EVAL_ITEMS))


def test_sync_batchnorm_keeps_encoder_bn_in_its_frozen_group():
    """trainer.sync_batchnorm converts every BN to SyncBatchNorm before the optimizer is
    built; the fine-tune switch must still find the encoder BNs (SyncBatchNorm needs CUDA to
    run, so only the conversion is checked here)."""
    module = InpaintingModule(
        net=PConvUNet(levels=4, width_mult=0.125), loss=InpaintingLoss(vgg_weights=None)
    )
    n_encoder_bn = len(encoder_batch_norms(module.net))
    module = TorchSyncBatchNorm().apply(module)
    synced = encoder_batch_norms(module.net)
    assert n_encoder_bn > 0 and len(synced) == n_encoder_bn
    assert all(isinstance(bn, torch.nn.SyncBatchNorm) for bn in synced)
    groups = {g["name"]: g["params"] for g in module.parameter_groups()}
    expected = {id(p) for bn in synced for p in bn.parameters()}
    assert {id(p) for p in groups[ENCODER_BN_GROUP]} == expected


# ------------------------------------------------------------------ val/loss/total under DDP
#: Odd, so that UnrepeatedDistributedSampler gives the two ranks 3 and 2 items.
LOSS_ITEMS = 5
LOSS_SIZE = 32


def loss_module() -> InpaintingModule:
    torch.manual_seed(0)
    net = PConvUNet(levels=3, width_mult=0.125)
    return InpaintingModule(net=net, loss=InpaintingLoss(vgg_weights=None)).eval()


def loss_items() -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    items = []
    for index in range(LOSS_ITEMS):
        image = torch.rand(3, LOSS_SIZE, LOSS_SIZE, generator=generator)
        mask = (torch.rand(1, LOSS_SIZE, LOSS_SIZE, generator=generator) > 0.4).float()
        bucket, border = torch.tensor(index % NUM_BUCKETS), torch.tensor(index % 2 == 1)
        items.append(dict(image=image, mask=mask, bucket=bucket, border=border, index=index))
    return items


class OddEvalData(L.LightningDataModule):
    """LOSS_ITEMS evaluation items, split over ranks as InpaintingDataModule splits them."""

    def val_dataloader(self):
        from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

        items = loss_items()
        kwargs = self.trainer.distributed_sampler_kwargs
        sampler = UnrepeatedDistributedSampler(items, shuffle=False, **kwargs)
        return torch.utils.data.DataLoader(items, batch_size=BATCH, sampler=sampler)


def validate_with_two_ranks(out_dir: str) -> None:
    """Run by test_val_loss_is_exact_on_uneven_shards in a subprocess (Lightning's DDP
    launcher starts the second rank by running this file again)."""
    trainer = L.Trainer(
        accelerator="cpu",
        devices=WORLD_SIZE,
        strategy="ddp",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (metrics,) = trainer.validate(loss_module(), datamodule=OddEvalData(), verbose=False)
    if trainer.is_global_zero:
        Path(out_dir, "metrics.json").write_text(json.dumps(metrics))


def test_val_loss_is_exact_on_uneven_shards(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, __file__, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ddp = json.loads((tmp_path / "metrics.json").read_text())
    # One process, one image at a time: the mean over images of each image's loss (the loss
    # is a mean over equally sized images, so a batch's loss is the mean of its images').
    module = loss_module()
    with torch.no_grad():
        losses = [
            float(
                module.loss(
                    module(i["image"][None], i["mask"][None]), i["image"][None], i["mask"][None]
                )["total"]
            )
            for i in loss_items()
        ]
    assert ddp["val/loss/total"] == pytest.approx(sum(losses) / LOSS_ITEMS, rel=1e-5)
    assert ddp["val/count"] == LOSS_ITEMS


if __name__ == "__main__":
    validate_with_two_ranks(sys.argv[1])


def test_a_signal_to_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    signal_rank_1 = {"class_path": "test_ddp.SignalRank", "init_args": {"rank": 1, "at": 1}}
    result = fit_ddp(tmp_path, f"--trainer.callbacks+={json.dumps(signal_rank_1)}")
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-3000:]
    saved = torch.load(tmp_path / "checkpoints" / "interrupted.ckpt", weights_only=True)
    assert saved["global_step"] == 2  # step 1 finished on both ranks, then both stopped
