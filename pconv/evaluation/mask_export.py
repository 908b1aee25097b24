"""``pconv masks export``: the fixed evaluation masks as PNG files, for other projects.

Writes, into ``-o DIR``:

- ``<row>_<k>.png`` for the ``k``-th mask of each row, e.g. ``0.1-0.2_border_0003.png``
  (paper track: hole-ratio bucket and border split) or ``thick_0003.png`` (LaMa track);
  8-bit gray, **black (0) = hole**, white (255) = valid, like NVIDIA's mask set;
- ``masks.csv``: file, evaluation index, row, bucket/preset, split and hole ratio of each;
- ``contact_sheet.png``: the first masks of every row, to look at.

These are exactly the masks ``pconv evaluate`` uses for the same track, size and seed.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track as progress

from pconv.data.masks import MaskGenerationError, hole_ratio
from pconv.evaluation.plots import image_grid, png_bytes
from pconv.evaluation.tracks import TRACK_NAMES, get_track
from pconv.inference import atomic_write, encode_image

PROG = "pconv masks export"
WHITE = 255
DEFAULT_SIZE = 512
DEFAULT_PER_ROW = 100
#: Masks per row, and their side in pixels, on the contact sheet.
SHEET_COLUMNS = 8
SHEET_SIDE = 96
MANIFEST_FIELDS = ("file", "index", "row", "group", "split", "hole_ratio")
MANIFEST_DIGITS = 6


def export_masks(
    out_dir: Path, track_name: str, size: int, per_row: int, seed: int, show_progress: bool = True
) -> list[dict]:
    """Write the mask files, manifest and contact sheet; return the manifest rows."""
    track = get_track(track_name)
    counters = [0] * len(track.rows)
    manifest, sheet = [], [[] for _ in track.rows]
    indices = range(track.length(per_row))
    for index in progress(indices, description="exporting masks", disable=not show_progress):
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
    atomic_write(out_dir / "masks.csv", buffer.getvalue().encode())
    grid = image_grid(sheet, row_labels=[row.key for row in track.rows])
    atomic_write(out_dir / "contact_sheet.png", png_bytes(grid))
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pconv masks", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the evaluation masks as PNGs")
    export.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    export.add_argument("--size", type=int, default=DEFAULT_SIZE, help="square mask side")
    export.add_argument(
        "--per-bucket",
        type=int,
        default=DEFAULT_PER_ROW,
        help="masks per row: per bucket × border split (paper) or per preset (lama)",
    )
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--track", choices=TRACK_NAMES, default="paper")
    args = parser.parse_args(argv)
    if args.per_bucket < 1 or args.size < 1:
        print(f"{PROG}: --per-bucket and --size must be at least 1", file=sys.stderr)
        return 2
    try:
        manifest = export_masks(args.output, args.track, args.size, args.per_bucket, args.seed)
    except (MaskGenerationError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    print(f"{PROG}: wrote {len(manifest)} masks, masks.csv and contact_sheet.png to {args.output}")
    return 0
