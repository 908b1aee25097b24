"""Prediction PNGs: named by evaluation index, pixel values within rounding of the input."""

import numpy as np
import torch
from PIL import Image

from pconv.training.callbacks import PredictionWriter


def test_writes_one_png_per_item(tmp_path):
    comp = torch.rand(2, 3, 16, 24)
    writer = PredictionWriter(str(tmp_path / "out"))
    prediction = {"comp": comp, "index": torch.tensor([5, 11])}
    writer.write_on_batch_end(None, None, prediction, None, None, 0)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["000005.png", "000011.png"]
    saved = np.asarray(Image.open(tmp_path / "out" / "000011.png").convert("RGB"))
    expected = np.round(comp[1].permute(1, 2, 0).numpy() * 255)
    assert saved.shape == (16, 24, 3)
    assert np.abs(saved - expected).max() <= 1
