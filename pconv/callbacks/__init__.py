"""Training callbacks: best and last checkpoints, fine-tune switch, validation image grids,
prediction PNGs, Ctrl-C checkpoint, unreadable-file report."""

from pconv.callbacks.checkpoint import BestAndLastCheckpoint
from pconv.callbacks.finetune import FinetuneSwitch
from pconv.callbacks.image_grid import ValidationImageGrid
from pconv.callbacks.interrupt import InterruptCheckpoint
from pconv.callbacks.prediction_writer import PredictionWriter
from pconv.callbacks.skip_report import SkipReport

__all__ = [
    "BestAndLastCheckpoint",
    "FinetuneSwitch",
    "InterruptCheckpoint",
    "PredictionWriter",
    "SkipReport",
    "ValidationImageGrid",
]
