"""The two errors of the weights paths; every message is one line that names the file."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or holds no pconv network."""


class WeightsUnavailableError(RuntimeError):
    """The requested weights can be neither found locally nor downloaded."""
