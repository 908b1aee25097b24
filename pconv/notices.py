"""Library notices a pconv run does not show, filtered in this one place.

A normal run prints the model summary, the progress bar, the per-bucket table and the paths
of what it wrote. The libraries underneath add tips, deprecations of their own internals and
repeated messages; :func:`quiet_library_notices` (called once by the CLI) filters exactly
those, each by its text, so any other warning still shows.
"""

from __future__ import annotations

import logging
import os
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
)
#: Start of INFO lines Lightning logs that advertise a product.
LOG_TIPS = ("💡 Tip:",)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LOG_TIPS)


def quiet_library_notices() -> None:
    """Filter the notices listed above and make W&B silent (pconv prints the run's folder
    and its ``wandb sync`` command itself; ``WANDB_SILENT=false`` brings W&B's lines back)."""
    for pattern, _why in WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropTips())
    os.environ.setdefault("WANDB_SILENT", "true")
