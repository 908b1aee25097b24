"""``InpaintingModule``: the LightningModule that trains a PConvUNet with the paper's loss.

Batches follow DESIGN.md: ``image`` N×3×H×W in [0, 1], ``mask`` N×1×H×W (1 = valid),
``bucket`` N long, ``border`` N bool (evaluation), ``index`` N long (evaluation).

Hyper-parameters: under LightningCLI they are the parsed ``model:`` config; built from Python
the network and loss are recorded as ``{class_path, init_args}`` too. Either way
``InpaintingModule.load_from_checkpoint(path)`` rebuilds the module, and
:func:`load_network` rebuilds just the network (no loss, no VGG) for inference.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
import torch
from jsonargparse.typing import PositiveInt
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from rich.console import Console
from torch.nn.modules.batchnorm import _BatchNorm
from torchmetrics import MeanMetric

from pconv.losses.inpainting import TERMS, InpaintingLoss
from pconv.metrics import (
    NUMERIC_COLUMNS,
    BucketedInpaintingMetrics,
    compact_lines,
    composite,
    numeric_table,
    results_table,
)
from pconv.nn.unet import PConvUNet
from pconv.weights.checkpoints import net_config, newest_checkpoint
from pconv.weights.load import load_weights_into

#: The paper's learning rate for the initial phase (Adam).
DEFAULT_LR = 2e-4
#: Name of the optimizer parameter group of the encoder's BatchNorm parameters; the
#: fine-tune switch (pconv.training.callbacks.finetune) freezes them by giving this group lr 0.
ENCODER_BN_GROUP = "encoder_bn"
NET_GROUP = "net"
#: Steps between host-side checks of the device-side non-finite-loss record (each check is a
#: device sync; the record keeps the exact first bad step and term in between).
DEFAULT_NAN_CHECK_EVERY = 50
_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"
#: Checkpoint key of the W&B run id: a run resumed from the checkpoint continues that W&B run.
WANDB_RUN_ID_KEY = "wandb_run_id"


def _plain(value: Any) -> Any:
    """``value`` with every int/float subclass (range types) made a plain int/float."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value) if type(value) in (list, tuple) else value
    if isinstance(value, bool) or type(value) in (int, float):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf."""


def _class_path(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def loss_config(loss: InpaintingLoss) -> dict[str, Any]:
    """``{class_path, init_args}`` that rebuild ``loss`` (weights and VGG weights source)."""
    w = loss.weights
    args = {
        "valid_weight": w["valid"],
        "hole_weight": w["hole"],
        "perceptual_weight": w["perceptual"],
        "style_weight": w["style_out"],
        "tv_weight": w["tv"],
        "vgg_weights": loss.vgg_weights,
    }
    return {"class_path": _class_path(loss), "init_args": args}


def encoder_batch_norms(net: PConvUNet) -> list[_BatchNorm]:
    """Every BatchNorm (any ``_BatchNorm``, SyncBatchNorm included) of ``net.encoder``."""
    return [m for m in net.encoder.modules() if isinstance(m, _BatchNorm)]


class InpaintingModule(L.LightningModule):
    """Trains ``net`` with ``loss``; validates and tests with bucketed PSNR/SSIM/ℓ1.

    Args:
        net: the network (default: the paper's 8-level ``PConvUNet``).
        loss: the loss (default: ``InpaintingLoss`` with the paper's weights and ImageNet VGG).
        optimizer: optimizer factory taking parameter groups (default: Adam, lr 2e-4). The
            VGG is never optimised; the encoder's BatchNorm parameters form their own group
            named ``encoder_bn`` so fine-tuning can freeze them DDP-safely (lr 0).
        scheduler: optional LR scheduler factory, stepped every optimizer step.
        init_from: checkpoint (or any weights spec of :func:`pconv.weights.load_network`)
            whose network weights (not optimizer state, counters or hyper-parameters)
            initialise ``net`` at the start of ``fit``: the fine-tune phase.
        channels_last: run the network in channels-last memory format (faster convs on
            tensor-core GPUs).
        compile: ``torch.compile`` the network (in place, so checkpoint keys do not change).
        nan_check_every: steps between host checks for a NaN/Inf loss; the exact first bad
            step and term are recorded on the device in between, and the run stops with them.

    Forward: ``forward(image, mask) -> output``, as :class:`PConvUNet`.
    ``predict_step`` returns ``{"comp": N×3×H×W composite in [0, 1], "index": N}``.
    """

    def __init__(
        self,
        net: PConvUNet | None = None,
        loss: InpaintingLoss | None = None,
        optimizer: OptimizerCallable | None = None,
        scheduler: LRSchedulerCallable | None = None,
        init_from: str | None = None,
        channels_last: bool = False,
        compile: bool = False,
        nan_check_every: PositiveInt = DEFAULT_NAN_CHECK_EVERY,
    ) -> None:
        super().__init__()
        if nan_check_every < 1:
            raise ValueError(f"nan_check_every must be >= 1, got {nan_check_every}")
        # The modules themselves are never pickled into hparams: both ways of building
        # (LightningCLI or Python) record {class_path, init_args} and LightningCLI's
        # instantiator, so load_from_checkpoint and load_network serve both.
        self.save_hyperparameters(ignore=["net", "loss"])
        self.net = net if net is not None else PConvUNet()
        self.loss = loss if loss is not None else InpaintingLoss()
        self.hparams.update(net=net_config(self.net), loss=loss_config(self.loss))
        if "_instantiator" not in self.hparams:  # built from Python, not by LightningCLI
            self.hparams["_instantiator"] = _INSTANTIATOR
            # A Python callable cannot be saved; a reloaded module gets the default Adam
            # (only training uses it).
            self.hparams.update(optimizer=None, scheduler=None)
        self._hparams_initial = copy.deepcopy(self.hparams)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.init_from = init_from
        self.channels_last = channels_last
        self.compile_net = compile
        self.nan_check_every = nan_check_every
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.val_metrics = BucketedInpaintingMetrics()
        self.test_metrics = BucketedInpaintingMetrics()
        # The validation loss as a sum and an image count, each summed over ranks: exact on
        # uneven DDP shards, where Lightning's sync_dist averages (and truncates) the counts.
        # A NaN loss stays NaN rather than being dropped.
        self.val_loss = MeanMetric(nan_strategy="disable")
        self._bad_step: torch.Tensor | None = None
        self._bad_terms: torch.Tensor | None = None

    # ----------------------------------------------------------------- network and state
    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            mask = mask.contiguous(memory_format=torch.channels_last)
        return self.net(image, mask)

    def configure_model(self) -> None:
        if self.compile_net and not getattr(self.net, "_compiled_call_impl", None):
            self.net.compile()

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.init_from:
            # In setup, before Lightning restores a --ckpt_path: resuming a fine-tune run
            # keeps its own weights. load_from_checkpoint never reads the file again.
            load_weights_into(self.net, self.init_from)

    def state_dict(self, *args, **kwargs) -> dict[str, Any]:
        # The frozen VGG is rebuilt from loss.vgg_weights: keep its 15M weights out of every
        # checkpoint.
        state = super().state_dict(*args, **kwargs)
        for key in [k for k in state if k.startswith("loss.vgg.")]:
            del state[key]
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        state = dict(state_dict)
        for key, value in self.loss.state_dict(prefix="loss.").items():
            if key.startswith("loss.vgg."):
                state.setdefault(key, value)
        return super().load_state_dict(state, strict=strict, assign=assign)

    # ----------------------------------------------------------------- optimisation
    def parameter_groups(self) -> list[dict[str, Any]]:
        """``net`` parameters in two groups: ``encoder_bn`` (the encoder's BatchNorm affine
        parameters) and ``net`` (all the others). The loss (VGG) is never included."""
        bn_ids = {id(p) for bn in encoder_batch_norms(self.net) for p in bn.parameters()}
        groups = [
            {"name": NET_GROUP, "params": [p for p in self.net.parameters() if id(p) not in bn_ids]}
        ]
        bn_params = [p for p in self.net.parameters() if id(p) in bn_ids]
        if bn_params:
            groups.append({"name": ENCODER_BN_GROUP, "params": bn_params})
        return groups

    def configure_optimizers(self) -> Any:
        groups = self.parameter_groups()
        if self.optimizer_factory is None:
            optimizer = torch.optim.Adam(groups, lr=DEFAULT_LR)
        else:
            optimizer = self.optimizer_factory(groups)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        schedule = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    # ----------------------------------------------------------------- steps
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        image, mask = batch["image"], batch["mask"]
        output = self(image, mask)
        terms = self.loss(output, image, mask)
        self._record_non_finite(terms)
        n = image.shape[0]
        for name in TERMS:
            self.log(f"train/loss/{name}", terms[name], batch_size=n)
            self.log(f"train/weighted/{name}", self.loss.weights[name] * terms[name], batch_size=n)
        # Not on the progress bar: Lightning turns progress-bar values into Python numbers after
        # every step, a device sync per step whatever the bar's refresh rate.
        # The lrs are LearningRateMonitor's: logging a Python float here would copy it to the
        # device every step.
        self.log("train/loss/total", terms["total"], batch_size=n)
        return terms["total"]

    def _record_non_finite(self, terms: dict[str, torch.Tensor]) -> None:
        """Keep, on the device, the first step whose loss was not finite and which terms
        were; read it on the host every ``nan_check_every`` steps and stop with it."""
        names = (*TERMS, "total")
        finite = torch.stack([torch.isfinite(terms[k]) for k in names])
        if self._bad_step is None or self._bad_step.device != finite.device:
            self._bad_step = torch.full((), -1, dtype=torch.long, device=finite.device)
            self._bad_terms = torch.zeros_like(finite)
        first = (~finite).any() & (self._bad_step < 0)
        step = torch.full_like(self._bad_step, self.global_step)
        self._bad_step = torch.where(first, step, self._bad_step)
        self._bad_terms = torch.where(first, ~finite, self._bad_terms)
        if (self.global_step + 1) % self.nan_check_every == 0:
            self.check_finite()

    def non_finite_loss_note(self) -> str:
        """`` (loss first NaN/Inf at step S in term(s) ...)`` or "" (a device sync)."""
        if self._bad_step is None or int(self._bad_step) < 0:
            return ""
        names = (*TERMS, "total")
        bad = [name for name, flag in zip(names, self._bad_terms.tolist(), strict=True) if flag]
        return f" (loss first NaN/Inf at step {int(self._bad_step)} in {', '.join(bad)})"

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteLossError` if a step since the start had a NaN/Inf loss."""
        if self._bad_step is None or int(self._bad_step) < 0:
            return
        names = (*TERMS, "total")
        bad = [name for name, flag in zip(names, self._bad_terms.tolist(), strict=True) if flag]
        good = self._newest_checkpoint()
        raise NonFiniteLossError(
            f"loss became NaN/Inf at step {int(self._bad_step)} in term(s) {', '.join(bad)}; "
            "lower the learning rate or the loss weights, or try 32-bit precision"
            + (f", and resume from {good}" if good else ", and start again (no checkpoint yet)")
        )

    def _newest_checkpoint(self) -> str | None:
        """The newest checkpoint in the checkpoint callback's folder, or None."""
        trainer = self._trainer  # None outside a Trainer: the property would raise
        folder = getattr(trainer and trainer.checkpoint_callback, "dirpath", None)
        return newest_checkpoint(sorted(Path(folder).glob("*.ckpt"))) if folder else None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to save non-finite weights: one device sync per save, none per step.

        The W&B run id goes in under ``WANDB_RUN_ID_KEY``. Hyper-parameters are saved as
        plain numbers: the config's range types (jsonargparse's ``PositiveInt``...) would stop
        ``torch.load(weights_only=True)``."""
        for key in ("hyper_parameters", "datamodule_hyper_parameters"):
            if key in checkpoint:
                checkpoint[key] = _plain(checkpoint[key])
        for logger in self.loggers:
            if isinstance(logger, WandbLogger) and logger.version:
                checkpoint[WANDB_RUN_ID_KEY] = logger.version
        params = [p.detach() for p in self.net.parameters()]
        finite = torch.stack([torch.isfinite(p).all() for p in params]).all()
        if self._bad_step is not None:
            finite = finite & (self._bad_step.to(finite.device) < 0)
        if bool(finite):
            return
        good = self._newest_checkpoint()
        advice = f"resume from {good}" if good else "start again"
        raise NonFiniteLossError(
            f"the network weights are NaN/Inf at step {self.global_step}"
            f"{self.non_finite_loss_note()}; no checkpoint written: {advice} with a lower "
            "learning rate or loss weights, or 32-bit precision"
        )

    def on_train_epoch_end(self) -> None:
        self.check_finite()

    def on_train_end(self) -> None:
        self.check_finite()

    def _evaluate(self, batch: dict[str, torch.Tensor], metrics: BucketedInpaintingMetrics):
        image, mask = batch["image"], batch["mask"]
        output = self(image, mask)
        metrics.update(output, image, mask, batch["bucket"], batch["border"])
        return output

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict:
        output = self._evaluate(batch, self.val_metrics)
        total = self.loss(output, batch["image"], batch["mask"])["total"]
        # The batch's mean once per image: torchmetrics 1.9 ignores `weight` when
        # nan_strategy is "disable".
        self.val_loss.update(total.detach().expand(output.shape[0]))
        return {"output": output}

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict:
        return {"output": self._evaluate(batch, self.test_metrics)}

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict:
        image, mask = batch["image"], batch["mask"]
        prediction = {"comp": composite(self(image, mask).float(), image, mask)}
        if "index" in batch:
            prediction["index"] = batch["index"]
        return prediction

    def _log_metrics(self, stage: str, metrics: BucketedInpaintingMetrics) -> dict:
        # compute() syncs the sum states across ranks, so every rank logs the same keys.
        results = metrics.compute()
        metrics.reset()
        # Empty cells (NaN) are left out rather than charted as gaps.
        logged = {f"{stage}/{k}": v for k, v in results.items() if not torch.isnan(v)}
        # The values are already equal on every rank; sync_dist (a mean of equal values) only
        # stops Lightning from warning, once per key, that epoch-level values are not synced.
        self.log_dict(logged, sync_dist=True)
        return results

    def on_validation_epoch_end(self) -> None:
        results = self._log_metrics("val", self.val_metrics)
        loss = self.val_loss.compute()  # synced over ranks, equal on each
        self.val_loss.reset()
        self.log("val/loss/total", loss, sync_dist=True)
        if not self.trainer.is_global_zero or self.trainer.sanity_checking:
            return
        if self.trainer.state.fn == TrainerFn.VALIDATING:  # `pconv validate`: as `pconv test`
            Console().print(results_table(results, "validation metrics on the composite"))
            return
        title = f"validation at step {self.global_step}: loss {float(loss):.4f}"
        # Plain lines, flushed: they are read in log files as often as on a terminal.
        print("\n".join(compact_lines(results, title)), flush=True)

    def on_test_epoch_end(self) -> None:
        results = self._log_metrics("test", self.test_metrics)
        if self.trainer.is_global_zero:
            Console().print(results_table(results, "test metrics on the composite"))
        for logger in self.loggers:
            if isinstance(logger, WandbLogger):
                # Numbers, not strings, so W&B can plot them; one row per border split too.
                logger.log_table(
                    "test/table", columns=list(NUMERIC_COLUMNS), data=numeric_table(results)
                )
