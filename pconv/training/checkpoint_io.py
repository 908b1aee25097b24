"""Checkpoint files that survive SIGKILL: every checkpoint Lightning writes (ModelCheckpoint's
best and ``last.ckpt``, ``interrupted.ckpt``, SLURM's ``hpc_ckpt_*``) goes through the
strategy's CheckpointIO, and this one writes a temporary file in the target's folder, flushes
it to disk (fsync), and renames it over the target. A process killed at any moment leaves the
previous file or the new one, never half of one; a stray temporary is a hidden
``.<name>.<random>.ckpt`` that nothing reads, and the next ``fit`` holding the checkpoint
folder removes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from pconv.utils.files import atomic_path


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a crash of the machine keeps it)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` writing local files atomically and durably; remote
    URLs (``s3://``...) are written by Lightning as before (object stores replace whole
    objects)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        with atomic_path(path) as temporary, open(temporary, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        _fsync_folder(path.parent)
