"""``BestAndLastCheckpoint``: Lightning's ModelCheckpoint whose ``last.ckpt`` is always the
newest validated state.

Lightning (2.1 and later) refreshes ``last.ckpt`` only when a top-k checkpoint is written at the
same step, so after a validation that did not improve the monitored metric ``last.ckpt`` still
holds an older step, and resuming from it would throw away every step since. Here every
validation that ends a save-able step refreshes ``last.ckpt`` too.

Lightning also warns "Checkpoint directory ... exists and is not empty" at every start in a
used folder, resumes included. Here a resumed run says nothing (the folder is its own; a
plain ``fit`` resumes from the newest ``last``/``interrupted`` checkpoint there by itself), and
a fresh run beside other checkpoints (only ``best-*`` files, say) gets one line saying what to do.

Lightning also writes ``last-v1.ckpt`` beside an existing ``last.ckpt`` that its restored
state does not name (a resume whose checkpoint settings changed, a checkpoint from another
folder), leaving ``last.ckpt`` at an older step for the next ``--ckpt_path …/last.ckpt``.
Here ``last.ckpt`` itself is written whenever the file there holds no later step.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint

from pconv.weights.checkpoints import checkpoint_step


class BestAndLastCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments) that also writes ``last.ckpt`` (when
    ``save_last``) at the end of every validation during training, not only when the
    monitored metric improved."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Checkpoint directory .* is not empty")
            super().setup(trainer, pl_module, stage)
        folder = Path(self.dirpath or "")
        self._used_folder = stage == "fit" and folder.is_dir() and any(folder.glob("*.ckpt"))

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        # Known only now: whether this run resumes (Lightning restores after setup).
        if self._used_folder and trainer.is_global_zero and not trainer.ckpt_path:
            where = (
                "beside them (taken names get -v1, -v2, ...)"
                if self._enable_version_counter
                else "there, replacing files of the same name"
            )
            print(
                f"pconv: {self.dirpath} already holds checkpoints; this new run writes its "
                f"own {where}; to continue that run instead, pass --ckpt_path last, or give "
                "this one another --checkpoint.dirpath",
                file=sys.stderr,
            )

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if (
            self.save_last
            and not self._should_skip_saving_checkpoint(trainer)
            and not self._should_save_on_train_epoch_end(trainer)
            and self._last_global_step_saved != trainer.global_step
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer, monitor_candidates) -> None:
        if self.save_last is True:
            path = self.format_checkpoint_name(monitor_candidates, self.CHECKPOINT_NAME_LAST)
            if checkpoint_step(path) <= trainer.global_step:  # -1: none, or unreadable
                self.last_model_path = path
        super()._save_last_checkpoint(trainer, monitor_candidates)
