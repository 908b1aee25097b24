"""The paper's switch from the initial phase to fine-tuning (Liu et al., section 4).

At the switch the learning rate drops (5e-5 by default) and every encoder BatchNorm is
frozen: its running statistics by eval mode, kept through every later ``train()`` call
(:meth:`InpaintingModule.freeze_encoder_bn`), and its affine parameters by setting the lr
of their own optimizer group (``encoder_bn``) to 0. Changing ``requires_grad`` instead
would break DDP's gradient reducer in the middle of a run; a zero lr leaves Adam's and
AdamW's updates exactly zero. Decoder BatchNorms keep training.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from pconv.module import ENCODER_BN_GROUP, InpaintingModule

#: The paper's fine-tuning learning rate.
FINETUNE_LR = 5e-5


class FinetuneSwitch(L.Callback):
    """Switch to fine-tuning at ``at_step`` (optimizer steps) or ``at_epoch``, whichever
    comes first; both ``None`` disables the switch. ``at_step=0`` fine-tunes from the start.

    The state (switched or not, and when) is saved in checkpoints: a run resumed after the
    switch keeps fine-tuning, one resumed before switches at the same step. ``train/finetune``
    (0 or 1) is logged every step.
    """

    def __init__(
        self, at_step: int | None = None, at_epoch: int | None = None, lr: float = FINETUNE_LR
    ) -> None:
        if lr < 0:
            raise ValueError(f"FinetuneSwitch: lr must be >= 0, got {lr}")
        self.at_step, self.at_epoch, self.lr = at_step, at_epoch, lr
        self.switched_at_step: int | None = None

    @property
    def switched(self) -> bool:
        return self.switched_at_step is not None

    def _due(self, trainer: L.Trainer) -> bool:
        return (self.at_step is not None and trainer.global_step >= self.at_step) or (
            self.at_epoch is not None and trainer.current_epoch >= self.at_epoch
        )

    def _apply(self, trainer: L.Trainer, module: InpaintingModule) -> None:
        module.freeze_encoder_bn()
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                lr = 0.0 if group.get("name") == ENCODER_BN_GROUP else self.lr
                group["lr"] = lr
                if "initial_lr" in group:  # set by LR schedulers
                    group["initial_lr"] = lr
        for config in trainer.lr_scheduler_configs:
            if hasattr(config.scheduler, "base_lrs"):
                groups = config.scheduler.optimizer.param_groups
                config.scheduler.base_lrs = [group["lr"] for group in groups]
        if not self.switched:
            self.switched_at_step = trainer.global_step
            rank_zero_info(
                f"Fine-tuning from step {trainer.global_step}: lr {self.lr:g}, encoder "
                "BatchNorm frozen (statistics and affine parameters)"
            )

    def _maybe_switch(self, trainer: L.Trainer, module: InpaintingModule) -> None:
        if not self.switched and self._due(trainer):
            self._apply(trainer, module)

    def on_train_start(self, trainer: L.Trainer, module: InpaintingModule) -> None:
        # Resumed after the switch: the optimizer state brought the lrs back, but not the
        # BatchNorm modes; re-apply everything.
        if self.switched:
            self._apply(trainer, module)
        self._maybe_switch(trainer, module)

    def on_train_epoch_start(self, trainer: L.Trainer, module: InpaintingModule) -> None:
        self._maybe_switch(trainer, module)

    def on_train_batch_start(
        self, trainer: L.Trainer, module: InpaintingModule, batch: Any, batch_idx: int
    ) -> None:
        self._maybe_switch(trainer, module)
        module.log("train/finetune", float(self.switched), batch_size=batch["image"].shape[0])

    def state_dict(self) -> dict[str, Any]:
        return {"switched_at_step": self.switched_at_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.switched_at_step = state_dict["switched_at_step"]
