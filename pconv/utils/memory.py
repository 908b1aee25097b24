"""Sizes bounded before allocating: refuse work the machine cannot hold, in one line.

Estimates, not measurements: they only need to tell an impossible ``--size`` (a typo such as
100000) from a large but possible one, before any memory is taken.
"""

from __future__ import annotations

import os

#: Rough peak memory of the network on one image, bytes per input pixel per unit of its
#: width: activations and convolution workspace (float32).
NET_BYTES_PER_PIXEL = 4 * 600


def physical_memory() -> int:
    """Bytes of RAM of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def gib(size: float) -> str:
    return f"{size / 2**30:,.1f} GiB"


def check_fits(needed: float, available: float, what: str, advice: str) -> None:
    """ValueError (one line: ``what``, the estimate, ``advice``) when ``needed`` bytes exceed
    ``available``."""
    if needed > available:
        raise ValueError(
            f"{what} needs about {gib(needed)} (estimated), more than the {gib(available)} "
            f"available; {advice}"
        )
