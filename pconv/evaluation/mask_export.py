"""``pconv masks export``: the fixed evaluation masks as PNG files, for other projects.

Writes, into ``-o DIR``:

- ``<row>_<k>.png`` for the ``k``-th mask of each row, e.g. ``0.1-0.2_border_0003.png``
  (paper track: hole-ratio bucket and border split) or ``thick_0003.png`` (LaMa track);
  8-bit gray, **black (0) = hole**, white (255) = valid, like NVIDIA's mask set;
- ``masks.csv``: file, evaluation index, row, bucket/preset, split and hole ratio of each;
- ``contact_sheet.png``: the first masks of every row, to look at.

These are exactly the masks ``pconv evaluate`` uses for the same track, size and seed.

The export is written into a hidden sibling folder (``.<DIR>.<hex>.partial``) and put in
place only when complete, so Ctrl-C or a crash leaves ``DIR`` as it was (the next export
removes the stale sibling). A folder that already holds files is refused unless
``--overwrite`` is given; even then only the files of the previous export (those its
``masks.csv`` lists, the CSV and the contact sheet) are replaced or removed: a file of the
user's that bears a mask's name is refused, and other files are left alone.

The mask count and side are bounded before any work by the disk space and memory they would
take (an estimate, said in the refusal; ``--force`` insists).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
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
from pconv.utils.files import atomic_write, check_writable, staging_folder, swap_in
from pconv.utils.memory import check_fits, physical_memory

PROG = "pconv masks export"
#: Masks per row, and their side in pixels, on the contact sheet.
SHEET_COLUMNS = 8
SHEET_SIDE = 96
MANIFEST_FIELDS = ("file", "index", "row", "group", "split", "hole_ratio")
MANIFEST_DIGITS = 6
MANIFEST = "masks.csv"
CONTACT_SHEET = "contact_sheet.png"
#: Estimates bounding an export (see :func:`check_bounds`): peak memory of generating one
#: mask, and disk space of one mask PNG (compressed binary image plus the file system's block),
#: per pixel of the mask and per file.
GENERATION_BYTES_PER_PIXEL = 16
PNG_BYTES_PER_PIXEL = 1 / 32
FILE_OVERHEAD_BYTES = 4096


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


def file_names(track_name: str, per_row: int) -> list[str]:
    """The mask files of an export: ``<row>_<k>.png`` for ``k < per_row`` in every row (each
    row gets ``per_row`` masks)."""
    return [f"{row.key}_{k:04d}.png" for row in get_track(track_name).rows for k in range(per_row)]


def check_bounds(out_dir: Path, track_name: str, size: int, per_row: int) -> None:
    """Refuse (ValueError) an export whose masks would not fit on ``out_dir``'s disk (space
    or free inodes), or one mask of which would not fit in memory."""
    count = get_track(track_name).length(per_row)
    check_fits(
        GENERATION_BYTES_PER_PIXEL * size * size,
        physical_memory(),
        f"a --size {size} mask",
        "lower --size (or pass --force to try anyway)",
    )
    disk = next(p for p in (out_dir, *out_dir.parents) if p.exists())
    per_file = PNG_BYTES_PER_PIXEL * size * size + FILE_OVERHEAD_BYTES
    check_fits(
        count * per_file,
        shutil.disk_usage(disk).free,
        f"--per-bucket {per_row} ({count:,} masks of {size}×{size}) on the disk of {disk}",
        "lower --per-bucket or --size (or pass --force to try anyway)",
    )
    inodes = os.statvfs(disk).f_favail
    if 0 < inodes < count:  # 0: a file system without an inode limit
        raise ValueError(
            f"--per-bucket {per_row} makes {count:,} files, more than the {inodes:,} the disk "
            f"of {disk} can still hold; lower --per-bucket (or pass --force to try anyway)"
        )


def export_masks(
    out_dir: Path, track_name: str, size: int, per_row: int, seed: int, overwrite: bool = False
) -> list[dict]:
    """Write the mask files, manifest and contact sheet; return the manifest rows.

    ``out_dir`` must be empty or missing unless ``overwrite`` (see :func:`previous_export`);
    it changes only once the export is complete (see the module docstring).
    """
    previous = previous_export(out_dir, overwrite)
    names = {*file_names(track_name, per_row), MANIFEST, CONTACT_SHEET}
    ours = {p.name for p in previous}
    foreign = sorted(n for n in names - ours if (out_dir / n).exists())
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ExportError(
            f"{out_dir} holds {len(foreign)} file(s) named like this export's ({shown}) that "
            f"no earlier export's {MANIFEST} lists; --overwrite replaces only an earlier "
            "export's files: move them away or choose another folder"
        )
    with staging_folder(out_dir) as staging:
        manifest = _write_export(staging, track_name, size, per_row, seed)
        if not out_dir.exists():
            swap_in(staging, out_dir)
            return manifest
        # An existing folder is kept (it may be the working directory, or hold files of the
        # user's): ours are moved in one by one, the CSV last, so that it lists only masks
        # that are in place.
        for path in sorted(staging.iterdir(), key=lambda p: p.name == MANIFEST):
            os.replace(path, out_dir / path.name)
    for stale in previous:
        if stale.name not in names:
            stale.unlink()
    return manifest


def _write_export(out_dir: Path, track_name: str, size: int, per_row: int, seed: int):
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
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = tool_args.masks().parse_args(argv)
    if args.per_bucket < 1 or args.size < 1:
        print(f"{PROG}: --per-bucket and --size must be at least 1", file=sys.stderr)
        return 2
    try:
        existing = next(p for p in (args.output, *args.output.parents) if p.exists())
        if existing.is_dir():  # a file is named by export_masks
            check_writable(existing)
        if not args.force:
            check_bounds(args.output, args.track, args.size, args.per_bucket)
        manifest = export_masks(
            args.output, args.track, args.size, args.per_bucket, args.seed, args.overwrite
        )
    except (ValueError, MaskGenerationError, OSError) as error:  # ExportError: a ValueError
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted; nothing was written to {args.output} (it is as it was)",
            file=sys.stderr,
        )
        return 130
    print(f"{PROG}: wrote {len(manifest)} masks, masks.csv and contact_sheet.png to {args.output}")
    return 0
