"""How many threads torch uses on the CPU: the free cores, less the data-loader workers.

torch starts one thread per core. On a machine that other jobs also use (a laptop, a shared
login node), or beside data-loader processes, those threads wait for each other at every
operation: on two busy cores, two threads made each training step of the demo cost about
eight times the CPU of one. So the commands that compute on the CPU choose the count:

    threads = usable cores - cores busy with other jobs - loader workers, at least 1

where the usable cores are those this process may run on and "busy" is the one-minute load
average, rounded. A user's ``OMP_NUM_THREADS`` is respected as it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: The variable a user sets to choose the count themselves.
THREADS_VARIABLE = "OMP_NUM_THREADS"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def busy_cores() -> int:
    """Cores busy with other work: the one-minute load average, rounded (0 where unknown)."""
    try:
        return round(os.getloadavg()[0])
    except (AttributeError, OSError):  # Windows
        return 0


def choose_threads(
    workers: int,
    cores: int | None = None,
    busy: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int | None:
    """Threads for torch beside ``workers`` loader processes, or None when the user chose
    (``OMP_NUM_THREADS`` set). ``cores`` and ``busy`` default to :func:`usable_cores` and
    :func:`busy_cores`."""
    environ = os.environ if environ is None else environ
    if environ.get(THREADS_VARIABLE, "").strip():
        return None
    cores = usable_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    return max(cores - busy - workers, 1)
