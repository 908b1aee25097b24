"""A resumable checkpoint when training stops on an exception, Ctrl-C or SIGTERM."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from pconv.training.module import NonFiniteLossError
from pconv.weights.checkpoints import checkpoint_step


class InterruptCheckpoint(OnExceptionCheckpoint):
    """Lightning's ``OnExceptionCheckpoint``, saving ``<dirpath>/<filename>.ckpt`` and
    printing the ``--ckpt_path`` that resumes from it.

    ``dirpath`` defaults to the ModelCheckpoint's directory, known once training starts.
    Set it (and ``checkpoint.dirpath``) explicitly for ``--ckpt_path last`` to consider this
    file too (the newest of it and ``last.ckpt`` wins), e.g. for requeued cluster jobs.

    It saves only progress: optimizer steps taken since this run started or last saved a
    checkpoint. A failed start, or a stop right after a save, writes and advertises nothing,
    and an existing file holding as many steps or more is never replaced. It saves nothing
    when the loss became NaN/Inf: those weights are useless, and the last regular checkpoint
    is the one to resume from. It removes its file after a run that ends normally.
    """

    def __init__(self, dirpath: str | None = None, filename: str = "interrupted") -> None:
        # The parent requires a directory; ours is resolved once the trainer knows it.
        super().__init__(dirpath or "", filename)
        self.dirpath = dirpath
        #: The step of the newest checkpoint of this run (its start step at first); None
        #: until training starts.
        self.saved_step: int | None = None

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
        self.saved_step = trainer.global_step

    def on_save_checkpoint(self, trainer: L.Trainer, *_) -> None:
        self.saved_step = trainer.global_step

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, error: BaseException):
        if isinstance(error, NonFiniteLossError):
            return
        if self.saved_step is None or trainer.global_step <= self.saved_step:
            return  # no progress to save
        self._resolve(trainer)
        existing = Path(self.ckpt_path)
        if existing.is_file() and checkpoint_step(existing) >= trainer.global_step:
            return
        # The full state, said explicitly: Lightning logs a notice when weights_only is unset.
        trainer.save_checkpoint(self.ckpt_path, weights_only=False)
        rank_zero_info(
            f"Saved {self.ckpt_path} at step {trainer.global_step}; resume with "
            f"--ckpt_path {self.ckpt_path}"
        )

    def teardown(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if self.dirpath:
            super().teardown(trainer, *args, **kwargs)
