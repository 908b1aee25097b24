"""The paper's hole-ratio buckets: the one shared definition.

A hole ratio is the fraction of hole pixels of a mask, in [0, 1]. The paper reports metrics
in six buckets of width 0.1, open on the left and closed on the right:
(0.01, 0.1], (0.1, 0.2], (0.2, 0.3], (0.3, 0.4], (0.4, 0.5], (0.5, 0.6].
"""

from __future__ import annotations

import torch

#: (low, high] bounds of each bucket, in order.
BUCKETS: tuple[tuple[float, float], ...] = (
    (0.01, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
    (0.5, 0.6),
)
NUM_BUCKETS = len(BUCKETS)
#: Returned by :func:`bucket_of` for ratios outside every bucket.
OUT_OF_RANGE = -1


def bucket_of(ratio: float) -> int:
    """Index of the bucket holding ``ratio`` (0..5), or ``OUT_OF_RANGE``."""
    for index, (low, high) in enumerate(BUCKETS):
        if low < ratio <= high:
            return index
    return OUT_OF_RANGE


def buckets_of(ratios: torch.Tensor) -> torch.Tensor:
    """Vectorised :func:`bucket_of`: long tensor of the same shape as ``ratios``."""
    lows = torch.tensor([low for low, _ in BUCKETS], dtype=ratios.dtype, device=ratios.device)
    highs = torch.tensor([high for _, high in BUCKETS], dtype=ratios.dtype, device=ratios.device)
    inside = (ratios.unsqueeze(-1) > lows) & (ratios.unsqueeze(-1) <= highs)
    index = inside.long().argmax(-1)
    return torch.where(inside.any(-1), index, torch.full_like(index, OUT_OF_RANGE))


def bucket_label(index: int) -> str:
    """Short label used in metric keys and reports, e.g. ``"0.1-0.2"``."""
    low, high = BUCKETS[index]
    return f"{low:g}-{high:g}"
