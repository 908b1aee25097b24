"""``pconv masks export``: the fixed evaluation masks as PNG files, for other projects.

Writes, into ``-o DIR``:

- ``<row>_<k>.png`` for the ``k``-th mask of each row, e.g. ``0.1-0.2_border_0003.png``
  (paper track: hole-ratio bucket and border split) or ``thick_0003.png`` (LaMa track);
  8-bit gray, **black (0) = hole**, white (255) = valid, like NVIDIA's mask set;
- ``masks.csv``: file, evaluation index, row, bucket/preset, split and hole ratio of each;
- ``contact_sheet.png``: the first masks of every row, to look at.

These are exactly the masks ``pconv evaluate`` uses for the same track, size and seed.

A folder that already holds files is refused unless ``--overwrite`` is given; then the files
of the previous export (those its ``masks.csv`` lists) that the new one does not rewrite are
removed once the new export is complete, so no stale masks stay beside the new CSV. Other
files in the folder are left alone.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import cv2
import numpy as np

from pconv.data.masks import MaskGenerationError, hole_ratio
from pconv.evaluation.plots import image_grid, png_bytes
from pconv.evaluation.tracks import get_track
from pconv.inference import encode_image
from pconv.utils import progress, tool_args
from pconv.utils.choices import WHITE
from pconv.utils.files import atomic_write

PROG = "pconv masks export"
#: Masks per row, and their side in pixels, on the contact sheet.
SHEET_COLUMNS = 8
SHEET_SIDE = 96
MANIFEST_FIELDS = ("file", "index", "row", "group", "split", "hole_ratio")
MANIFEST_DIGITS = 6
MANIFEST = "masks.csv"
CONTACT_SHEET = "contact_sheet.png"


class ExportError(ValueError):
    """A folder the export must not write into; the message is the one line shown."""


def previous_export(out_dir: Path, overwrite: bool) -> list[Path]:
    """The files of an earlier export in ``out_dir`` (its manifest, contact sheet and the
    masks the manifest lists), after checking that ``out_dir`` may be written.

    Raises :class:`ExportError` when ``out_dir`` is a file, or holds files and ``overwrite``
    is not set.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"output {out_dir} is a file; give a folder")
    present = sorted(out_dir.iterdir()) if out_dir.is_dir() else []
    if not present:
        return []
    if not overwrite:
        shown = ", ".join(p.name for p in present[:3]) + (", ..." if len(present) > 3 else "")
        raise ExportError(
            f"{out_dir} already holds {len(present)} file(s) ({shown}); pass --overwrite to "
            "replace an earlier export there, or choose an empty folder"
        )
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return []
    try:
        with open(manifest, newline="") as file:
            names = [row["file"] for row in csv.DictReader(file)]
    except (KeyError, csv.Error, UnicodeDecodeError) as error:
        raise ExportError(
            f"{manifest} is not a masks.csv written by `pconv masks export` ({error}); move it "
            "away or choose another folder"
        ) from error
    # Only plain names inside the folder: a manifest never sends us elsewhere.
    listed = [out_dir / name for name in names if Path(name).name == name]
    return [p for p in [*listed, manifest, out_dir / CONTACT_SHEET] if p.is_file()]


def export_masks(
    out_dir: Path, track_name: str, size: int, per_row: int, seed: int, overwrite: bool = False
) -> list[dict]:
    """Write the mask files, manifest and contact sheet; return the manifest rows.

    ``out_dir`` must be empty or missing unless ``overwrite`` (see :func:`previous_export`).
    """
    previous = previous_export(out_dir, overwrite)
    track = get_track(track_name)
    counters = [0] * len(track.rows)
    manifest, sheet = [], [[] for _ in track.rows]
    indices = range(track.length(per_row))
    for index in progress.track(indices, "exporting masks"):
        mask, row = track.mask(seed, index, size)
        name = f"{track.rows[row].key}_{counters[row]:04d}.png"
        counters[row] += 1
        picture = mask * np.uint8(WHITE)
        atomic_write(out_dir / name, encode_image(picture, ".png"))
        info = track.rows[row]
        ratio = round(hole_ratio(mask), MANIFEST_DIGITS)
        manifest.append(
            {"file": name, "index": index, "row": info.key, "group": info.group}
            | {"split": info.split, "hole_ratio": ratio}
        )
        if len(sheet[row]) < SHEET_COLUMNS:
            sheet[row].append(
                cv2.resize(picture, (SHEET_SIDE, SHEET_SIDE), interpolation=cv2.INTER_AREA)
            )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(manifest)
    atomic_write(out_dir / MANIFEST, buffer.getvalue().encode())
    grid = image_grid(sheet, row_labels=[row.key for row in track.rows])
    atomic_write(out_dir / CONTACT_SHEET, png_bytes(grid))
    written = {entry["file"] for entry in manifest} | {MANIFEST, CONTACT_SHEET}
    for stale in previous:
        if stale.name not in written:
            stale.unlink()
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = tool_args.masks().parse_args(argv)
    if args.per_bucket < 1 or args.size < 1:
        print(f"{PROG}: --per-bucket and --size must be at least 1", file=sys.stderr)
        return 2
    try:
        manifest = export_masks(
            args.output, args.track, args.size, args.per_bucket, args.seed, args.overwrite
        )
    except (ExportError, MaskGenerationError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    print(f"{PROG}: wrote {len(manifest)} masks, masks.csv and contact_sheet.png to {args.output}")
    return 0
