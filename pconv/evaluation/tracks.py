"""Evaluation tracks: which fixed masks an evaluation uses and how its rows are named.

- ``paper``: the paper's Table 1 layout. Rows are the 6 hole-ratio buckets × {no border,
  border}; masks are :func:`pconv.data.masks.eval_mask` with the ``paper`` preset, so they are
  exactly the masks ``pconv test`` and ``pconv masks export`` use for the same seed.
  With mask files (``get_track("paper", FileEvalMasks(...))``, e.g. NVIDIA's test masks as in
  the paper) the masks are the files, bucketed by their measured ratio and border contact,
  and one more row, ``outside_buckets``, holds the files whose ratio is in no bucket.
- ``lama``: LaMa's layout. Rows are the ``thin``, ``medium`` and ``thick`` stroke presets;
  masks are drawn from the preset's generator as they come (not steered into a bucket), from a
  random stream fixed by ``(seed, index)``.

Item ``index`` of a track always has the same mask and row, for any ``per_row``: the rows
cycle with the index, so ``len(rows) * per_row`` consecutive items fill every row
``per_row`` times (mask files: the items of :class:`~pconv.data.nvidia_masks.FileEvalMasks`).

:data:`PAPER_TABLE1` holds the paper's own PConv figures, shown beside the paper track.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pconv.data.buckets import NUM_BUCKETS, OUT_OF_RANGE, bucket_label
from pconv.data.masks import NUM_BORDER_SPLITS, eval_mask, make_mask_generator
from pconv.data.nvidia_masks import FileEvalMasks
from pconv.metrics import BORDER_SPLITS, OUTSIDE_LABEL
from pconv.utils.choices import TRACK_NAMES

LAMA_PRESETS = ("thin", "medium", "thick")
#: Tags the LaMa track's random streams so they never coincide with another use of a seed.
_LAMA_STREAM = 7
#: The paper's own PConv figures (Liu et al., ECCV 2018, Table 1, the quantitative
#: comparison; the cells checked against the paper): ℓ1 (%), PSNR (dB) and SSIM per
#: hole-ratio bucket, on Places2 at 512 with the irregular test masks of its Section 4.1.
PAPER_TABLE1 = {
    "0.1-0.2": {"l1": 1.09, "psnr": 28.32, "ssim": 0.870},
    "0.2-0.3": {"l1": 1.88, "psnr": 25.25, "ssim": 0.779},
    "0.3-0.4": {"l1": 2.84, "psnr": 22.89, "ssim": 0.689},
}
PAPER_SIZE = 512
#: Files in NVIDIA's irregular test mask set.
NVIDIA_TEST_MASKS = 12_000


@dataclass(frozen=True)
class Row:
    """One row of a report: ``key`` is unique and file-name safe (``0.1-0.2_border``,
    ``thin``); ``group`` is the hole-ratio bucket label or preset name; ``split`` is the
    border split (``no_border``/``border``) or ``""`` on the LaMa track."""

    key: str
    group: str
    split: str = ""


#: The row of mask files whose hole ratio is in no bucket.
OUTSIDE_ROW = Row("outside_buckets", OUTSIDE_LABEL)


@dataclass(frozen=True)
class Track:
    """The rows of a track and its fixed masks: ``mask(seed, index, size) -> (mask, row)``
    with ``mask`` H×W uint8 (1 valid, 0 hole) and ``row`` an index into ``rows``.
    ``file_masks``: the paper track's masks come from these files (``size`` is theirs)."""

    name: str
    rows: tuple[Row, ...]
    file_masks: FileEvalMasks | None = field(default=None, compare=False)

    def length(self, per_row: int) -> int:
        """Items of an evaluation with ``per_row`` items in every row (mask files: all the
        files kept, up to ``per_row`` per cell when they were read)."""
        if self.file_masks is not None:
            return len(self.file_masks)
        return len(self.rows) * per_row

    def mask(self, seed: int, index: int, size: int) -> tuple[np.ndarray, int]:
        if self.file_masks is not None:
            mask, bucket, border = self.file_masks(index)
            if bucket == OUT_OF_RANGE:
                return mask, self.rows.index(OUTSIDE_ROW)
            return mask, bucket * NUM_BORDER_SPLITS + int(border)
        if self.name == "paper":
            mask, bucket, border = eval_mask(seed, index, size, size, "paper")
            return mask, bucket * NUM_BORDER_SPLITS + int(border)
        row = index % len(LAMA_PRESETS)
        rng = np.random.default_rng([seed, _LAMA_STREAM, index])
        return make_mask_generator(LAMA_PRESETS[row])(rng, size, size), row


def get_track(name: str, file_masks: FileEvalMasks | None = None) -> Track:
    """The track called ``name`` (one of :data:`TRACK_NAMES`), with the masks of
    ``file_masks`` instead of generated ones (paper track only)."""
    if file_masks is not None and name != "paper":
        raise ValueError(f"mask files work with the paper track, not {name!r}")
    if name == "paper":
        rows = tuple(
            Row(f"{bucket_label(b)}_{split}", bucket_label(b), split)
            for b in range(NUM_BUCKETS)
            for split in BORDER_SPLITS
        )
        if file_masks is not None:
            rows += (OUTSIDE_ROW,)
    elif name == "lama":
        rows = tuple(Row(preset, preset) for preset in LAMA_PRESETS)
    else:
        raise ValueError(f"unknown evaluation track {name!r}; valid: {', '.join(TRACK_NAMES)}")
    return Track(name, rows, file_masks)
