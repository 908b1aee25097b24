"""Listing an image tree and what forked loader workers copy of the listing: the file index
(``pconv.data.file_index``) against the list of ``Path`` objects it replaced, side by side.

For each variant, in its own fresh process:

- ``paths``: the listing before issue 23, literally: ``os.walk`` + a sorted list of ``Path``;
- ``index cold``: :func:`~pconv.data.file_index.scan_folder` with an empty cache (lists the
  tree, writes the cache);
- ``index warm``: the same with the cache written (stats the folders, reads the cache);

it reports the seconds to list, the RSS the listing adds to the process, and then forks two
DataLoader workers that each look up ``--lookups`` random paths and run one full garbage
collection (what a long-running worker's collector eventually does), and reports each
worker's private memory: the pages it copied from its parent. Writes ``results/index.json``.

With a text file instead of a folder (``imagenet_tree.py --layout filelist``'s ``train.txt``)
``paths`` is the old ``file_list`` (a ``Path`` per line) and ``index cold``/``index warm``
are :func:`pconv.data.images.file_list` parsing the list into a file index and writing the
cache, then reading it.

    python experiments/benchmarks/bench_index.py TREE/train [--lookups 2000]
    python experiments/benchmarks/bench_index.py TREE/train.txt --label filelist
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import KIB_PER_MIB, current_rss_mib, print_table, run_worker, write_result

VARIANTS = ("paths", "index cold", "index warm")
WORKERS = 2


def private_mib() -> float:
    kib = 0
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            kib += int(line.split()[1])
    return kib / KIB_PER_MIB


class Lookups:
    """Item ``i >= 0``: the name of a random path; item ``-1``: a full collection, then this
    worker's private memory."""

    def __init__(self, paths) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        if index < 0:
            gc.collect()
            return private_mib()
        return len(str(self.paths[index]))


def worker(tree: str, variant: str, lookups: int) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from pconv.data.file_index import scan_folder
    from pconv.data.images import IMAGE_EXTENSIONS, file_list

    torch.set_num_threads(1)
    before = current_rss_mib()
    start = time.perf_counter()
    if Path(tree).is_file() and variant == "paths":
        lines = (line.strip() for line in Path(tree).read_text().splitlines())
        paths = [Path(tree).parent / line for line in lines if line and not line.startswith("#")]
    elif Path(tree).is_file():
        paths = file_list(tree).paths
    elif variant == "paths":
        paths = sorted(
            Path(folder, name)
            for folder, _, names in os.walk(tree, followlinks=True)
            for name in names
            if name.lower().endswith(IMAGE_EXTENSIONS)
        )
    else:
        paths = scan_folder(tree, IMAGE_EXTENSIONS)
    seconds = time.perf_counter() - start
    gc.collect()
    held = current_rss_mib() - before
    order = np.random.default_rng(0).integers(len(paths), size=lookups * WORKERS).tolist()
    loader = DataLoader(
        Lookups(paths), batch_size=None, num_workers=WORKERS, sampler=order + [-1] * WORKERS
    )
    results = list(loader)
    return {
        "files": len(paths),
        "list_s": seconds,
        "held_mib": held,
        "worker_private_mib": results[-WORKERS:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", help="a folder of images (ROOT/train) or a list (ROOT/train.txt)")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--label", help="results/index-LABEL.json (default: results/index.json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.tree, args.worker, args.lookups)))
        return
    cache = tempfile.mkdtemp(prefix="pconv-index-bench-")
    os.environ["PCONV_CACHE_DIR"] = cache
    load_before = os.getloadavg()[0]
    results = {}
    try:
        for variant in VARIANTS:
            results[variant] = run_worker(
                Path(__file__), [variant, args.tree, "--lookups", str(args.lookups)]
            )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    load_after = os.getloadavg()[0]
    rows = [
        [v, r.get("files"), r.get("list_s"), r.get("held_mib"),
         *(r.get("worker_private_mib") or [None] * WORKERS)]
        for v, r in results.items()
    ]  # fmt: skip
    print_table(
        f"listing {args.tree} (load {load_before:.1f}-{load_after:.1f})",
        ["variant", "files", "s to list", "MiB held", "worker 1 private", "worker 2 private"],
        rows,
    )  # fmt: skip
    path = write_result(
        f"index-{args.label}" if args.label else "index",
        {"tree": args.tree, "lookups": args.lookups, "load_average_1min": [load_before, load_after],
         "results": results},
    )  # fmt: skip
    print(f"wrote {path}")
    sys.exit(0)


if __name__ == "__main__":
    main()
