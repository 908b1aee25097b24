"""The GPU check: CUDA correctness, training and inference speed, MFU and a profile, in one run.

``make gpu-check`` runs this on one CUDA GPU in about 7 minutes and writes
``experiments/benchmarks/results/gpu-<device name>.json`` after every section, so a run cut
short still leaves what it measured. Sections, each guarded (one that fails is reported and
the others still run):

1. ``correctness``: the tests marked ``cuda`` (``tests/test_cuda.py``) under pytest.
2. ``training``: the paper model at 512, batch 6, one fixed batch: pconv in fp32, in bf16-mixed
   + channels_last, and in bf16-mixed + channels_last + ``torch.compile``, against the naive
   port of ``experiments/benchmarks/naive_pconv.py`` in fp32 and in bf16-mixed + channels_last;
   steady-state ms/step, images/s and peak memory, and the ratios against the naive port.
3. ``mfu``: FLOPs per training image from ``torch.utils.flop_counter`` × images/s over the GPU's
   dense bf16 peak (``bench_flops.PEAK_BF16_TFLOPS``; "unknown peak" for other GPUs).
4. ``inference``: the network at 512 in eval mode, batch 1 and batch 16: eager, compiled and
   ONNX Runtime with the CUDA provider (when ``onnxruntime-gpu`` is installed), against the
   naive port in eager mode (``bench_inference.worker``).
5. ``profile``: one bf16 + channels_last step under ``torch.profiler`` (top kernels by device
   time) and the share of a step in the data path (next batch from the real data module's
   loader, pinned-memory copy), the U-Net, the VGG-16 loss and the optimizer.

``--dry-run`` runs every section on the CPU with a tiny network and tiny images (the compile
paths with the ``eager`` backend), to check the script before the GPU time is spent;
``tests/test_gpu_check.py`` runs it in CI.

    python experiments/gpu/check.py [--dry-run] [--out PATH] [--sections training mfu]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "experiments" / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the benchmark scripts import each other by file name

import bench_flops  # noqa: E402
import bench_inference  # noqa: E402
import bench_train  # noqa: E402
from harness import RESULTS, machine_info, print_table, synchronize, time_calls  # noqa: E402

from pconv.data.datamodule import InpaintingDataModule  # noqa: E402
from pconv.utils.files import atomic_write  # noqa: E402

SECTIONS = ("correctness", "training", "mfu", "inference", "profile")
CUDA_TESTS = ROOT / "tests" / "test_cuda.py"
TERA = 1e12
#: Targets of the issue: training speed-up over the naive port's fp32 images/s, and MFU.
SPEEDUP_TARGET = 2.0
MFU_TARGET = 0.40
#: Kernels listed in the profile summary.
TOP_KERNELS = 10
KERNEL_NAME_CHARS = 90
#: Lines of a traceback kept in the JSON of a section that failed.
TRACEBACK_LINES = 8


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one run: the real one on a GPU or the CPU rehearsal."""

    size: int
    levels: int
    width_mult: float
    batch: int
    warmup: int  # untimed training steps, the first one compiling where asked
    steps: int  # timed training steps; the median counts
    inference_batch: int  # besides batch 1
    inference_warmup: int
    inference_repeats: int
    compile_backend: str
    data_workers: int
    profile_steps: int  # steps whose phases are timed; the median counts
    test_timeout_s: int


REAL = Plan(
    size=512,
    levels=8,
    width_mult=1.0,
    batch=6,
    warmup=3,
    steps=10,
    inference_batch=16,
    inference_warmup=2,
    inference_repeats=10,
    compile_backend="inductor",
    data_workers=4,
    profile_steps=5,
    test_timeout_s=300,
)
#: Every path of REAL, on the CPU in seconds: Inductor's C++ compilation would take minutes
#: there, so the compile paths trace with Dynamo and run the graphs eagerly.
DRY = Plan(
    size=16,
    levels=3,
    width_mult=0.125,
    batch=2,
    warmup=1,
    steps=1,
    inference_batch=2,
    inference_warmup=0,
    inference_repeats=1,
    compile_backend="eager",
    data_workers=0,
    profile_steps=1,
    test_timeout_s=120,
)


