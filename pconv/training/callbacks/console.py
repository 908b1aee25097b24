"""What a run shows on the console: the model summary without the FLOPs column (Lightning
counts FLOPs only with an ``example_input_array``, so it read 0), counting the trainable
parameters apart from frozen ones, a progress bar that
says ``Epoch 3`` instead of ``Epoch 3/-2`` in step-based runs (``max_epochs=-1``), and, when
stdout is not a terminal, plain progress lines a log file can hold (:class:`ProgressLog`)."""

from __future__ import annotations

import datetime
import math
import sys
import time
from typing import Any, Literal

import torch
from jsonargparse.typing import PositiveFloat, PositiveInt
from lightning.pytorch.callbacks import Callback, RichModelSummary, RichProgressBar
from lightning.pytorch.utilities.model_summary import get_human_readable_count

_FLOPS = "FLOPs"


class ModelSummary(RichModelSummary):
    """Lightning's rich model summary, without FLOPs."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != _FLOPS]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        table.add_column(" ", style="dim")
        for name, _values in columns[1:]:
            table.add_column(name, justify="right" if name == "Params" else "left")
        for row in zip(*(values for _name, values in columns), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        # What trains is the figure that matters; frozen weights (the loss's VGG-16, never
        # saved in checkpoints) are named apart instead of swelling a "total".
        frozen = total_parameters - trainable_parameters
        lines = [("Trainable params", get_human_readable_count(int(trainable_parameters)))]
        if frozen:
            lines.append(("Frozen params (not trained)", get_human_readable_count(int(frozen))))
        grid = Table.grid(expand=True)
        grid.add_column()
        for label, value in lines:
            grid.add_row(f"[bold]{label}[/]: {value}")
        console.print(grid)


class ProgressBar(RichProgressBar):
    """Lightning's rich progress bar; the epoch count only when epochs bound the run."""

    def _get_train_description(self, current_epoch: int) -> str:
        description = super()._get_train_description(current_epoch)
        if self.trainer.max_epochs is not None and self.trainer.max_epochs < 0:
            # Lightning appends f"/{max_epochs - 1}", i.e. "/-2", when only max_steps bounds it.
            description = description.replace(f"/{self.trainer.max_epochs - 1}", "", 1)
        return description


class ProgressLog(Callback):
    """One plain line of training progress after the first optimizer step, then every
    ``every_n_steps`` steps or ``every_s`` seconds, whichever comes first, for logs that a
    progress bar cannot write to (a SLURM log, ``| tee``, nohup)::

        step 150/2000  epoch 1  41.2 img/s  loss 0.3121  lr 1.0e-03  ETA 0:04:32

    ``loss`` is the mean training loss of the steps since the previous line; ``img/s``
    counts every rank's images and leaves validation time out; the ETA is the remaining
    steps at the run's average pace so far, validation included.

    Args:
        every_n_steps: optimizer steps between lines.
        every_s: seconds between lines (checked after each step).
        when: ``auto`` prints only when stdout is not a terminal (where the bar is shown),
            ``always`` and ``never`` say so.
    """

    def __init__(
        self,
        every_n_steps: PositiveInt = 50,
        every_s: PositiveFloat = 60.0,
        when: Literal["auto", "always", "never"] = "auto",
    ) -> None:
        self.every_n_steps = int(every_n_steps)
        self.every_s = float(every_s)
        self.when = when
        self.enabled = False

    def on_train_start(self, trainer, pl_module) -> None:
        writes = {"always": True, "never": False, "auto": not sys.stdout.isatty()}[self.when]
        self.enabled = writes and trainer.is_global_zero
        self._total = trainer.estimated_stepping_batches
        now = time.monotonic()
        self._start_time, self._start_step = now, trainer.global_step
        self._line_time, self._line_step = now, trainer.global_step
        self._images, self._validating_s = 0, 0.0
        self._loss_sum, self._losses = torch.zeros(()), 0

    def on_validation_start(self, trainer, pl_module) -> None:
        self._validation_start = time.monotonic()

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and self.enabled:
            self._validating_s += time.monotonic() - self._validation_start

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.enabled:
            return
        self._images += batch["image"].shape[0] * trainer.world_size
        if outputs is not None:
            # Lightning hands over the loss divided by the accumulation count; kept on the
            # device (a sync only when a line is printed).
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            loss = loss.detach() * trainer.accumulate_grad_batches
            self._loss_sum = self._loss_sum.to(loss.device) + loss
            self._losses += 1
        step, now = trainer.global_step, time.monotonic()
        if step == self._line_step:  # inside an accumulation group
            return
        # The first step gets a line at once: a log shows within seconds that training runs.
        first = self._line_step == self._start_step
        due = step - self._line_step >= self.every_n_steps or now - self._line_time >= self.every_s
        if not (first or due):
            return
        print(self._line(trainer, step, now), flush=True)
        self._line_time, self._line_step = now, step
        self._images, self._validating_s = 0, 0.0
        self._loss_sum, self._losses = torch.zeros(()), 0

    def _line(self, trainer, step: int, now: float) -> str:
        total = self._total
        parts = [f"step {step}/{total}" if math.isfinite(total) else f"step {step}"]
        parts.append(f"epoch {trainer.current_epoch}")
        training_s = max(now - self._line_time - self._validating_s, 1e-9)
        parts.append(f"{self._images / training_s:.1f} img/s")
        if self._losses:
            parts.append(f"loss {float(self._loss_sum) / self._losses:.4f}")
        if trainer.optimizers:
            parts.append(f"lr {trainer.optimizers[0].param_groups[0]['lr']:.1e}")
        done = step - self._start_step
        if math.isfinite(total) and done > 0:
            eta = (now - self._start_time) / done * max(total - step, 0)
            parts.append(f"ETA {datetime.timedelta(seconds=round(eta))}")
        return "  ".join(parts)
