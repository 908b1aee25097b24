"""``BestAndLastCheckpoint``: Lightning's ModelCheckpoint whose ``last.ckpt`` is always the
newest validated state.

Lightning (2.1 and later) refreshes ``last.ckpt`` only when a top-k checkpoint is written at the
same step, so after a validation that did not improve the monitored metric ``last.ckpt`` still
holds an older step, and resuming from it would throw away every step since. Here every
validation that ends a save-able step refreshes ``last.ckpt`` too.

Lightning also writes ``last-v1.ckpt`` beside an existing ``last.ckpt`` that its restored
state does not name (a resume whose checkpoint settings changed, a checkpoint from another
folder), leaving ``last.ckpt`` at an older step for the next ``--ckpt_path …/last.ckpt``.
Here ``last.ckpt`` itself is written whenever the file there holds no later step.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint

from pconv.weights.checkpoints import checkpoint_step


class BestAndLastCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments) that also writes ``last.ckpt`` (when
    ``save_last``) at the end of every validation during training, not only when the
    monitored metric improved."""

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