@dataclass(frozen=True)
class TrainConfig:
    impl: str  # a key of bench_train.IMPLEMENTATIONS
    bf16: bool
    channels_last: bool
    compile: bool


TRAIN_CONFIGS = {
    "pconv fp32": TrainConfig("ours", False, False, False),
    "pconv bf16 channels_last": TrainConfig("ours", True, True, False),
    "pconv bf16 channels_last compiled": TrainConfig("ours", True, True, True),
    "naive fp32": TrainConfig("naive", False, False, False),
    "naive bf16 channels_last": TrainConfig("naive", True, True, False),
}
BASELINES = {"fp32": "naive fp32", "bf16": "naive bf16 channels_last"}
ORT_ROW = "ours onnxruntime"


# ----------------------------------------------------------------------------- helpers
def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def default_out(device: torch.device, dry_run: bool) -> Path:
    """``results/gpu-<device name>.json``, the name with anything but [A-Za-z0-9._-] as '-';
    ``results/gpu-dry-run.json`` (git-ignored) for a dry run."""
    slug = "dry-run" if dry_run else re.sub(r"[^A-Za-z0-9._-]+", "-", device_name(device))
    return RESULTS / f"gpu-{slug.strip('-')}.json"


def error_record(error: BaseException) -> dict:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    text = "".join(lines).strip().splitlines()
    first_line = (str(error).strip().splitlines() or [""])[0]
    return {
        "status": "error",
        "error": f"{type(error).__name__}: {first_line}",
        "traceback": text[-TRACEBACK_LINES:],
    }


def release_memory(device: torch.device) -> None:
    """Free what the last configuration left, so the next one's peak memory is its own."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


# ----------------------------------------------------------------------------- 1. correctness
def parse_junit(path: Path) -> list[dict]:
    """One ``{name, outcome, seconds, message}`` per test case of a pytest JUnit XML file;
    outcome is passed, failed, error or skipped."""
    tests = []
    for case in ElementTree.parse(path).iter("testcase"):
        outcome, message = "passed", None
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag == "failure" else child.tag
                message = (child.get("message") or "").strip().splitlines()[:1] or [""]
                message = message[0]
                break
        tests.append(
            {
                "name": case.get("name"),
                "outcome": outcome,
                "seconds": float(case.get("time") or 0.0),
                "message": message,
            }
        )
    return tests


def correctness(plan: Plan, device: torch.device) -> dict:
    """Run the ``cuda`` tests under pytest in a fresh process (they skip without a GPU)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "cuda.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "cuda",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            str(CUDA_TESTS),
        ]
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = dict(os.environ, PYTHONPATH=path, WANDB_MODE="disabled")
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=plan.test_timeout_s,
        )
        if not report.is_file():
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            raise RuntimeError(f"pytest wrote no report (exit {done.returncode}): {tail}")
        tests = parse_junit(report)
    counts = {o: sum(t["outcome"] == o for t in tests) for o in ("passed", "failed", "error")}
    counts["skipped"] = sum(t["outcome"] == "skipped" for t in tests)
    bad = counts["failed"] + counts["error"]
    print_table(
        f"CUDA tests ({counts['passed']} passed, {bad} failed, {counts['skipped']} skipped)",
        ["test", "outcome", "s", "message"],
        [[t["name"], t["outcome"], t["seconds"], t["message"] or ""] for t in tests],
    )
    status = "failed" if bad or done.returncode not in (0, 5) else "ok"  # 5: none collected
    return {"status": status, "pytest_exit": done.returncode, **counts, "tests": tests}


