"""Saves ``predict`` composites as PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torchvision.utils import save_image


class PredictionWriter(BasePredictionWriter):
    """Writes each predicted composite (N×3×H×W in [0, 1]) to ``output_dir/<index>.png``,
    ``index`` being the item's index in the evaluation set (6 digits), as batches finish.
    The Lightning progress bar shows the progress.

    A folder holding predictions already is refused before the run
    (:func:`pconv.training.preflight.check_predictions`) unless ``overwrite``."""

    def __init__(self, output_dir: str = "predictions", overwrite: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.overwrite = overwrite

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        prediction: dict[str, torch.Tensor],
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        comp = prediction["comp"].float().cpu()
        # The evaluation set's own index when the batch has one, else the sampler's.
        indices = prediction["index"].tolist() if "index" in prediction else batch_indices
        for image, index in zip(comp, indices, strict=True):
            save_image(image, self.output_dir / f"{index:06d}.png")
