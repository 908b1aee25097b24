"""Make an ImageNet-shaped image tree of hard links to a few real JPEGs, for start-up benchmarks.

Layouts (``--layout``):

- ``imagefolder``: ``ROOT/train/<wnid>/<wnid>_<k>.JPEG``, ``--classes`` × ``--per-class`` files
  (ImageNet: 1,000 × 1,281), and ``ROOT/val/ILSVRC2012_val_<k>.JPEG``, ``--val`` files (50,000);
- ``folder``: ``ROOT/places/<k>.jpg``, ``--files`` files in one flat folder (Places2: 1.8 M);
- ``filelist``: the ``imagefolder`` tree plus ``ROOT/train.txt`` and ``ROOT/val.txt`` naming its
  training and validation files.

Every file is a hard link to one of the skimage.data photos written as JPEG under
``ROOT/.photos`` (each copy linked at most 60,000 times: ext4 allows 65,000): links cost a
directory entry, not an inode or data blocks, so only listing and start-up are realistic (the
photos repeat). ``--fraction`` scales every count (not the
number of classes). Checks free inodes and space first (``df -i``) and refuses a ROOT that is
not empty.

    python experiments/benchmarks/imagenet_tree.py ROOT [--layout imagefolder] [--fraction 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from pconv.data.samples import PHOTO_NAMES, sample_image

IMAGENET_CLASSES = 1000
IMAGENET_PER_CLASS = 1281
IMAGENET_VAL = 50_000
PLACES2_FILES = 1_803_460
JPEG_QUALITY = 90
#: Hard links per file, under ext4's limit of 65,000.
LINKS_PER_FILE = 60_000
#: Bytes a directory entry of a hard link takes, generously (ext4: 8 + name, 4-aligned).
ENTRY_BYTES = 64


def write_photos(folder: Path, links: int) -> list[Path]:
    """The skimage.data photos as JPEG files in ``folder``, each written as often as needed
    for ``links`` hard links within the file system's limit of links per file."""
    folder.mkdir(parents=True)
    encoded = []
    for name in PHOTO_NAMES:
        bgr = np.ascontiguousarray(sample_image(name)[:, :, ::-1])
        encoded.append(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1])
    paths = []
    for copy in range(-(-links // LINKS_PER_FILE)):
        path = folder / f"{PHOTO_NAMES[copy % len(encoded)]}-{copy}.jpg"
        path.write_bytes(encoded[copy % len(encoded)].tobytes())
        paths.append(path)
    return paths


def check_room(root: Path, directories: int, links: int) -> None:
    """Exit with one line unless the file system of ``root`` has the inodes and space."""
    stats = os.statvfs(root)
    if stats.f_favail < directories + 100:
        sys.exit(f"error: {root} has {stats.f_favail} free inodes, {directories} needed")
    if stats.f_bavail * stats.f_frsize < links * ENTRY_BYTES * 2:
        sys.exit(f"error: {root} has too little free space for {links} directory entries")


def link_all(targets: list[Path], names: list[str]) -> None:
    """Hard-link ``names[i]`` to ``targets[i % len(targets)]``, with progress."""
    start = time.perf_counter()
    for i, name in enumerate(names):
        os.link(targets[i % len(targets)], name)
        if (i + 1) % 200_000 == 0:
            print(f"  {i + 1:,} links, {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument(
        "--layout", choices=("imagefolder", "folder", "filelist"), default="imagefolder"
    )
    parser.add_argument("--classes", type=int, default=IMAGENET_CLASSES)
    parser.add_argument("--per-class", type=int, default=IMAGENET_PER_CLASS)
    parser.add_argument("--val", type=int, default=IMAGENET_VAL)
    parser.add_argument("--files", type=int, default=PLACES2_FILES, help="flat folder size")
    parser.add_argument("--fraction", type=float, default=1.0, help="scale every file count")
    args = parser.parse_args()
    root = args.root.absolute()
    if root.exists() and any(root.iterdir()):
        sys.exit(f"error: {root} is not empty; name a new folder")
    root.mkdir(parents=True, exist_ok=True)
    per_class = max(1, round(args.per_class * args.fraction))
    val = max(1, round(args.val * args.fraction))
    flat = max(1, round(args.files * args.fraction))
    # Relative names as str: a million Path objects would cost more memory than the tree.
    if args.layout == "folder":
        folders = ["places"]
        names = [f"places/{k:08d}.jpg" for k in range(flat)]
    else:
        wnids = [f"n{c:08d}" for c in range(args.classes)]
        folders = [f"train/{w}" for w in wnids] + ["val"]
        names = [f"train/{w}/{w}_{k}.JPEG" for w in wnids for k in range(per_class)]
        names += [f"val/ILSVRC2012_val_{k + 1:08d}.JPEG" for k in range(val)]
    check_room(root, len(folders), len(names))
    print(f"{root}: {len(names):,} hard links in {len(folders):,} folders ({args.layout})")
    photos = write_photos(root / ".photos", len(names))
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    os.chdir(root)  # links by relative name: no million path joins
    link_all(photos, names)
    if args.layout == "filelist":
        for split in ("train", "val"):
            lines = "".join(f"{n}\n" for n in names if n.startswith(f"{split}/"))
            Path(f"{split}.txt").write_text(lines)
    free = shutil.disk_usage(".").free / 2**30
    print(f"done in {time.perf_counter() - start:.0f} s; {free:.0f} GiB free")


if __name__ == "__main__":
    main()