# ----------------------------------------------------------------------------- 2. training
def train_config(config: TrainConfig, plan: Plan, device: torch.device) -> dict:
    """Steady-state ms/step, images/s and peak memory of one training configuration."""
    step = bench_train.make_step(
        config.impl,
        plan.size,
        plan.batch,
        device,
        bf16=config.bf16,
        channels_last=config.channels_last,
        compile=config.compile,
        compile_backend=plan.compile_backend,
        levels=plan.levels,
        width_mult=plan.width_mult,
    )
    first_ms = bench_train.timed_first_step(step, device)
    for _ in range(plan.warmup - 1):
        step()
    # The peak of the timed steps, not the first step's (compilation, allocator growth).
    release_memory(device)
    median_ms, times = time_calls(step, 0, plan.steps, device)
    result = {
        **asdict(config),
        "first_step_ms": first_ms,
        "ms_per_step": median_ms,
        "min_ms_per_step": min(times),
        "times_ms": times,
        "images_per_s": plan.batch * 1e3 / median_ms,
        "peak_memory_mib": peak_memory_mib(device),
    }
    del step
    return result


def training(plan: Plan, device: torch.device, record: Callable[[dict], None]) -> dict:
    """Every configuration of TRAIN_CONFIGS in turn, each guarded; ``record`` saves progress."""
    section: dict = {
        "size": plan.size,
        "levels": plan.levels,
        "batch": plan.batch,
        "warmup": plan.warmup,
        "steps": plan.steps,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "configs": {},
    }
    for name, config in TRAIN_CONFIGS.items():
        release_memory(device)
        try:
            section["configs"][name] = train_config(config, plan, device)
        except Exception as error:  # one configuration failing must not lose the others
            section["configs"][name] = error_record(error)
            print(f"training {name}: {section['configs'][name]['error']}")
        record(section)
    release_memory(device)
    configs = section["configs"]
    for result in configs.values():
        for precision, baseline in BASELINES.items():
            base = configs.get(baseline, {}).get("images_per_s")
            speed = result.get("images_per_s")
            result[f"x_naive_{precision}"] = speed / base if speed and base else None
    print_table(
        f"Training at {plan.size} ({plan.levels} levels), batch {plan.batch}, "
        + device_name(device),
        ["config", "ms/step", "images/s", "peak MiB", "× naive fp32", "× naive bf16", "first ms"],
        [
            [
                name,
                r.get("ms_per_step"),
                r.get("images_per_s"),
                r.get("peak_memory_mib"),
                r.get("x_naive_fp32"),
                r.get("x_naive_bf16"),
                r.get("first_step_ms", r.get("error")),
            ]
            for name, r in configs.items()
        ],
    )
    errors = [name for name, r in configs.items() if "error" in r]
    section["status"] = "failed" if errors else "ok"
    return section


# ----------------------------------------------------------------------------- 3. MFU
def mfu(plan: Plan, device: torch.device, training_section: dict | None) -> dict:
    """Achieved TFLOP/s and fraction of the dense bf16 peak of every training configuration."""
    flops = {
        impl: bench_flops.training_flops(impl, plan.size, plan.levels, plan.width_mult)
        for impl in bench_train.IMPLEMENTATIONS
    }
    name = device_name(device)
    peak = bench_flops.gpu_peak_tflops(name) if device.type == "cuda" else None
    rows = {}
    for config, result in (training_section or {}).get("configs", {}).items():
        speed = result.get("images_per_s")
        if speed is None:
            continue
        achieved = flops[result["impl"]]["total"] * speed / TERA
        rows[config] = {
            "achieved_tflops": achieved,
            "mfu": achieved / peak if peak else None,
        }
    peak_text = f"{peak:g} TFLOP/s dense bf16" if peak else "unknown peak"
    print_table(
        f"Model FLOP utilisation on {name} ({peak_text}); GFLOP/image: "
        + ", ".join(f"{impl} {f['total'] / 1e9:.1f}" for impl, f in flops.items()),
        ["config", "TFLOP/s", "MFU"],
        [[c, r["achieved_tflops"], r["mfu"] if peak else "unknown peak"] for c, r in rows.items()],
    )
    return {
        "status": "ok" if rows else "failed",
        "device": name,
        "peak_bf16_tflops": peak,
        "peak": peak_text,
        "flops_per_image": flops,
        "configs": rows,
        **({} if rows else {"error": "no training figures to divide"}),
    }


