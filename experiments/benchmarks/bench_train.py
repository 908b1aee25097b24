"""Training step: pconv against the naive port design, side by side in one run.

One step is forward + the full loss (VGG-16 included) + backward + Adam, on the paper model at
256 (7 levels) and 512 (8 levels). For each (size, mode) one worker process times both
implementations with their steps alternating, so load from other processes hits them alike;
on CPU each implementation then runs one more step alone in a fresh process, whose peak RSS
growth is its memory figure. CPU runs in float32; on CUDA both implementations run with bf16
autocast and channels_last, eagerly and under torch.compile, and peak memory is
``torch.cuda.max_memory_allocated``.

VGG weights are random (``vgg_weights=None``): the cost does not depend on their values.

    python experiments/benchmarks/bench_train.py [--sizes 256 512] [--batch 1] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from harness import (
    PAPER_LEVELS,
    current_rss_mib,
    peak_rss_mib,
    print_table,
    run_worker,
    synchronize,
    time_calls,
    write_result,
)
from naive_pconv import NaiveInpaintingLoss, NaivePConvUNet

from pconv.data.masks import make_mask_generator
from pconv.losses import InpaintingLoss
from pconv.nn import PConvUNet

IMPLEMENTATIONS = {"ours": PConvUNet, "naive": NaivePConvUNet}
LEARNING_RATE = 2e-4  # the paper's initial phase
MASK_PRESET = "paper"
SEED = 0


def build(
    impl: str,
    size: int,
    batch: int,
    device: torch.device,
    levels: int | None = None,
    width_mult: float = 1.0,
):
    """Network, loss, optimizer and one batch (image, mask) for ``impl`` at ``size``.

    ``levels`` defaults to the paper's for ``size``; a smaller ``levels``/``width_mult`` gives
    the tiny networks of ``experiments/gpu/check.py --dry-run``.
    """
    torch.manual_seed(SEED)
    levels = levels or PAPER_LEVELS[size]
    net = IMPLEMENTATIONS[impl](levels=levels, width_mult=width_mult).to(device)
    loss = InpaintingLoss(vgg_weights=None)
    criterion = loss if impl == "ours" else NaiveInpaintingLoss(loss.vgg, loss.weights)
    criterion.to(device)
    generator, rng = make_mask_generator(MASK_PRESET), np.random.default_rng(SEED)
    masks = np.stack([generator(rng, size, size) for _ in range(batch)])
    mask = torch.from_numpy(masks).float()[:, None].to(device)
    image = torch.rand(batch, 3, size, size, device=device)
    return net, criterion, torch.optim.Adam(net.parameters(), lr=LEARNING_RATE), image, mask


def faithfulness(size: int) -> dict:
    """Max |ours − naive| of the output and the loss for the same weights and batch."""
    ours, criterion, _, image, mask = build("ours", size, 1, torch.device("cpu"))
    naive, naive_criterion, *_ = build("naive", size, 1, torch.device("cpu"))
    naive.load_state_dict(ours.state_dict())
    with torch.no_grad():
        out, naive_out = ours(image, mask), naive(image, mask)
        total = criterion(out, image, mask)["total"]
        naive_total = naive_criterion(naive_out, image, mask)["total"]
    return {
        "size": size,
        "output_max_abs_diff": (out - naive_out).abs().max().item(),
        "loss_abs_diff": (total - naive_total).abs().item(),
        "loss": total.item(),
    }


def make_step(
    impl: str,
    size: int,
    batch: int,
    device: torch.device,
    *,
    bf16: bool,
    channels_last: bool,
    compile: bool,
    compile_backend: str = "inductor",
    levels: int | None = None,
    width_mult: float = 1.0,
):
    """A ``step()`` closure training ``impl`` at ``size`` on one fixed batch: bf16 autocast,
    channels_last memory format and ``torch.compile`` (with ``compile_backend``) as asked."""
    net, criterion, optimizer, image, mask = build(impl, size, batch, device, levels, width_mult)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        criterion = criterion.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    if compile:
        net = torch.compile(net, backend=compile_backend)
        criterion = torch.compile(criterion, backend=compile_backend)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            total = criterion(net(image, mask), image, mask)["total"]
        total.backward()
        optimizer.step()

    return step


def prepare(impl: str, args: argparse.Namespace):
    """A ``step()`` closure training ``impl`` at ``args.size`` in the chosen mode: bf16
    autocast and channels_last on CUDA, float32 on CPU."""
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    return make_step(
        impl,
        args.size,
        args.batch,
        device,
        bf16=cuda,
        channels_last=cuda,
        compile=args.compile,
    )


def timed_first_step(step, device: torch.device) -> float:
    """Run the first step (compilation, allocator growth, weight packing); its ms."""
    start = time.perf_counter()
    step()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3


def memory_worker(args: argparse.Namespace) -> dict:
    """Peak RSS growth over one CPU training step of ``args.impl``, alone in this process."""
    step = prepare(args.impl, args)
    before = current_rss_mib()
    step()
    return {"memory_mib": peak_rss_mib() - before}


def time_worker(args: argparse.Namespace) -> dict:
    """ms/step of ours and naive in one process, their steps alternating.

    Alternating makes load from other processes hit both implementations alike, so the ratio
    stays meaningful on a shared machine. On CUDA the peak memory of each step is read too.
    """
    device = torch.device(args.device)
    steps = {impl: prepare(impl, args) for impl in IMPLEMENTATIONS}
    results = {impl: {"first_step_ms": timed_first_step(steps[impl], device)} for impl in steps}
    for _ in range(args.warmup - 1):
        for step in steps.values():
            step()
    for impl in steps:
        results[impl]["times_ms"] = []
    for _ in range(args.steps):
        for impl, step in steps.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _, times = time_calls(step, 0, 1, device)
            results[impl]["times_ms"] += times
            if device.type == "cuda":
                results[impl]["memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    for result in results.values():
        result["ms_per_step"] = statistics.median(result["times_ms"])
        result["min_ms_per_step"] = min(result["times_ms"])
        result["images_per_s"] = args.batch * 1e3 / result["ms_per_step"]
    return results


def modes(device: torch.device) -> list[dict]:
    if device.type == "cuda":
        return [
            {"name": "bf16 channels_last", "compile": False},
            {"name": "bf16 channels_last compiled", "compile": True},
        ]
    return [{"name": "fp32", "compile": False}]


def ratio(numerator: dict, denominator: dict, key: str) -> float | None:
    """numerator[key] / denominator[key], or None where either is missing."""
    if numerator.get(key) is None or not denominator.get(key):
        return None
    return numerator[key] / denominator[key]


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    check = faithfulness(min(args.sizes))
    rows, table = [], []
    for size in args.sizes:
        for mode in modes(device):
            result = {"size": size, "levels": PAPER_LEVELS[size], "mode": mode["name"]}
            flags = [
                f"--size={size}",
                f"--batch={args.batch}",
                f"--warmup={args.warmup}",
                f"--steps={args.steps}",
                f"--device={args.device}",
                f"--threads={args.threads}",
                *(["--compile"] if mode["compile"] else []),
            ]
            timed = run_worker(Path(__file__), flags)
            for impl in IMPLEMENTATIONS:
                result[impl] = timed.get(impl, timed)
                if device.type == "cpu" and "skipped" not in timed:
                    memory = run_worker(Path(__file__), [*flags, f"--impl={impl}"])
                    result[impl]["memory_mib"] = memory.get("memory_mib")
            result["speedup"] = ratio(result["naive"], result["ours"], "ms_per_step")
            result["memory_ratio"] = ratio(result["naive"], result["ours"], "memory_mib")
            ours, naive = result["ours"], result["naive"]
            rows.append(result)
            table.append(
                [
                    f"{size} ({PAPER_LEVELS[size]} levels) {mode['name']}",
                    ours.get("ms_per_step"),
                    naive.get("ms_per_step"),
                    result["speedup"],
                    ours.get("images_per_s"),
                    naive.get("images_per_s"),
                    ours.get("memory_mib"),
                    naive.get("memory_mib"),
                ]
            )
            if "skipped" in timed:
                print(f"{size} {mode['name']}: skipped, {timed['skipped']}")
    memory_name = "peak GPU MiB" if device.type == "cuda" else "peak RSS Δ MiB"
    print_table(
        f"Training step, batch {args.batch}, {device.type}, {args.threads} threads",
        [
            "config",
            "ours ms",
            "naive ms",
            "speed-up ×",
            "ours img/s",
            "naive img/s",
            f"ours {memory_name}",
            f"naive {memory_name}",
        ],
        table,
    )
    print(
        f"baseline check at {check['size']}: max |ours − naive| output "
        f"{check['output_max_abs_diff']:.2e}, loss {check['loss_abs_diff']:.2e} "
        f"(loss {check['loss']:.4f})"
    )
    payload = {
        "batch": args.batch,
        "warmup": args.warmup,
        "steps": args.steps,
        "device": args.device,
        "threads": args.threads,
        "faithfulness": check,
        "results": rows,
    }
    print(f"wrote {write_result('train', payload)}")
    return payload


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(PAPER_LEVELS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (at least 1)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps; the median counts")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=list(IMPLEMENTATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    bad = [s for s in args.sizes if s not in PAPER_LEVELS]
    if bad or args.batch < 1 or args.warmup < 1 or args.steps < 1:
        parser.exit(
            2,
            f"bench_train: sizes must be among {list(PAPER_LEVELS)} (got {args.sizes}), and "
            "--batch, --warmup and --steps at least 1\n",
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        torch.set_num_threads(args.threads)
        print(json.dumps(memory_worker(args) if args.impl else time_worker(args)))
    else:
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
