"""The paper's switch from the initial phase to fine-tuning (Liu et al., section 4).

At the switch the learning rate drops (5e-5 by default) and every encoder BatchNorm is
frozen; decoder BatchNorms keep training. The whole freeze lives here, on the groups the
module exposes (:meth:`InpaintingModule.parameter_groups`, :func:`encoder_batch_norms`):

- running statistics: the encoder BNs are put in eval mode before every training batch
  (Lightning puts the module back in train mode after each validation);
- affine parameters: their optimizer group (``encoder_bn``) gets lr 0 right before every
  optimizer step, whatever an LR scheduler set it to since. A zero lr leaves Adam's and
  AdamW's updates exactly zero; changing ``requires_grad`` instead would break DDP's
  gradient reducer in the middle of a run.

With an LR scheduler the other groups continue its schedule scaled so that the lr at the
switch is the fine-tune lr: every lr the scheduler keeps for them (``base_lrs``, and
OneCycleLR's ``initial_lr``/``max_lr``/``min_lr``) is multiplied by the same factor.
A resumed run restores the lrs, the optimizer and the scheduler from the checkpoint as they
were; nothing is re-applied.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from jsonargparse.typing import NonNegativeFloat, NonNegativeInt
from lightning.pytorch.utilities import rank_zero_info

from pconv.training.module import ENCODER_BN_GROUP, InpaintingModule, encoder_batch_norms

#: The paper's fine-tuning learning rate.
FINETUNE_LR = 5e-5
#: Learning rates a scheduler keeps in each optimizer group (OneCycleLR, schedulers'
#: ``initial_lr``); the switch scales them with the group's lr.
_GROUP_LR_KEYS = ("initial_lr", "max_lr", "min_lr")
#: Per-group learning rates a scheduler keeps as attributes (CyclicLR has ``max_lrs``).
_SCHEDULER_LR_LISTS = ("base_lrs", "max_lrs")


class FinetuneSwitch(L.Callback):
    """Switch to fine-tuning at ``at_step`` (optimizer steps) or ``at_epoch``, whichever
    comes first; both ``None`` disables the switch. ``at_step=0`` fine-tunes from the start.

    The state (switched or not, and when) is saved in checkpoints: a run resumed after the
    switch keeps fine-tuning, one resumed before switches at the same step.
    ``train/finetune`` (0 or 1) is logged at the start of training and at the switch.
    """

    def __init__(
        self,
        at_step: NonNegativeInt | None = None,
        at_epoch: NonNegativeInt | None = None,
        lr: NonNegativeFloat = FINETUNE_LR,
    ) -> None:
        if lr < 0:
            raise ValueError(f"FinetuneSwitch: lr must be >= 0, got {lr}")
        # Plain numbers: the lr goes into optimizer state, which must stay weights-only loadable.
        self.at_step, self.at_epoch, self.lr = at_step, at_epoch, float(lr)
        self.switched_at_step: int | None = None

    @property
    def switched(self) -> bool:
        return self.switched_at_step is not None

    def _due(self, trainer: L.Trainer) -> bool:
        return (self.at_step is not None and trainer.global_step >= self.at_step) or (
            self.at_epoch is not None and trainer.current_epoch >= self.at_epoch
        )

    def _switch(self, trainer: L.Trainer) -> None:
        for optimizer in trainer.optimizers:
            scale = []
            for group in optimizer.param_groups:
                frozen = group.get("name") == ENCODER_BN_GROUP
                factor = 0.0 if frozen or group["lr"] == 0 else self.lr / group["lr"]
                scale.append(factor)
                group["lr"] = 0.0 if frozen else self.lr
                for key in _GROUP_LR_KEYS:
                    if key in group:
                        group[key] *= factor
            for config in trainer.lr_scheduler_configs:
                if config.scheduler.optimizer is not optimizer:
                    continue
                for name in _SCHEDULER_LR_LISTS:
                    lrs = getattr(config.scheduler, name, None)
                    if isinstance(lrs, list):
                        scaled = [lr * f for lr, f in zip(lrs, scale, strict=True)]
                        setattr(config.scheduler, name, scaled)
        self.switched_at_step = trainer.global_step
        for logger in trainer.loggers:
            logger.log_metrics({"train/finetune": 1.0}, step=trainer.global_step)
        rank_zero_info(
            f"Fine-tuning from step {trainer.global_step}: lr {self.lr:g}, encoder "
            "BatchNorm frozen (statistics and affine parameters)"
        )

    def _maybe_switch(self, trainer: L.Trainer) -> None:
        if not self.switched and self._due(trainer):
            self._switch(trainer)

    def on_train_start(self, trainer: L.Trainer, module: InpaintingModule) -> None:
        for logger in trainer.loggers:
            logger.log_metrics({"train/finetune": float(self.switched)}, trainer.global_step)

    def on_train_epoch_start(self, trainer: L.Trainer, module: InpaintingModule) -> None:
        self._maybe_switch(trainer)

    def on_train_batch_start(
        self, trainer: L.Trainer, module: InpaintingModule, batch: Any, batch_idx: int
    ) -> None:
        self._maybe_switch(trainer)
        if self.switched:
            for bn in encoder_batch_norms(module.net):
                bn.eval()

    def on_before_optimizer_step(
        self, trainer: L.Trainer, module: InpaintingModule, optimizer: Any
    ) -> None:
        if self.switched:
            for group in optimizer.param_groups:
                if group.get("name") == ENCODER_BN_GROUP:
                    group["lr"] = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"switched_at_step": self.switched_at_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.switched_at_step = state_dict["switched_at_step"]
