"""Training callbacks: best and last checkpoints, fine-tune switch, validation image grids,
prediction PNGs, Ctrl-C checkpoint, unreadable-file report."""

from pconv.training.callbacks.checkpoint import BestAndLastCheckpoint
from pconv.training.callbacks.finetune import FinetuneSwitch
from pconv.training.callbacks.image_grid import ValidationImageGrid
from pconv.training.callbacks.interrupt import InterruptCheckpoint
from pconv.training.callbacks.prediction_writer import PredictionWriter
from pconv.training.callbacks.skip_report import SkipReport

__all__ = [
    "BestAndLastCheckpoint",
    "FinetuneSwitch",
    "InterruptCheckpoint",
    "PredictionWriter",
    "SkipReport",
    "ValidationImageGrid",
]
