"""The training loader at 512: decode, crop, flip, mask and collate, in images/s for 1, 2 and
4 DataLoader workers.

The path ``pconv fit`` runs for a folder source: ``TrainDataset`` (JPEG decode with OpenCV,
random resized crop + flip, a ``paper`` preset mask) through a ``DataLoader`` with batch 6
(the paper's), after one warm-up epoch of the workers. The photos are the skimage.data ones
written as JPEG (300×451 to 500×741). Each worker count runs ``--batches`` batches; the
machine's load average is recorded with every figure, since on a shared machine several
workers compete with other jobs. Writes ``results/loader.json``.

    python experiments/benchmarks/bench_loader.py [--workers 1 2 4] [--batches 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import cv2
import numpy as np
import torch
from harness import print_table, write_result
from torch.utils.data import DataLoader

from pconv.data.datasets import TrainDataset
from pconv.data.images import image_folder
from pconv.data.masks import make_mask_generator
from pconv.data.samples import PHOTO_NAMES, sample_image
from pconv.data.transforms import train_transform

SIZE = 512
BATCH = 6
JPEG_QUALITY = 90


def images_per_s(folder: str, workers: int, batches: int) -> float:
    dataset = TrainDataset(
        image_folder(folder), train_transform(SIZE), make_mask_generator("paper"), SIZE,
        length=BATCH * (batches + 2 * max(workers, 1)),
    )  # fmt: skip
    loader = DataLoader(dataset, batch_size=BATCH, num_workers=workers)
    iterator = iter(loader)
    for _ in range(max(workers, 1)):  # every worker has started and made a batch
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    rows, results = [], []
    with tempfile.TemporaryDirectory() as folder:
        for name in PHOTO_NAMES:
            bgr = np.ascontiguousarray(sample_image(name)[:, :, ::-1])
            cv2.imwrite(f"{folder}/{name}.jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        for workers in args.workers:
            load = os.getloadavg()[0]
            rate = images_per_s(folder, workers, args.batches)
            result = {"workers": workers, "images_per_s": rate, "load": [load, os.getloadavg()[0]]}
            results.append(result)
            rows.append([workers, rate, rate / workers, f"{load:.1f}-{result['load'][1]:.1f}"])
    print_table(
        f"training loader at {SIZE}, batch {BATCH} ({os.cpu_count()} cores)",
        ["workers", "images/s", "per worker", "load"],
        rows,
    )
    path = write_result("loader", {"size": SIZE, "batch": BATCH, "runs": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
