"""``pconv params``: per-layer shapes and the parameter count of a PConvUNet."""

from __future__ import annotations

import torch

from pconv.nn.unet import PConvUNet
from pconv.utils import tool_args


def layer_shapes(net: PConvUNet, size: int) -> list[tuple[str, tuple[int, ...], int]]:
    """(layer name, output shape, parameter count) of every PConv block for a size×size input."""
    rows = []
    hooks = [
        block.register_forward_hook(
            lambda module, _inputs, output, name=name: rows.append(
                (name, tuple(output[0].shape), sum(p.numel() for p in module.parameters()))
            )
        )
        for name, block in [
            *((f"PConv{i + 1}", b) for i, b in enumerate(net.encoder)),
            *((f"PConv{len(net.encoder) + i + 1}", b) for i, b in enumerate(net.decoder)),
        ]
    ]
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, size, size), torch.ones(1, 1, size, size))
    for hook in hooks:
        hook.remove()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = tool_args.params()
    args = parser.parse_args(argv)
    net = PConvUNet(levels=args.levels, width_mult=args.width_mult)
    try:
        net.check_size(args.size, args.size)
    except ValueError as error:
        parser.exit(2, f"pconv params: {error}\n")
    for name, shape, count in layer_shapes(net, args.size):
        print(f"{name:<8} {'×'.join(map(str, shape[1:])):>16} {count:>12,}")
    print(f"total parameters: {sum(p.numel() for p in net.parameters()):,}")
    return 0
