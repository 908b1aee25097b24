"""One report per stage of the unreadable files the data passed over, over all workers and
ranks (each sample names the files skipped to make it: ``batch["skipped"]``)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_warn

from pconv.data.images import UnreadableImageWarning

#: Files listed in the report; the rest are counted.
MAX_LISTED = 20


class SkipReport(L.Callback):
    """Collects ``batch["skipped"]`` on the host (no device work) and, at the end of each
    stage, warns once with the total and the files not reported before in this run."""

    def __init__(self) -> None:
        #: path -> reason of the files skipped since the last report / reported so far.
        self.pending: dict[str, str] = {}
        self.reported: set[str] = set()

    def _collect(self, batch: Any) -> None:
        if isinstance(batch, dict):
            for lines in batch.get("skipped", ()):
                for line in lines.splitlines():
                    path, _, reason = line.partition(": ")
                    self.pending.setdefault(path, reason)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self._collect(batch)

    def on_validation_batch_end(self, trainer, module, outputs, batch, *args) -> None:
        self._collect(batch)

    def on_test_batch_end(self, trainer, module, outputs, batch, *args) -> None:
        self._collect(batch)

    def on_predict_batch_end(self, trainer, module, outputs, batch, *args) -> None:
        self._collect(batch)

    def _report(self, stage: str) -> None:
        found = dict(self.pending)
        if dist.is_available() and dist.is_initialized():
            gathered: list[dict[str, str] | None] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, found)  # one collective per stage end
            found = {path: reason for part in gathered for path, reason in part.items()}
        new = sorted(set(found) - self.reported)
        self.pending.clear()
        self.reported |= set(new)
        if new:
            listed = "; ".join(f"{path} ({found[path]})" for path in new[:MAX_LISTED])
            more = f"; and {len(new) - MAX_LISTED} more" if len(new) > MAX_LISTED else ""
            rank_zero_warn(
                f"{stage}: skipped {len(new)} unreadable file(s): {listed}{more}",
                category=UnreadableImageWarning,
            )

    def on_train_end(self, trainer, module) -> None:
        self._report("training")

    def on_validation_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            self._report("validation")

    def on_test_end(self, trainer, module) -> None:
        self._report("test")

    def on_predict_end(self, trainer, module) -> None:
        self._report("predict")
