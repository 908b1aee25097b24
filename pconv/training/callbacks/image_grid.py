"""Image grids of the first validation images, every validation, on disk and in the logger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from jsonargparse.typing import PositiveInt
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torchvision.utils import make_grid, save_image

from pconv.data.masks import hole_pattern
from pconv.metrics import composite

#: Panels of one grid row, left to right.
PANELS = ("input (hole shown)", "mask", "output", "composite", "ground truth")
GRID_PADDING = 2


def grid_rows(image: torch.Tensor, mask: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """One row of ``PANELS`` per image: (N·5)×3×H×W in [0, 1], for ``make_grid(nrow=5)``.

    ``image`` N×3×H×W in [0, 1], ``mask`` N×1×H×W (1 = valid), ``output`` N×3×H×W raw.
    """
    pattern = torch.from_numpy(hole_pattern(*image.shape[-2:])).permute(2, 0, 1)[None]
    hole = pattern.to(image.device, image.dtype) / 255  # holes shown as hole_pattern's checks
    panels = (
        mask * image + (1 - mask) * hole,
        mask.expand_as(image),
        output.clamp(0, 1),
        composite(output, image, mask),
        image,
    )
    return torch.stack(panels, dim=1).flatten(0, 1)


class ValidationImageGrid(L.Callback):
    """Each validation: a grid of the first ``num_images`` validation images, one row each
    with ``PANELS``; saved as ``<log dir>/images/val_step<step>.png`` and logged to W&B
    (``val/examples``) or TensorBoard. Skipped during the sanity check."""

    def __init__(self, num_images: PositiveInt = 4) -> None:
        if num_images < 1:
            raise ValueError(f"ValidationImageGrid: num_images must be >= 1, got {num_images}")
        self.num_images = num_images
        self._rows: list[torch.Tensor] = []
        self.last_path: Path | None = None

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._rows = []

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: dict[str, torch.Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        have = sum(len(r) for r in self._rows) // len(PANELS)
        if trainer.sanity_checking or not trainer.is_global_zero or have >= self.num_images:
            return
        take = self.num_images - have
        image, mask = batch["image"][:take].float(), batch["mask"][:take].float()
        output = outputs["output"][:take].detach().float()
        self._rows.append(grid_rows(image, mask, output).cpu())

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Under DDP trainer.log_dir is a broadcast from rank 0: every rank must ask for it, or
        # rank 0 waits here while the others wait in the metrics' sync.
        log_dir = trainer.log_dir or trainer.default_root_dir
        if not self._rows:
            return
        grid = make_grid(torch.cat(self._rows), nrow=len(PANELS), padding=GRID_PADDING)
        self._rows = []
        folder = Path(log_dir) / "images"
        folder.mkdir(parents=True, exist_ok=True)
        self.last_path = folder / f"val_step{trainer.global_step:08d}.png"
        save_image(grid, self.last_path)
        caption = " | ".join(PANELS)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/examples", [grid], caption=[caption])
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/examples", grid, trainer.global_step)
