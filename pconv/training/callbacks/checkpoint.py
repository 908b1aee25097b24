"""``BestAndLastCheckpoint``: Lightning's ModelCheckpoint whose ``last.ckpt`` is always the
newest validated state.

Lightning (2.1 and later) refreshes ``last.ckpt`` only when a top-k checkpoint is written at the
same step, so after a validation that did not improve the monitored metric ``last.ckpt`` still
holds an older step, and resuming from it would throw away every step since. Here every
validation that ends a save-able step refreshes ``last.ckpt`` too.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


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