# ----------------------------------------------------------------------------- 4. inference
def inference(plan: Plan, device: torch.device) -> dict:
    """Eager, compiled and ONNX Runtime latency of the network at ``plan.size``."""
    provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    args = argparse.Namespace(
        size=plan.size,
        batch=plan.inference_batch,
        warmup=plan.inference_warmup,
        repeats=plan.inference_repeats,
        device=device.type,
        threads=torch.get_num_threads(),
        levels=plan.levels,
        width_mult=plan.width_mult,
        compile_backend=plan.compile_backend,
        ort_providers=(provider,),
    )
    results = bench_inference.worker(args)
    batch = str(plan.inference_batch)
    baseline = results.get("naive eager", {}).get("ms")
    for result in results.values():
        ms = result.get("ms")
        if ms:
            result["images_per_s_batch"] = plan.inference_batch * 1e3 / ms[batch]
            if baseline:
                result["x_naive_batch_1"] = baseline["1"] / ms["1"]
                result["x_naive_batch"] = baseline[batch] / ms[batch]
    release_memory(device)
    print_table(
        f"Inference at {plan.size}, {device_name(device)}",
        ["backend", "ms, batch 1", f"ms, batch {batch}", "images/s", "× naive (batch)", "note"],
        [
            [
                name,
                r.get("ms", {}).get("1"),
                r.get("ms", {}).get(batch),
                r.get("images_per_s_batch"),
                r.get("x_naive_batch"),
                r.get("skipped") or r.get("provider") or "",
            ]
            for name, r in results.items()
        ],
    )
    ort = results.get(ORT_ROW, {})
    if device.type == "cuda" and "not in ONNX Runtime" in ort.get("skipped", ""):
        ort["skipped"] += "; pip install onnxruntime-gpu for the CUDA provider"
    # ONNX Runtime's CUDA provider is optional (a separate wheel): its absence is no failure.
    skipped = [name for name, r in results.items() if "skipped" in r and name != ORT_ROW]
    return {
        "status": "failed" if skipped else "ok",
        "size": plan.size,
        "batch": plan.inference_batch,
        "note": "PyTorch backends in bf16 autocast + channels_last on CUDA; ONNX Runtime runs the "
        "float32 export and its timings include the host-device copies",
        "results": results,
    }


