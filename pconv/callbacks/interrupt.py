"""A resumable checkpoint when training stops on an exception or Ctrl-C."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from pconv.module import NonFiniteLossError


class InterruptCheckpoint(OnExceptionCheckpoint):
    """Lightning's ``OnExceptionCheckpoint``, saving ``<dirpath>/<filename>.ckpt`` and
    printing the ``--ckpt_path`` that resumes from it.

    ``dirpath`` defaults to the ModelCheckpoint's directory, known once training starts.
    Set it (and ``checkpoint.dirpath``) explicitly for ``--ckpt_path last`` to consider this
    file too (the newest of it and ``last.ckpt`` wins), e.g. for requeued cluster jobs.

    It saves nothing when the loss became NaN/Inf: those weights are useless, and the last
    regular checkpoint is the one to resume from. It removes its file after a run that ends
    normally.
    """

    def __init__(self, dirpath: str | None = None, filename: str = "interrupted") -> None:
        # The parent requires a directory; ours is resolved once the trainer knows it.
        super().__init__(dirpath or "", filename)
        self.dirpath = dirpath

    @property
    def ckpt_path(self) -> str:
        # "" is skipped by Lightning's search for the last checkpoint.
        return super().ckpt_path if self.dirpath else ""

    def _resolve(self, trainer: L.Trainer) -> None:
        if self.dirpath is None:
            checkpoint = trainer.checkpoint_callback
            self.dirpath = (checkpoint and checkpoint.dirpath) or trainer.default_root_dir

    def on_train_start(self, trainer: L.Trainer, *_) -> None:
        self._resolve(trainer)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, error: BaseException):
        if isinstance(error, NonFiniteLossError):
            return
        self._resolve(trainer)
        super().on_exception(trainer, module, error)
        rank_zero_info(
            f"Saved {self.ckpt_path} at step {trainer.global_step}; resume with "
            f"--ckpt_path {self.ckpt_path}"
        )

    def teardown(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if self.dirpath:
            super().teardown(trainer, *args, **kwargs)
