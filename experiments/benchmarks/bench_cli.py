"""How fast ``pconv --help`` and ``pconv <tool> --help`` answer (issue 15: under 2 s).

Each command runs in a fresh interpreter (as a user runs it), ``--repeats`` times; the median
wall time counts. For scale, the same is measured for ``import torch`` and
``import lightning``, which a lazy CLI avoids.

    python experiments/benchmarks/bench_cli.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from harness import HERE, print_table, write_result

ROOT = HERE.parents[1]
COMMANDS = {
    "pconv --help": ["-m", "pconv", "--help"],
    **{
        f"pconv {tool} --help": ["-m", "pconv", tool, "--help"]
        for tool in (
            *("export", "push", "weights", "inpaint", "evaluate", "masks", "prepare"),
            *("params", "app"),
        )
    },
    "pconv fit --help": ["-m", "pconv", "fit", "--help"],
    "import torch": ["-c", "import torch"],
    "import lightning": ["-c", "import lightning"],
}


def wall_s(args: list[str], repeats: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {name: wall_s(argv, args.repeats) for name, argv in COMMANDS.items()}
    print_table("CLI start-up (median wall s)", ["command", "s"], list(results.items()))
    write_result("cli", {"repeats": args.repeats, "wall_s": results})


if __name__ == "__main__":
    main()
