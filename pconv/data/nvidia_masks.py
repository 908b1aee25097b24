"""NVIDIA's irregular test masks (or any folder of mask files) as a bucketed evaluation set.

The paper evaluates on NVIDIA's 12,000 test masks, 1,000 per hole-ratio bucket × border
split. :class:`FileEvalMasks` rebuilds that split itself rather than trusting file names or
order: every file is read, resized to the evaluation size with nearest neighbour, and put in
the bucket of its measured hole ratio (:mod:`pconv.data.buckets`) and the split of its
measured border contact. Masks whose ratio is in no bucket form their own cell
(``OUT_OF_RANGE``), so every file is accounted for.

Polarity: ``hole_value`` is the file value that means hole (0: black = hole, the convention
of NVIDIA's set and of pconv; 255: white = hole). Sets saved the other way round show up as a
median hole ratio above 0.5, which :attr:`FileEvalMasks.polarity_warning` reports.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from pconv.data.buckets import NUM_BUCKETS, OUT_OF_RANGE, bucket_label, bucket_of
from pconv.data.images import IMAGE_EXTENSIONS, DataSourceError, scan_images
from pconv.data.mask_files import PAPER_THRESHOLD, MaskFileError, load_mask
from pconv.data.masks import NUM_BORDER_SPLITS, hole_ratio, touches_border
from pconv.utils.choices import HOLE_VALUES

#: A median hole ratio above this means black and white are probably swapped.
SWAPPED_MEDIAN = 0.5
#: Cells: bucket × border split, then out-of-range × border split.
NUM_CELLS = (NUM_BUCKETS + 1) * NUM_BORDER_SPLITS
OUTSIDE_LABEL = "outside buckets"
#: Threads that read and measure mask files (decoding releases the GIL).
_READ_THREADS = min(8, os.cpu_count() or 1)


def cell_of(bucket: int, border: bool) -> int:
    """Cell index of a bucket (``OUT_OF_RANGE`` allowed) and border split, 0..NUM_CELLS-1."""
    row = NUM_BUCKETS if bucket == OUT_OF_RANGE else bucket
    return row * NUM_BORDER_SPLITS + int(border)


def read_eval_mask(path: str | os.PathLike, size: int, hole_value: int = 0) -> np.ndarray:
    """Mask file ``path`` as a size×size uint8 mask (1 valid, 0 hole), resized with nearest
    neighbour; :class:`MaskFileError` naming the file if it cannot be used."""
    mask = load_mask(path, PAPER_THRESHOLD, invert=hole_value == HOLE_VALUES[1])
    return cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)


def even_pick(count: int, wanted: int) -> list[int]:
    """``min(count, wanted)`` indices of 0..count-1 spread evenly over the range."""
    if wanted >= count:
        return list(range(count))
    return [i * count // wanted for i in range(wanted)]


class FileEvalMasks:
    """Fixed evaluation masks from a folder of mask files, bucketed by measurement.

    ``masks(index) -> (mask, bucket, border)``: item ``index``'s size×size uint8 mask
    (1 valid, 0 hole), its measured bucket (0..5 or ``OUT_OF_RANGE``) and border contact.

    Args:
        root: folder scanned recursively for mask images (e.g. NVIDIA's test masks).
        size: evaluation side, pixels; ratios and border contact are measured at this size.
        hole_value: file value that means hole (0 or 255).
        per_cell: keep at most this many masks per cell (bucket × border split), spread
            evenly over the cell's files; None keeps all.
        progress: a callable ``progress(iterable, total) -> iterable`` wrapping the scan
            (e.g. a progress bar), or None.

    Attributes: ``counts`` (files per cell, before ``per_cell``), ``skipped`` (unreadable
    file -> reason), ``median_ratio`` (over all readable files).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int,
        hole_value: int = 0,
        per_cell: int | None = None,
        progress=None,
    ) -> None:
        root = Path(root)
        if root.is_file():
            raise DataSourceError(
                f"evaluation masks {root} is a file; pass a folder of mask images "
                "(e.g. NVIDIA's irregular test masks)"
            )
        if not root.is_dir():
            raise DataSourceError(
                f"evaluation mask folder {root} does not exist; pass a folder of mask images "
                "(e.g. NVIDIA's irregular test masks)"
            )
        if hole_value not in HOLE_VALUES:
            raise ValueError(f"mask hole value must be 0 or 255, got {hole_value}")
        paths = scan_images(root)
        if not paths:
            raise DataSourceError(
                f"no mask images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}"
            )
        self.root, self.size, self.hole_value = root, size, hole_value
        measured = self._measure(paths, progress)
        pairs = list(zip(paths, measured, strict=True))
        self.skipped = {str(p): m for p, m in pairs if isinstance(m, str)}
        found = [(p, m) for p, m in pairs if not isinstance(m, str)]
        if not found:
            raise DataSourceError(
                f"none of the {len(paths)} mask files under {root} can be read "
                f"(first: {next(iter(self.skipped.items()))[1]})"
            )
        ratios = np.array([ratio for _, (ratio, _) in found])
        self.median_ratio = float(np.median(ratios))
        by_cell: list[list[tuple[Path, int, bool]]] = [[] for _ in range(NUM_CELLS)]
        for path, (ratio, border) in found:
            bucket = bucket_of(ratio)
            by_cell[cell_of(bucket, border)].append((path, bucket, border))
        self.counts = [len(cell) for cell in by_cell]
        kept = [[cell[i] for i in even_pick(len(cell), per_cell or len(cell))] for cell in by_cell]
        # Round-robin over the cells: neighbouring items get neighbouring images, so every
        # cell sees images from the whole source, not one slice of it.
        self.items = [cell[k] for k in range(max(map(len, kept))) for cell in kept if k < len(cell)]

    def _measure(self, paths: list[Path], progress) -> list[tuple[float, bool] | str]:
        def measure(path: Path) -> tuple[float, bool] | str:
            try:
                mask = read_eval_mask(path, self.size, self.hole_value)
            except MaskFileError as error:
                return str(error)
            return hole_ratio(mask), touches_border(mask)

        with ThreadPoolExecutor(_READ_THREADS) as pool:
            results = pool.map(measure, paths)
            if progress is not None:
                results = progress(results, len(paths))
            return list(results)

    def __len__(self) -> int:
        return len(self.items)

    def __call__(self, index: int) -> tuple[np.ndarray, int, bool]:
        path, bucket, border = self.items[index]
        return read_eval_mask(path, self.size, self.hole_value), bucket, border

    @property
    def polarity_warning(self) -> str | None:
        """One line when black and white are probably swapped, else None."""
        if self.median_ratio <= SWAPPED_MEDIAN:
            return None
        other = HOLE_VALUES[1 - HOLE_VALUES.index(self.hole_value)]
        meaning = "black" if self.hole_value == 0 else "white"
        return (
            f"the median hole ratio of the masks in {self.root} is {self.median_ratio:.2f}, "
            f"above {SWAPPED_MEDIAN}: black and white are probably swapped (read with "
            f"{meaning} = hole); if so, pass mask hole value {other}"
        )

    def summary(self) -> str:
        """One line: masks found per bucket (no border + border) and outside the buckets."""
        parts = []
        for row in range(NUM_BUCKETS + 1):
            label = bucket_label(row) if row < NUM_BUCKETS else OUTSIDE_LABEL
            no_border, border = (self.counts[row * NUM_BORDER_SPLITS + s] for s in (0, 1))
            parts.append(f"{label}: {no_border}+{border}")
        skipped = f"; {len(self.skipped)} unreadable skipped" if self.skipped else ""
        return (
            f"{sum(self.counts)} masks in {self.root} at {self.size}px, per bucket "
            f"(no border + border): {', '.join(parts)}{skipped}"
        )
