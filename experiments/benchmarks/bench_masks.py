"""The ``paper`` mask preset, ours against the baseline before issue 23, side by side.

``naive_masks.py`` is the preset before issue 23 (a whole-canvas copy and count per stroke,
one ``draw_strokes`` call per stroke, one window over the whole range); ours counts and
restores only a stroke's box, computes stroke geometry per block of strokes and keeps each
mask in its target's bucket. Both run in one process on one core, alternating in short rounds
so that load from other processes hits both alike; the median round counts, in masks per CPU
second. Also checks that both steering loops make identical masks from the same seeds and
windows, and prints the share of each paper bucket over ``--masks`` masks of each (target:
15-18 % each, and >= 2,000 masks/s/core at 512). Writes ``results/masks.json``.

    python experiments/benchmarks/bench_masks.py [--size 512] [--seconds 20] [--masks 3000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter

import cv2
import numpy as np
import torch
from harness import print_table, write_result
from naive_masks import NaivePaperMasks, naive_steered_mask

from pconv.data.buckets import BUCKETS, NUM_BUCKETS, OUT_OF_RANGE, bucket_label, bucket_of
from pconv.data.masks import hole_ratio, make_mask_generator, steered_mask

TARGET = 2000.0
ROUNDS = 20
IDENTICAL_CHECKS = 200


def rounds(generators: dict, size: int, seconds: float) -> dict[str, list[float]]:
    """Masks per CPU second of each generator in ``ROUNDS`` alternating rounds of
    ``seconds / ROUNDS / 2`` CPU seconds each.

    CPU time, not wall time: on a machine shared with other jobs a process gets a varying
    share of a core, and masks per CPU second is the per-core figure either way.
    """
    rates = {name: [] for name in generators}
    rng = np.random.default_rng(0)
    for _ in range(ROUNDS):
        for name, gen in generators.items():
            calls, start = 0, time.process_time()
            while (elapsed := time.process_time() - start) < seconds / ROUNDS / len(generators):
                gen(rng, size, size)
                calls += 1
            rates[name].append(calls / elapsed)
    return rates


def bucket_shares(gen, size: int, count: int) -> dict[str, float]:
    counts = Counter(
        bucket_of(hole_ratio(gen(np.random.default_rng([7, i]), size, size))) for i in range(count)
    )
    shares = {bucket_label(b): counts[b] / count for b in range(NUM_BUCKETS)}
    shares["out of range"] = counts[OUT_OF_RANGE] / count
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=20.0, help="CPU seconds, both together")
    parser.add_argument("--masks", type=int, default=3000, help="masks for the bucket shares")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)

    ours, naive = make_mask_generator("paper"), NaivePaperMasks()
    identical = sum(
        np.array_equal(
            steered_mask(ours, np.random.default_rng(i), args.size, args.size, *BUCKETS[i % 6]),
            naive_steered_mask(
                ours, np.random.default_rng(i), args.size, args.size, *BUCKETS[i % 6]
            ),
        )
        for i in range(IDENTICAL_CHECKS)
    )
    load_before = os.getloadavg()
    rates = rounds({"ours": ours, "naive": naive}, args.size, args.seconds)
    load_after = os.getloadavg()
    median = {name: statistics.median(values) for name, values in rates.items()}
    shares = {name: bucket_shares(gen, args.size, args.masks) for name, gen in
              (("ours", ours), ("naive", naive))}  # fmt: skip

    print_table(
        f"paper preset at {args.size}: masks per CPU second ({ROUNDS} alternating rounds)",
        ["", "median", "best", "worst"],
        [[name, median[name], max(v), min(v)] for name, v in rates.items()]
        + [["ours / naive", median["ours"] / median["naive"], None, None]],
    )
    print(f"identical masks from the same seeds and buckets: {identical} of {IDENTICAL_CHECKS}")
    for name, values in shares.items():
        print(
            f"{name} bucket shares over {args.masks} masks: "
            + "  ".join(f"{label} {share:.1%}" for label, share in values.items())
        )
    print(f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    path = write_result(
        "masks",
        {
            "size": args.size,
            "masks_per_s": {"median": median, "rounds": rates},
            "speedup": median["ours"] / median["naive"],
            "target_masks_per_s": TARGET,
            "identical_masks": f"{identical}/{IDENTICAL_CHECKS}",
            "bucket_shares": shares,
            "load_average_1min": {"before": load_before[0], "after": load_after[0]},
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