# ----------------------------------------------------------------------------- 5. profile
class PhaseClock:
    """Durations of consecutive phases of one step: CUDA events on the current stream on a
    GPU (what the device spends, the host's waits included as idle gaps), wall time on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list[tuple[str, object]] = []

    def start(self, phase: str) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append((phase, event))
        else:
            self.marks.append((phase, time.perf_counter()))

    def stop(self) -> dict[str, float]:
        """ms of every phase; one device sync."""
        self.start("end")
        if self.cuda:
            torch.cuda.synchronize()
            gaps = [a.elapsed_time(b) for (_, a), (_, b) in pairwise(self.marks)]
        else:
            gaps = [(b - a) * 1e3 for (_, a), (_, b) in pairwise(self.marks)]
        return {name: gap for (name, _), gap in zip(self.marks[:-1], gaps, strict=True)}


#: Phases of a profiled step and the part of the model each one belongs to.
PHASE_PARTS = {
    "data": "data",
    "unet_forward": "U-Net",
    "loss_forward": "VGG-16 loss",
    "loss_backward": "VGG-16 loss",
    "unet_backward": "U-Net",
    "optimizer": "optimizer",
}


def profiled_step(plan: Plan, device: torch.device):
    """``step(clock)``: one bf16 + channels_last training step of pconv whose batch comes from
    the real data module (pinned memory on CUDA), split into PHASE_PARTS's phases.

    The backward is split in two: the gradient of the loss with respect to the network's
    output (the VGG-16 and loss backward), then the output's backward through the U-Net.
    """
    net, criterion, optimizer, *_ = bench_train.build(
        "ours", plan.size, plan.batch, device, plan.levels, plan.width_mult
    )
    net = net.to(memory_format=torch.channels_last)
    criterion = criterion.to(memory_format=torch.channels_last)
    data = InpaintingDataModule(
        source="samples",
        image_size=plan.size,
        batch_size=plan.batch,
        num_workers=plan.data_workers,
        train_samples_per_epoch=plan.batch * (plan.warmup + plan.profile_steps + 2),
        pin_memory=True,  # the loader pins only where CUDA is available
    )
    data.setup("fit")
    batches = iter(data.train_dataloader())
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def step(clock: PhaseClock) -> None:
        with torch.profiler.record_function("data"):
            clock.start("data")
            batch = next(batches)
            image = batch["image"].to(device, non_blocking=True)
            image = image.contiguous(memory_format=torch.channels_last)
            mask = batch["mask"].to(device, non_blocking=True)
        with torch.profiler.record_function("unet_forward"), autocast:
            clock.start("unet_forward")
            output = net(image, mask)
        with torch.profiler.record_function("loss_forward"), autocast:
            clock.start("loss_forward")
            total = criterion(output, image, mask)["total"]
        with torch.profiler.record_function("loss_backward"):
            clock.start("loss_backward")
            (grad_output,) = torch.autograd.grad(total, output)
        with torch.profiler.record_function("unet_backward"):
            clock.start("unet_backward")
            output.backward(grad_output)
        with torch.profiler.record_function("optimizer"):
            clock.start("optimizer")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    return step


def top_kernels(profile, device: torch.device) -> list[dict]:
    """The TOP_KERNELS device kernels (CPU: operators) with the most self time."""
    cuda = device.type == "cuda"
    averages = [
        a
        for a in profile.key_averages()
        if (a.device_type == torch.autograd.DeviceType.CUDA if cuda else a.key not in PHASE_PARTS)
    ]
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    total = sum(getattr(a, key) for a in averages) or 1.0
    averages.sort(key=lambda a: getattr(a, key), reverse=True)
    return [
        {
            "name": a.key[:KERNEL_NAME_CHARS],
            "ms": getattr(a, key) / 1e3,
            "calls": a.count,
            "share": getattr(a, key) / total,
        }
        for a in averages[:TOP_KERNELS]
    ]


def profile(plan: Plan, device: torch.device) -> dict:
    """Phase shares over ``plan.profile_steps`` steps, then one step under torch.profiler."""
    step = profiled_step(plan, device)
    for _ in range(plan.warmup):
        step(PhaseClock(device))
    runs = []
    for _ in range(plan.profile_steps):
        clock = PhaseClock(device)
        step(clock)
        runs.append(clock.stop())
    phases = {name: statistics.median(run[name] for run in runs) for name in PHASE_PARTS}
    step_ms = sum(phases.values())
    parts: dict[str, float] = {}
    for name, part in PHASE_PARTS.items():
        parts[part] = parts.get(part, 0.0) + phases[name]
    shares = {part: ms / step_ms for part, ms in parts.items()}
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        step(PhaseClock(device))
        synchronize(device)
    kernels = top_kernels(prof, device)
    del step
    release_memory(device)
    print_table(
        f"Where a bf16 step goes ({step_ms:.1f} ms, median of {plan.profile_steps})",
        ["part", "ms", "share"],
        [[part, parts[part], shares[part]] for part in parts],
    )
    print_table(
        "Top kernels by device time" if device.type == "cuda" else "Top operators by CPU time",
        ["kernel", "ms", "calls", "share"],
        [[k["name"], k["ms"], k["calls"], k["share"]] for k in kernels],
    )
    return {
        "status": "ok",
        "step_ms": step_ms,
        "phases_ms": phases,
        "parts_ms": parts,
        "shares": shares,
        "top_kernels": kernels,
    }


# ----------------------------------------------------------------------------- summary
def targets(sections: dict) -> dict:
    """The issue's targets against what was measured (None where it was not)."""
    configs = sections.get("training", {}).get("configs", {})
    speedups = {
        name: configs.get(name, {}).get("x_naive_fp32")
        for name in ("pconv bf16 channels_last", "pconv bf16 channels_last compiled")
    }
    best_speedup = max((s for s in speedups.values() if s), default=None)
    mfus = [r["mfu"] for r in sections.get("mfu", {}).get("configs", {}).values() if r["mfu"]]
    tests = sections.get("correctness", {}).get("tests", [])
    fp16 = [t for t in tests if "[16-mixed]" in t["name"]]

    def met(value, target):
        return None if value is None else value >= target

    fp16_finite = None
    if fp16 and all(t["outcome"] != "skipped" for t in fp16):
        fp16_finite = all(t["outcome"] == "passed" for t in fp16)
    return {
        "bf16_speedup_over_naive_fp32": {
            "value": best_speedup,
            "target": SPEEDUP_TARGET,
            "met": met(best_speedup, SPEEDUP_TARGET),
        },
        "mfu": {
            "value": max(mfus, default=None),
            "target": MFU_TARGET,
            "met": met(max(mfus, default=None), MFU_TARGET),
        },
        "fp16_losses_finite": {"value": fp16_finite, "met": fp16_finite},
    }


