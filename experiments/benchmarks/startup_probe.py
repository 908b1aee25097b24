"""A Lightning callback for ``bench_startup.py``: when the first training step starts and how
much memory each process holds after the last one.

Each rank writes ``$PCONV_PROBE_DIR/rank-<r>.json``: its pid, the wall-clock time of its
first ``on_train_batch_start``, and, at the end of step ``trainer.max_steps``, the peak and
private resident memory of itself and of each of its child processes (its DataLoader workers;
on rank 0 under DDP also the other ranks, which the benchmark tells apart by their own files).
Private memory (``Private_Clean + Private_Dirty`` of ``/proc/PID/smaps_rollup``) is what a
forked worker has copied from its parent: copy-on-read growth shows there, while its peak RSS
also counts the pages it still shares.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

KIB_PER_MIB = 1024


def memory(pid: int) -> dict[str, float]:
    """Peak RSS (``VmHWM``) and private memory of process ``pid``, MiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            figures["peak_rss_mib"] = int(line.split()[1]) / KIB_PER_MIB
    private = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            private += int(line.split()[1])
    figures["private_mib"] = private / KIB_PER_MIB
    return figures


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class StartupProbe(Callback):
    def __init__(self) -> None:
        self.first_step: float | None = None

    def _write(self, trainer, payload: dict) -> None:
        folder = Path(os.environ["PCONV_PROBE_DIR"])
        path = folder / f"rank-{trainer.global_rank}.json"
        old = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps({**old, **payload}))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.first_step is None:
            self.first_step = time.time()
            self._write(trainer, {"pid": os.getpid(), "first_step": self.first_step})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= trainer.max_steps:
            mine = os.getpid()
            kids = {}
            for pid in children(mine):
                try:
                    kids[pid] = memory(pid)
                except OSError:
                    continue
            self._write(
                trainer, {"self": memory(mine), "children": kids, "steps": trainer.global_step}
            )
