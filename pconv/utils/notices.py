"""Library notices a pconv run does not show, filtered in this one place.

A normal run prints the model summary, the progress bar, the per-bucket table and the paths
of what it wrote. The libraries underneath add tips, deprecations of their own internals and
repeated messages; :func:`quiet_library_notices` (called once by the CLI) filters exactly
those, each by its text, so any other warning still shows.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

#: (message regex, why it is noise) of Python warnings raised inside the libraries.
WARNINGS = (
    (r".*isinstance\(treespec, LeafSpec\)", "Lightning's use of a torch pytree API"),
    (r"The dirpath has changed from", "ModelCheckpoint on every validate/test/predict run"),
    # The loss's VGG is frozen in eval mode on purpose (and so are the encoder BNs after the
    # fine-tune switch); Lightning's notice about eval-mode modules would only alarm users.
    (r"Found \d+ module\(s\) in eval mode", "frozen VGG and encoder BatchNorms"),
    # The interrupt checkpoint makes Lightning look for a last checkpoint to resume from on
    # every fit; a real resume is still announced ("Restoring states from ..."), so its
    # notices about looking, and about finding none in a fresh run, are noise.
    (r".*ckpt_path=None\)` was called without a model", "resume search"),
    (r".*but there is no last checkpoint available", "resume search in a fresh run"),
    # The training loader resumes at the checkpoint's step (EpochSampler) without the
    # loader state Lightning looks for.
    (r".*your dataloader is not resumable", "EpochSampler resumes by the step count"),
    # The folder holds the run's lock file from the start, and a fit in a folder with
    # checkpoints resumes from the newest one and says so in its own line.
    (r"Checkpoint directory .* exists and is not empty", "lock file; resume is announced"),
)
#: Start of INFO lines Lightning logs: a product tip, a note that pconv's own model summary
#: (without FLOPs) replaces Lightning's default one, the seed (it is in the saved config),
#: which accelerators exist (Lightning warns by itself when a GPU goes unused) and that
#: max_steps ended the run (the progress bar shows it).
LOG_LINES = (
    "💡 Tip:",
    "Trainer already configured with model summary callbacks",
    "Seed set to",
    "GPU available:",
    "TPU available:",
    "HPU available:",
    "`Trainer.fit` stopped: `max_steps=",
)
#: The loggers those lines come from.
LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed")


class _DropLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Lightning prefixes "[rank: N] " to some lines in multi-process runs.
        return not re.sub(r"^\[rank: \d+\] ", "", str(record.msg)).startswith(LOG_LINES)


def quiet_library_notices() -> None:
    """Filter the notices listed above and make W&B silent (pconv prints the run's folder
    and its ``wandb sync`` command itself; ``WANDB_SILENT=false`` brings W&B's lines back)."""
    for pattern, _why in WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in LOGGERS:
        logging.getLogger(name).addFilter(_DropLines())
    os.environ.setdefault("WANDB_SILENT", "true")


def quiet_wandb() -> None:
    """Keep W&B silent from the start of ``wandb.init`` when ``WANDB_SILENT`` is set: its
    settings check warns about Lightning passing ``anonymous=None`` before it reads
    ``WANDB_SILENT`` itself."""
    if os.environ.get("WANDB_SILENT", "").lower() in ("1", "true"):
        import wandb

        wandb.termsetup(wandb.Settings(silent=True), None)
