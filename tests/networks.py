"""A network's output on a fixed random batch: two networks with the same function give the
same tensor."""

from __future__ import annotations

import torch


def net_outputs(
    net: torch.nn.Module, shape: tuple[int, int, int] = (1, 16, 16), seed: int = 1
) -> torch.Tensor:
    """``net(image, mask)`` without gradients for a (batch, height, width) ``shape`` batch of
    uniform images in [0, 1] and masks with about 70% valid pixels, drawn from ``seed``."""
    batch, height, width = shape
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=generator)
    mask = (torch.rand(batch, 1, height, width, generator=generator) > 0.3).float()
    with torch.no_grad():
        return net(image, mask)
