"""BestAndLastCheckpoint: last.ckpt holds the newest validated step even when the monitored
metric got worse (Lightning's ModelCheckpoint leaves an older one there)."""

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel
from trainers import cpu_trainer

from pconv.training.callbacks import BestAndLastCheckpoint

STEPS, VAL_EVERY = 6, 2


class WorseEveryValidation(BoringModel):
    """Logs a ``val/psnr`` that falls at every validation: only the first is the best."""

    def validation_step(self, batch, batch_idx):
        self.log("val/psnr", -float(self.global_step))
        return super().validation_step(batch, batch_idx)


def last_step(callback_class, root) -> int:
    callback = callback_class(dirpath=root, monitor="val/psnr", mode="max", save_last=True)
    trainer = cpu_trainer(
        root, STEPS, callbacks=[callback], val_check_interval=VAL_EVERY, limit_val_batches=1
    )
    trainer.fit(WorseEveryValidation())
    return torch.load(root / "last.ckpt", weights_only=True)["global_step"]


def test_premise_lightning_keeps_an_old_last_checkpoint(tmp_path):
    assert last_step(ModelCheckpoint, tmp_path) == VAL_EVERY


def test_last_checkpoint_is_the_newest_validated_step(tmp_path):
    assert last_step(BestAndLastCheckpoint, tmp_path) == STEPS
    best = [p.name for p in tmp_path.glob("*.ckpt") if p.name != "last.ckpt"]
    assert len(best) == 1 and "step=2" in best[0]  # the best is still the first validation


def test_resume_in_its_own_folder_is_quiet_and_a_new_run_there_gets_one_line(tmp_path, capfd):
    import warnings

    def fit(ckpt_path=None):
        callback = BestAndLastCheckpoint(dirpath=tmp_path, save_last=True)
        trainer = cpu_trainer(tmp_path, STEPS, callbacks=[callback], limit_val_batches=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(BoringModel(), ckpt_path=ckpt_path)
        return [str(w.message) for w in caught], capfd.readouterr().err

    fit()
    caught, err = fit(ckpt_path=str(tmp_path / "last.ckpt"))  # a resume: its own folder
    assert not [m for m in caught if "is not empty" in m] and "pconv:" not in err
    caught, err = fit()  # a new run in a used folder
    assert not [m for m in caught if "is not empty" in m]
    (line,) = [line for line in err.splitlines() if line.startswith("pconv:")]
    assert str(tmp_path) in line and "--ckpt_path last" in line and "beside them" in line


def test_last_ckpt_is_rewritten_even_when_the_restored_state_does_not_name_it(tmp_path):
    def fit(every: int, steps: int, ckpt_path=None) -> None:
        callback = BestAndLastCheckpoint(
            dirpath=tmp_path, save_last=True, every_n_train_steps=every
        )
        trainer = cpu_trainer(tmp_path, steps, callbacks=[callback], limit_val_batches=0)
        trainer.fit(BoringModel(), ckpt_path=ckpt_path)

    fit(every=2, steps=2)
    # Resumed with other checkpoint settings: Lightning does not restore the callback's
    # state (its key changed), so it would write last-v1.ckpt beside last.ckpt at step 2.
    fit(every=1, steps=5, ckpt_path=tmp_path / "last.ckpt")
    assert sorted(p.name for p in tmp_path.glob("last*.ckpt")) == ["last.ckpt"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 5
