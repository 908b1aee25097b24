"""Inference latency of the paper model: eager, torch.compile and ONNX Runtime.

At 512×512 (8 levels) by default, for one image and for a batch, the forward pass of the U-Net
in eval mode, against the naive baseline in eager mode. All backends run in one worker process
whose timed calls take turns, so load from other processes hits them alike; a backend that
fails is reported as skipped, with the reason. torch.compile's first call per shape compiles
(about a minute on 2 CPU cores; Inductor caches it for later runs). On CUDA the PyTorch
backends run in bf16 autocast with channels_last; ONNX Runtime runs the float32 graph exported
by ``pconv.weights.export.export_onnx`` on the best execution provider it has.

    python experiments/benchmarks/bench_inference.py [--batch 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from harness import (
    PAPER_LEVELS,
    print_table,
    run_worker,
    synchronize,
    time_calls,
    write_result,
)
from naive_pconv import NaivePConvUNet

from pconv.nn import PConvUNet

#: Fraction of hole pixels in the random benchmark masks (the cost does not depend on it).
HOLE_FRACTION = 0.5
IMPLEMENTATIONS = {"ours": PConvUNet, "naive": NaivePConvUNet}
#: Rows of the table, in order; the first is the baseline.
CONFIGS = ("naive eager", "ours eager", "ours compiled", "ours onnxruntime")
#: ONNX Runtime providers in order of preference.
ORT_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
SEED = 0


def inputs(batch: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(SEED)
    image = torch.rand(batch, 3, size, size, generator=generator)
    mask = (torch.rand(batch, 1, size, size, generator=generator) >= HOLE_FRACTION).float()
    return image.to(device), mask.to(device)


def network(cls: type, args: argparse.Namespace, device: torch.device) -> torch.nn.Module:
    """``cls`` at ``args.size`` with ``args.levels`` (default: the paper's) and
    ``args.width_mult``, in eval mode on ``device``."""
    torch.manual_seed(SEED)
    net = cls(levels=args.levels or PAPER_LEVELS[args.size], width_mult=args.width_mult)
    net = net.eval().to(device)
    return net.to(memory_format=torch.channels_last) if device.type == "cuda" else net


def torch_forward(net, batch: int, args: argparse.Namespace):
    """A call running one no-grad forward pass of ``batch`` images through ``net``."""
    device = torch.device(args.device)
    image, mask = inputs(batch, args.size, device)
    if device.type == "cuda":
        image = image.contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"),
        ):
            net(image, mask)

    return forward


def eager(args: argparse.Namespace, impl: str) -> dict:
    net = network(IMPLEMENTATIONS[impl], args, torch.device(args.device))
    return {str(b): torch_forward(net, b, args) for b in (1, args.batch)}


def compiled(args: argparse.Namespace, info: dict) -> dict:
    """Ours under torch.compile; the first call of each batch size pays the compilation."""
    device = torch.device(args.device)
    net = network(PConvUNet, args, device)
    net = torch.compile(net, dynamic=False, backend=args.compile_backend)
    calls, info["compile_s"] = {}, {}
    for batch in (1, args.batch):
        calls[str(batch)] = torch_forward(net, batch, args)
        start = time.perf_counter()
        calls[str(batch)]()
        synchronize(device)
        info["compile_s"][str(batch)] = time.perf_counter() - start
    return calls


def onnxruntime_backend(args: argparse.Namespace, info: dict) -> dict:
    """Ours exported with ``pconv.weights.export.export_onnx`` and run by ONNX Runtime."""
    import onnxruntime

    from pconv.weights.export import export_onnx

    available = onnxruntime.get_available_providers()
    providers = [p for p in args.ort_providers if p in available]
    if not providers:
        raise RuntimeError(f"{list(args.ort_providers)} not in ONNX Runtime's {available}")
    net = network(PConvUNet, args, torch.device("cpu"))
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(net, Path(folder) / "net.onnx", args.size, args.size)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads  # its default is every core, not torch's
        session = onnxruntime.InferenceSession(str(path), options, providers=providers)
    info["provider"] = session.get_providers()[0]
    if info["provider"] != providers[0]:  # ONNX Runtime falls back silently, with a warning
        raise RuntimeError(f"ONNX Runtime fell back from {providers[0]} to {info['provider']}")
    names = [i.name for i in session.get_inputs()]
    calls = {}
    for batch in (1, args.batch):
        arrays = (t.numpy() for t in inputs(batch, args.size, torch.device("cpu")))
        feed = dict(zip(names, arrays, strict=True))
        calls[str(batch)] = lambda feed=feed: session.run(None, feed)
    return calls


def worker(args: argparse.Namespace) -> dict:
    """Median ms of every (implementation, backend, batch), all in this process.

    The timed calls go round-robin over every configuration, so load from other processes
    hits them alike. A backend that fails to build is reported as skipped with the reason.
    """
    builders = {
        ("naive", "eager"): lambda info: eager(args, "naive"),
        ("ours", "eager"): lambda info: eager(args, "ours"),
        ("ours", "compiled"): lambda info: compiled(args, info),
        ("ours", "onnxruntime"): lambda info: onnxruntime_backend(args, info),
    }
    results, calls = {}, {}
    for key, build in builders.items():
        info = results.setdefault(f"{key[0]} {key[1]}", {})
        try:
            for batch, call in build(info).items():
                calls[(*key, batch)] = call
        except Exception as error:  # any failure of an optional backend is a reason to report
            info["skipped"] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
    device = torch.device(args.device)
    for _ in range(args.warmup):
        for call in calls.values():
            call()
    times = {key: [] for key in calls}
    for _ in range(args.repeats):
        for key, call in calls.items():
            times[key] += time_calls(call, 0, 1, device)[1]
    for (impl, backend, batch), values in times.items():
        results[f"{impl} {backend}"].setdefault("ms", {})[batch] = statistics.median(values)
    return results


def run(args: argparse.Namespace) -> dict:
    flags = [
        f"--size={args.size}",
        f"--batch={args.batch}",
        f"--warmup={args.warmup}",
        f"--repeats={args.repeats}",
        f"--device={args.device}",
        f"--threads={args.threads}",
    ]
    results = run_worker(Path(__file__), flags, args.timeout)
    if "skipped" in results:
        print(f"inference: {results['skipped']}")
        results = {}
    baseline = results.get("naive eager", {}).get("ms")
    rows, table = [], []
    for name in CONFIGS:
        row = {"config": name, **results.get(name, {})}
        ms = row.get("ms")
        if ms:
            row["ms_batch_1"] = ms["1"]
            row["ms_per_image_batch"] = ms[str(args.batch)] / args.batch
            row["images_per_s_batch"] = 1e3 / row["ms_per_image_batch"]
            if baseline:
                row["speedup_batch_1"] = baseline["1"] / ms["1"]
                row["speedup_batch"] = baseline[str(args.batch)] / ms[str(args.batch)]
        rows.append(row)
        table.append(
            [
                name,
                row.get("ms_batch_1"),
                row.get("speedup_batch_1"),
                row.get("ms_per_image_batch"),
                row.get("images_per_s_batch"),
                row.get("speedup_batch"),
            ]
        )
        if "skipped" in row:
            print(f"{name}: skipped, {row['skipped']}")
        if "compile_s" in row:
            seconds = ", ".join(f"batch {b}: {s:.0f} s" for b, s in row["compile_s"].items())
            print(f"{name}: first call (compilation) {seconds}")
    print_table(
        f"Inference at {args.size}×{args.size}, {args.device}, {args.threads} threads",
        [
            "backend",
            "ms, 1 image",
            "× naive",
            f"ms/image, batch {args.batch}",
            "images/s",
            "× naive",
        ],
        table,
    )
    payload = {
        "size": args.size,
        "batch": args.batch,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "device": args.device,
        "threads": args.threads,
        "results": rows,
    }
    print(f"wrote {write_result('inference', payload)}")
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, choices=list(PAPER_LEVELS))
    parser.add_argument("--batch", type=int, default=2, help="the batch besides one image")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls; the median counts")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole run")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    # Fixed here; experiments/gpu/check.py sets them for its tiny dry-run networks.
    parser.set_defaults(
        levels=None, width_mult=1.0, compile_backend="inductor", ort_providers=ORT_PROVIDERS
    )
    args = parser.parse_args(argv)
    if args.batch < 2 or args.warmup < 0 or args.repeats < 1:
        parser.exit(2, "bench_inference: --batch must be at least 2, --repeats at least 1\n")
    if args.worker:
        torch.set_num_threads(args.threads)
        print(json.dumps(worker(args)))
    else:
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
