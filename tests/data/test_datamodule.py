import logging
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from conftest import edge_has_hole, paper_bucket, write_rgb

from pconv.data import InpaintingDataModule
from pconv.data.images import DataSourceError

SIZE = 64


def check_batch(batch, batch_size):
    assert batch["image"].shape == (batch_size, 3, SIZE, SIZE)
    assert batch["image"].dtype == torch.float32
    assert batch["image"].min() >= 0 and batch["image"].max() <= 1
    assert batch["mask"].shape == (batch_size, 1, SIZE, SIZE)
    assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
    assert batch["hole_ratio"].dtype == torch.float32
    assert batch["bucket"].dtype == torch.long and batch["border"].dtype == torch.bool
    for i in range(batch_size):
        mask = batch["mask"][i, 0]
        ratio = (mask == 0).float().mean().item()  # hole = 0
        assert batch["hole_ratio"][i].item() == pytest.approx(ratio, abs=1e-6)
        assert batch["bucket"][i].item() == paper_bucket(ratio)
        assert batch["border"][i].item() == edge_has_hole(mask.numpy())


def test_samples_source_trains_and_validates_on_the_photos():
    dm = InpaintingDataModule(
        image_size=SIZE, batch_size=4, num_workers=0, train_samples_per_epoch=12,
        val_masks_per_bucket=2,
    )  # fmt: skip
    dm.setup("fit")
    # trained and validated on disjoint photos: the validation photos are held out
    train_source, val_source = dm.train_set.reader.source, dm.val_set.reader.source
    train_names = {train_source.name(i) for i in range(len(train_source))}
    val_names = {val_source.name(i) for i in range(len(val_source))}
    assert train_names == {f"skimage.data.{n}" for n in ("astronaut", "rocket", "motorcycle")}
    assert val_names == {"skimage.data.chelsea", "skimage.data.coffee"}
    train = list(dm.train_dataloader())
    assert len(train) == 3
    for batch in train:
        check_batch(batch, 4)
    val = [b for b in dm.val_dataloader()]
    indices = torch.cat([b["index"] for b in val])
    assert indices.tolist() == list(range(24))
    for batch in val:
        check_batch(batch, 4)
        assert batch["bucket"].tolist() == (batch["index"] % 6).tolist()
        assert batch["border"].tolist() == ((batch["index"] // 6) % 2 == 1).tolist()
    # the same fixed set on a second setup
    again = InpaintingDataModule(image_size=SIZE, batch_size=4, num_workers=0)
    again.setup("validate")
    assert torch.equal(next(iter(again.val_dataloader()))["mask"], val[0]["mask"])


def test_imagefolder_uses_splits_and_skips_bad_files(imagenet_root):
    (imagenet_root / "train" / "n00001" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 cut")
    dm = InpaintingDataModule(
        source="imagefolder", root=str(imagenet_root), image_size=SIZE, batch_size=5,
        num_workers=0, val_masks_per_bucket=1,
    )  # fmt: skip
    dm.setup("fit")
    assert len(dm.train_set) == 5 and len(dm.val_set) == 12
    (batch,) = list(dm.train_dataloader())
    skipped = [name for names in batch["skipped"] for name in names.splitlines()]
    assert len(skipped) == 1 and "broken.JPEG" in skipped[0]
    check_batch(batch, 5)
    assert (batch["image"].flatten(1).std(dim=1) > 0.05).all()  # no blank stand-ins
    dm.setup("test")
    assert len(dm.test_dataloader().dataset) == 12
    assert len(dm.predict_dataloader().dataset) == 12


def test_folder_with_val_root_and_filelist(tmp_path, photos):
    for name, image in photos.items():
        write_rgb(tmp_path / "train" / f"{name}.png", image)
    write_rgb(tmp_path / "val" / "only.png", photos["coffee"])
    dm = InpaintingDataModule(
        source="folder", root=str(tmp_path / "train"), val_root=str(tmp_path / "val"),
        image_size=SIZE, num_workers=0,
    )  # fmt: skip
    dm.setup("fit")
    assert len(dm.train_set) == len(photos) and len(dm.val_set.reader) == 1
    (tmp_path / "list.txt").write_text("train/coffee.png\nval/only.png\n")
    dm = InpaintingDataModule(source="filelist", root=str(tmp_path / "list.txt"), num_workers=0)
    dm.setup("fit")
    assert len(dm.train_set) == 2


def test_setup_errors_name_the_path(tmp_path):
    dm = InpaintingDataModule(source="imagefolder", root=str(tmp_path / "imagenet"))
    with pytest.raises(DataSourceError, match=f"{tmp_path / 'imagenet' / 'train'} does not exist"):
        dm.setup("fit")
    (tmp_path / "empty").mkdir()
    dm = InpaintingDataModule(source="folder", root=str(tmp_path / "empty"))
    with pytest.raises(DataSourceError, match=f"no images .* under {tmp_path / 'empty'}"):
        dm.setup("fit")
    with pytest.raises(DataSourceError, match="unknown image source 'lmdb'; valid: samples"):
        InpaintingDataModule(source="lmdb")
    with pytest.raises(ValueError, match="unknown mask preset 'wide'; valid presets: medium"):
        InpaintingDataModule(mask_preset="wide")


class _TinyModel(L.LightningModule):
    """Fills holes with a learned colour: enough to run the loops over real batches."""

    def __init__(self):
        super().__init__()
        self.fill = torch.nn.Parameter(torch.zeros(3, 1, 1))
        self.val_indices = []

    def training_step(self, batch, _):
        out = batch["image"] * batch["mask"] + self.fill * (1 - batch["mask"])
        return (out - batch["image"]).abs().mean()

    def validation_step(self, batch, _):
        self.val_indices.extend(batch["index"].tolist())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_trainer_runs_on_the_datamodule(tmp_path):
    L.seed_everything(0, workers=True)
    dm = InpaintingDataModule(
        image_size=SIZE, batch_size=2, num_workers=2, val_masks_per_bucket=1,
        train_samples_per_epoch=4,
    )  # fmt: skip
    model = _TinyModel()
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 2
    assert sorted(model.val_indices) == list(range(12))
    assert model.fill.abs().sum() > 0  # it trained on the hole pixels


@pytest.fixture
def twenty_classes(tmp_path):
    """An ImageFolder val split of 20 classes × 5 tiny images, sorted by class."""
    rng = np.random.default_rng(0)
    for c in range(20):
        for i in range(5):
            image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            write_rgb(tmp_path / "val" / f"n{c:02d}" / f"{i}.png", image)
    return tmp_path


def classes_of(dataset) -> list[str]:
    source = dataset.reader.source
    return [Path(source.name(p)).parent.name for p in dataset.image_positions()]


def test_eval_sets_touch_every_class_and_val_test_are_disjoint(twenty_classes, caplog):
    dm = InpaintingDataModule(
        source="imagefolder", root=str(twenty_classes), image_size=8, num_workers=0,
        val_masks_per_bucket=2,
    )  # fmt: skip
    with caplog.at_level(logging.INFO):
        dm.setup("validate")
        dm.setup("test")
    assert "share images" not in caplog.text
    val, test = classes_of(dm.val_set), classes_of(dm.test_set)
    assert len(val) == len(test) == 24
    assert set(val) == set(test) == {f"n{c:02d}" for c in range(20)}
    val_images = {dm.val_set.reader.source.name(p) for p in dm.val_set.image_positions()}
    test_images = {dm.test_set.reader.source.name(p) for p in dm.test_set.image_positions()}
    assert len(val_images) == len(test_images) == 24
    assert not val_images & test_images


def test_a_source_too_small_for_disjoint_sets_says_so(caplog):
    dm = InpaintingDataModule(image_size=SIZE, num_workers=0, val_masks_per_bucket=1)
    with caplog.at_level(logging.INFO):
        dm.setup("test")
    lines = [r.getMessage() for r in caplog.records if "share images" in r.getMessage()]
    assert lines == [
        "test and validation share images: split 'val' has 2 images, fewer than the 24 two "
        "disjoint sets need; name another split with data.test_split"
    ]
