"""What every benchmark script shares: the machine description, timing, worker processes,
result files and tables.

Each ``bench_*.py`` script prints a table and writes ``results/<name>.json``; ``run_all.py``
runs them all and prints the summary.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: The two paper configurations: image side → U-Net levels.
PAPER_LEVELS = {256: 7, 512: 8}
#: Table cells below this magnitude are written in scientific notation.
SMALL = 0.01
#: ru_maxrss is in KiB on Linux.
KIB_PER_MIB = 1024

#: Wide enough for the tables when the output is a pipe or a file (rich assumes 80 there).
PIPE_WIDTH = 150
console = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU, cores, threads, GPU and library versions: where a figure came from."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], warmup: int, repeats: int, device: torch.device):
    """Median and all wall times in ms of ``repeats`` calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), times


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB


def current_rss_mib() -> float:
    """This process's resident memory now, MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_worker(script: Path, args: Sequence[str], timeout: float | None = None) -> dict:
    """Run ``script --worker ARGS`` in a fresh process and return the JSON its last line prints.

    A fresh process per configuration gives each its own peak memory and compile cache. On
    failure or timeout, returns ``{"skipped": reason}``.
    """
    command = [sys.executable, str(script), "--worker", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"did not finish within {timeout:.0f} s"}
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        return {"skipped": f"worker failed: {lines[-1]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_result(name: str, payload: dict) -> Path:
    """Write ``results/<name>.json`` with the machine description added; returns the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine_info(), **payload}, indent=2) + "\n")
    return path


def read_result(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def fmt(value) -> str:
    """A table cell: floats with about three significant digits, '—' for missing values."""
    if value is None:
        return "—"
    if isinstance(value, float) and value and abs(value) < SMALL:
        return f"{value:.1e}"
    if isinstance(value, float):
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
        return f"{value:,.{digits}f}"
    return str(value)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(fmt(cell) for cell in row))
    console.print(table)
