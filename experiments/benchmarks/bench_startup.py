"""Start-up and memory of ``pconv fit`` on an ImageNet-shaped tree (``imagenet_tree.py``).

Each configuration runs ``pconv fit`` (configs/demo.yaml with a small overlay: the tree as
``data.source``/``data.root``, 64 px, batch 4, no logger, no validation batches) for
``--steps`` steps in a fresh process and reports, from ``startup_probe.StartupProbe``:

- seconds from launching ``pconv fit`` to rank 0's first training step;
- peak RSS and private memory of each rank and each DataLoader worker after the last step
  (private memory is what a forked worker has copied from its parent).

``--cache cold`` empties the file-index cache (``PCONV_CACHE_DIR``) first: a first start;
``warm`` keeps it: a second start. The OS's directory cache is warm either way (dropping it
needs root). Results go to ``results/startup-<label>.json``.

    python experiments/benchmarks/bench_startup.py TREE --label today \\
        --runs 1x2:300 1x4:300 2x2:5 [--source imagefolder] [--cache cold warm]
    python experiments/benchmarks/bench_startup.py /tmp/places --source folder \\
        --val-root /tmp/imagenet/val --label folder --runs 1x2:50 --cache cold warm

A run is ``RANKSxWORKERS:STEPS``; two ranks use DDP with gloo on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from harness import HERE, print_table, write_result

REPO = HERE.parents[1]
SIZE = 64
BATCH = 4


def overlay(
    tmp: Path, source: str, root: str, val_root: str, ranks: int, workers: int, steps: int
) -> Path:
    config = {
        "trainer": {
            "max_steps": steps,
            "limit_val_batches": 0,
            "default_root_dir": str(tmp),
            "logger": False,
            "callbacks": [{"class_path": "startup_probe.StartupProbe"}],
            "devices": ranks,
            **({"strategy": "ddp"} if ranks > 1 else {}),
        },
        "model": {"net": {"init_args": {"levels": 4, "width_mult": 0.125}}},
        "data": {
            "source": source,
            "root": root,
            # Flat sources have no splits: validation reads its own folder (pconv refuses to
            # score the training images).
            **({"val_root": val_root} if source != "imagefolder" else {}),
            "train_split": "train",
            "val_split": "val",
            "image_size": SIZE,
            "batch_size": BATCH,
            "num_workers": workers,
            "train_samples_per_epoch": None,
        },
        "prediction_writer": {"output_dir": str(tmp / "predictions")},
    }
    path = tmp / "startup.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(
    source: str, root: str, val_root: str, ranks: int, workers: int, steps: int, cache: str
) -> dict:
    with tempfile.TemporaryDirectory(prefix="pconv-startup-") as folder:
        tmp = Path(folder)
        probes = tmp / "probes"
        probes.mkdir()
        config = overlay(tmp, source, root, val_root, ranks, workers, steps)
        env = {
            **os.environ,
            "PCONV_PROBE_DIR": str(probes),
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", str(REPO))]),
            "WANDB_MODE": "disabled",
        }
        if cache == "cold" and "PCONV_CACHE_DIR" in env:
            shutil.rmtree(env["PCONV_CACHE_DIR"], ignore_errors=True)
        command = [str(Path(sys.executable).with_name("pconv")), "fit", "--config",
                   str(REPO / "configs" / "demo.yaml"), "--config", str(config)]  # fmt: skip
        start = time.time()
        done = subprocess.run(command, env=env, cwd=tmp, capture_output=True, text=True)
        wall = time.time() - start
        if done.returncode != 0:
            return {"failed": (done.stderr or done.stdout).strip().splitlines()[-5:]}
        reports = [json.loads(p.read_text()) for p in sorted(probes.glob("rank-*.json"))]
    rank_pids = {report["pid"] for report in reports}
    result = {
        "ranks": ranks,
        "workers": workers,
        "steps": steps,
        "cache": cache,
        "first_step_s": reports[0]["first_step"] - start,
        "total_s": wall,
        "ranks_memory": [report["self"] for report in reports],
        "workers_memory": [
            figures
            for report in reports
            for pid, figures in report["children"].items()
            if int(pid) not in rank_pids
        ],
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path, help="imagenet_tree.py's ROOT")
    parser.add_argument("--label", required=True, help="results/startup-LABEL.json")
    parser.add_argument(
        "--source", default="imagefolder", choices=("imagefolder", "folder", "filelist")
    )
    parser.add_argument("--runs", nargs="+", default=["1x2:300", "1x4:300", "2x2:5"])
    parser.add_argument(
        "--val-root", type=Path, help="validation of folder/filelist (default: TREE/val[.txt])"
    )
    parser.add_argument("--cache", nargs="+", default=["cold"], choices=("cold", "warm"))
    args = parser.parse_args()
    # imagenet_tree.py's validation images, for the flat sources.
    val_root = str(args.val_root or args.tree / ("val.txt" if args.source == "filelist" else "val"))
    root = {
        "imagefolder": args.tree,
        "folder": args.tree / "places",
        "filelist": args.tree / "train.txt",
    }[args.source]
    results = []
    for spec in args.runs:
        shape, steps = spec.split(":")
        ranks, workers = (int(v) for v in shape.split("x"))
        for cache in args.cache:
            load = os.getloadavg()[0]
            result = run(args.source, str(root), val_root, ranks, workers, int(steps), cache)
            result["load_average_1min"] = [load, os.getloadavg()[0]]
            print(json.dumps(result), flush=True)
            results.append(result)
    rows = []
    for r in results:
        if "failed" in r:
            rows.append([f"failed: {r['failed'][-1]}"])
            continue
        workers = r["workers_memory"]
        rows.append([
            f"{r['ranks']} rank(s) x {r['workers']} workers, {r['steps']} steps, {r['cache']}",
            r["first_step_s"],
            max(m["peak_rss_mib"] for m in r["ranks_memory"]),
            max((m["peak_rss_mib"] for m in workers), default=None),
            max((m["private_mib"] for m in workers), default=None),
            f"{r['load_average_1min'][0]:.1f}-{r['load_average_1min'][1]:.1f}",
        ])  # fmt: skip
    print_table(
        f"pconv fit on {root} ({args.source})",
        ["run", "s to first step", "rank peak RSS MiB", "worker peak RSS MiB",
         "worker private MiB", "load"],
        rows,
    )  # fmt: skip
    path = write_result(
        f"startup-{args.label}", {"tree": str(root), "source": args.source, "runs": results}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
