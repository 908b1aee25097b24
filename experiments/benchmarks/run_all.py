"""Run every benchmark and print one summary table against the baseline and the targets.

``make bench`` runs this. Each script runs in turn, prints its own table and writes
``results/<name>.json``; this script then writes ``results/summary.json`` with every figure,
its ratio against the naive baseline, the targets of issues 4 and 8, and the machine.

    python experiments/benchmarks/run_all.py [--batch 1] [--steps 3] [--skip data inference]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from harness import HERE, console, machine_info, print_table, read_result, write_result

SCRIPTS = ("train", "flops", "inference", "data")
#: Targets: training speed-up over the baseline at 512, per device kind.
TRAIN_SPEEDUP_TARGET = {"cpu": 1.5, "cuda": 2.0}
TARGET_SIZE = "512"
MASKS_PER_S_TARGET = 2000.0
IMAGES_PER_S_TARGET = 100.0
GIGA = 1e9


def status(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return ""
    return "met" if value >= target else f"missed by {(1 - value / target) * 100:.0f}%"


def row(figure, ours=None, naive=None, ratio=None, target=None, checked=None) -> dict:
    """One summary line; ``checked`` is the value compared with ``target`` (the ratio if None)."""
    checked = ratio if checked is None else checked
    return {
        "figure": figure,
        "ours": ours,
        "naive": naive,
        "ratio": ratio,
        "target": target,
        "status": status(checked, target),
    }


def train_rows(train: dict) -> list[dict]:
    rows = []
    target = TRAIN_SPEEDUP_TARGET.get(train["device"])
    for run in train["results"]:
        name = f"train {run['size']} {run['mode']}"
        ours, naive = run["ours"], run["naive"]
        wanted = target if str(run["size"]) == TARGET_SIZE else None
        rows += [
            row(
                f"{name}: ms/step",
                ours.get("ms_per_step"),
                naive.get("ms_per_step"),
                run["speedup"],
                wanted,
            ),
            row(f"{name}: images/s", ours.get("images_per_s"), naive.get("images_per_s")),
            row(
                f"{name}: peak memory MiB",
                ours.get("memory_mib"),
                naive.get("memory_mib"),
                run["memory_ratio"],
            ),
        ]
    check = train["faithfulness"]
    rows.append(
        row(f"baseline check {check['size']}: max |Δ output|", check["output_max_abs_diff"])
    )
    return rows


def flops_rows(flops: dict) -> list[dict]:
    rows = []
    for size, ours in flops["flops_per_image"]["ours"].items():
        naive = flops["flops_per_image"]["naive"][size]
        rows.append(
            row(
                f"GFLOPs per training image {size}",
                ours["total"] / GIGA,
                naive["total"] / GIGA,
                naive["total"] / ours["total"],
            )
        )
    for speed in flops["achieved"]:
        if speed["impl"] == "ours":
            rows.append(
                row(f"achieved GFLOP/s {speed['size']} {speed['mode']}", speed["gflops_per_s"])
            )
            if speed["fraction_of_peak"] is not None:
                rows.append(row("  fraction of peak", speed["fraction_of_peak"]))
    return rows


def inference_rows(inference: dict) -> list[dict]:
    rows = []
    naive = next((r for r in inference["results"] if r["config"] == "naive eager"), {})
    for result in inference["results"]:
        if result["config"] == "naive eager":
            continue
        name = f"inference {inference['size']} {result['config'].removeprefix('ours ')}"
        if "skipped" in result:
            rows.append(row(f"{name}: skipped ({result['skipped']})"))
            continue
        rows += [
            row(
                f"{name}: ms, 1 image",
                result.get("ms_batch_1"),
                naive.get("ms_batch_1"),
                result.get("speedup_batch_1"),
            ),
            row(
                f"{name}: ms/image, batch {inference['batch']}",
                result.get("ms_per_image_batch"),
                naive.get("ms_per_image_batch"),
                result.get("speedup_batch"),
            ),
        ]
    return rows


def data_rows(data: dict) -> list[dict]:
    rows = []
    for preset, result in data["masks"].items():
        for size, speed in result["masks_per_s"].items():
            target = MASKS_PER_S_TARGET if size == TARGET_SIZE else None
            rows.append(
                row(f"masks/s per core, {preset} {size}", speed, target=target, checked=speed)
            )
    speed = data["pipeline_512"]["decode_crop_mask_per_s"]
    rows.append(
        row(
            "images/s per core, JPEG decode+crop+mask 512",
            speed,
            target=IMAGES_PER_S_TARGET,
            checked=speed,
        )
    )
    return rows


ROWS = {"train": train_rows, "flops": flops_rows, "inference": inference_rows, "data": data_rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1, help="training batch")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    parser.add_argument("--skip", nargs="*", default=[], choices=SCRIPTS, help="scripts to skip")
    args = parser.parse_args(argv)
    threads = [f"--threads={args.threads}"] if args.threads else []
    extra = {
        "train": [
            f"--batch={args.batch}",
            f"--warmup={args.warmup}",
            f"--steps={args.steps}",
            *threads,
        ],
        "inference": threads,
    }
    start = time.perf_counter()
    seconds = {}
    for name in SCRIPTS:
        if name in args.skip:
            continue
        console.rule(f"bench_{name}")
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(HERE / f"bench_{name}.py"), *extra.get(name, [])]
        )
        seconds[name] = time.perf_counter() - began
        if done.returncode != 0:
            console.print(f"bench_{name} failed with exit code {done.returncode}")

    rows = []
    for name in SCRIPTS:
        result = read_result(name)
        if result is not None:
            rows += ROWS[name](result)
            if name not in seconds:
                date = result.get("machine", {}).get("date", "an earlier run")
                print(f"bench_{name} skipped: its figures are from {date}")
    console.rule("summary")
    machine = machine_info()
    print_table(
        f"pconv benchmarks on {machine['cpu']} ({machine['cores']} cores, "
        f"{args.threads or machine['torch_threads']} torch threads)"
        + (f", {machine['gpu']}" if machine["gpu"] else ""),
        ["figure", "ours", "naive", "naive/ours ×", "target", "status"],
        [[r["figure"], r["ours"], r["naive"], r["ratio"], r["target"], r["status"]] for r in rows],
    )
    total = time.perf_counter() - start
    print(f"total {total:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in seconds.items())})")
    payload = {
        "threads": args.threads or machine["torch_threads"],
        "seconds": seconds,
        "rows": rows,
    }
    path = write_result("summary", payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