def write(path: Path, payload: dict) -> None:
    atomic_write(path, (json.dumps(payload, indent=2) + "\n").encode())


def run(args: argparse.Namespace) -> dict:
    plan = DRY if args.dry_run else REAL
    device = torch.device("cpu" if args.dry_run else "cuda")
    if args.dry_run:
        # Two threads on a shared CPU stall at OpenMP barriers: one is several times faster.
        torch.set_num_threads(1)
    payload = {
        "machine": machine_info(),
        "dry_run": args.dry_run,
        "device": device_name(device),
        "plan": asdict(plan),
        "sections": {},
    }
    sections = payload["sections"]
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if (previous.get("device"), previous.get("dry_run")) == (payload["device"], args.dry_run):
        # A rerun of some sections keeps the others' figures (and mfu its training figures).
        kept = previous.get("sections", {})
        sections.update({n: kept[n] for n in SECTIONS if n in kept and n not in args.sections})

    def record(name: str, section: dict) -> None:
        sections[name] = section
        payload["targets"] = targets(sections)
        write(args.out, payload)

    jobs = {
        "correctness": lambda: correctness(plan, device),
        "training": lambda: training(plan, device, lambda s: record("training", s)),
        "mfu": lambda: mfu(plan, device, sections.get("training")),
        "inference": lambda: inference(plan, device),
        "profile": lambda: profile(plan, device),
    }
    for name in SECTIONS:
        if name not in args.sections:
            continue
        print(f"— {name}", flush=True)
        start = time.perf_counter()
        try:
            section = jobs[name]()
        except Exception as error:  # a failed section is reported; the others still run
            section = {**sections.get(name, {}), **error_record(error)}
            print(f"{name}: {section['error']}")
            release_memory(device)
        section["seconds"] = time.perf_counter() - start
        record(name, section)
    summary = targets(sections)
    print_table(
        f"GPU check on {payload['device']}"
        + (" (dry run: tiny sizes on CPU)" if args.dry_run else ""),
        ["section / target", "status", "seconds / value"],
        [[n, s["status"], s["seconds"]] for n, s in sections.items()]
        + [
            [
                f"target: {n}",
                {None: "not measured", True: "met", False: "missed"}[t["met"]],
                t["value"],
            ]
            for n, t in summary.items()
        ],
    )
    print(f"wrote {args.out}")
    return payload


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dry-run", action="store_true", help="every section on the CPU with tiny sizes"
    )
    parser.add_argument(
        "--out", type=Path, help="the JSON file (default: results/gpu-<device name>.json)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out (sections not rerun keep their figures)",
    )
    parser.add_argument(
        "--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="what to run"
    )
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        parser.exit(2, "gpu check: no CUDA device here; rehearse on the CPU with --dry-run\n")
    if args.out is None:
        args.out = default_out(torch.device("cpu" if args.dry_run else "cuda"), args.dry_run)
    if args.out.exists() and not args.overwrite:
        parser.exit(
            2, f"gpu check: {args.out} exists; pass --overwrite to replace it or --out elsewhere\n"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    run(parse(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
