"""Unreadable images and masks: skipped in the workers, reported once per stage as one total
with the list of files (not once per reader, not hidden by Python's warning filter)."""

import warnings

import lightning as L
import numpy as np
import skimage.data
from PIL import Image
from trainers import cpu_trainer

from pconv.data.datamodule import InpaintingDataModule
from pconv.data.images import UnreadableImageWarning
from pconv.losses import InpaintingLoss
from pconv.nn import PConvUNet
from pconv.training.callbacks import SkipReport
from pconv.training.module import InpaintingModule


def test_skips_over_two_workers_are_reported_once_as_a_total(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        Image.fromarray(getattr(skimage.data, name)()).resize((64, 64)).save(images / f"{name}.png")
    (images / "broken1.jpg").write_bytes(b"\xff\xd8\xff broken")
    (images / "broken2.png").write_bytes(b"")
    good = np.full((64, 64), 255, np.uint8)
    good[10:30, 10:30] = 0
    Image.fromarray(good).save(masks / "a_good.png")
    (masks / "b_empty.png").write_bytes(b"")  # a zero-byte mask: skipped, not fatal
    jpeg = masks / "c_cut.jpg"
    Image.fromarray(good).save(jpeg, quality=95)
    jpeg.write_bytes(jpeg.read_bytes()[:300])  # truncated: libjpeg would only warn
    L.seed_everything(0)
    data = InpaintingDataModule(
        source="folder", root=str(images), mask_dir=str(masks), image_size=32, batch_size=2,
        num_workers=2, train_samples_per_epoch=20, pin_memory=False,
    )  # fmt: skip
    module = InpaintingModule(
        net=PConvUNet(levels=4, width_mult=0.125), loss=InpaintingLoss(vgg_weights=None)
    )
    trainer = cpu_trainer(
        tmp_path, 10, callbacks=[SkipReport()], limit_val_batches=0, num_sanity_val_steps=0
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's usual filter: repeats are hidden
        trainer.fit(module, data)
    reports = [str(w.message) for w in caught if issubclass(w.category, UnreadableImageWarning)]
    assert len(reports) == 1
    assert "training: skipped 4 unreadable file(s)" in reports[0]
    for name in ("broken1.jpg", "broken2.png", "b_empty.png", "c_cut.jpg"):
        assert name in reports[0]
