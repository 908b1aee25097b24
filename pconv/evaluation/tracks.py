"""Evaluation tracks: which fixed masks an evaluation uses and how its rows are named.

- ``paper``: the paper's Table 1 layout. Rows are the 6 hole-ratio buckets × {no border,
  border}; masks are :func:`pconv.data.masks.eval_mask` with the ``paper`` preset, so they are
  exactly the masks ``pconv test`` and ``pconv masks export`` use for the same seed.
- ``lama``: LaMa's layout. Rows are the ``thin``, ``medium`` and ``thick`` stroke presets;
  masks are drawn from the preset's generator as they come (not steered into a bucket), from a
  random stream fixed by ``(seed, index)``.

Item ``index`` of a track always has the same mask and row, for any ``per_row``: the rows
cycle with the index, so ``len(rows) * per_row`` consecutive items fill every row
``per_row`` times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pconv.data.buckets import NUM_BUCKETS, bucket_label
from pconv.data.masks import NUM_BORDER_SPLITS, eval_mask, make_mask_generator
from pconv.metrics import BORDER_SPLITS

TRACK_NAMES = ("paper", "lama")
LAMA_PRESETS = ("thin", "medium", "thick")
#: Tags the LaMa track's random streams so they never coincide with another use of a seed.
_LAMA_STREAM = 7


@dataclass(frozen=True)
class Row:
    """One row of a report: ``key`` is unique and file-name safe (``0.1-0.2_border``,
    ``thin``); ``group`` is the hole-ratio bucket label or preset name; ``split`` is the
    border split (``no_border``/``border``) or ``""`` on the LaMa track."""

    key: str
    group: str
    split: str = ""


@dataclass(frozen=True)
class Track:
    """The rows of a track and its fixed masks: ``mask(seed, index, size) -> (mask, row)``
    with ``mask`` H×W uint8 (1 valid, 0 hole) and ``row`` an index into ``rows``."""

    name: str
    rows: tuple[Row, ...]

    def length(self, per_row: int) -> int:
        """Items of an evaluation with ``per_row`` items in every row."""
        return len(self.rows) * per_row

    def mask(self, seed: int, index: int, size: int) -> tuple[np.ndarray, int]:
        if self.name == "paper":
            mask, bucket, border = eval_mask(seed, index, size, size, "paper")
            return mask, bucket * NUM_BORDER_SPLITS + int(border)
        row = index % len(LAMA_PRESETS)
        rng = np.random.default_rng([seed, _LAMA_STREAM, index])
        return make_mask_generator(LAMA_PRESETS[row])(rng, size, size), row


def get_track(name: str) -> Track:
    """The track called ``name`` (one of :data:`TRACK_NAMES`)."""
    if name == "paper":
        rows = tuple(
            Row(f"{bucket_label(b)}_{split}", bucket_label(b), split)
            for b in range(NUM_BUCKETS)
            for split in BORDER_SPLITS
        )
    elif name == "lama":
        rows = tuple(Row(preset, preset) for preset in LAMA_PRESETS)
    else:
        raise ValueError(f"unknown evaluation track {name!r}; valid: {', '.join(TRACK_NAMES)}")
    return Track(name, rows)
