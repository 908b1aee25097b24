"""``pconv params``: per-layer shapes and the parameter count of a PConvUNet."""

from __future__ import annotations

import sys

import torch

from pconv.nn.unet import PConvUNet
from pconv.utils import tool_args
from pconv.utils.memory import NET_BYTES_PER_PIXEL, check_fits, physical_memory


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

    def fail(message: str) -> int:
        print(f"pconv params: {message}", file=sys.stderr)
        return 2

    try:
        # Counted on the meta device first (no memory), so that a typo such as
        # --width-mult 1e9 is refused instead of allocating terabytes.
        with torch.device("meta"):
            parameters = sum(
                p.numel() for p in PConvUNet(args.levels, args.width_mult).parameters()
            )
    except RuntimeError:  # torch: sizes beyond what a tensor can describe
        return fail(f"--width-mult {args.width_mult} makes layers too large for any machine")
    except ValueError as error:  # outside the network's ranges (levels, width_mult)
        return fail(str(error))
    try:
        check_fits(
            4 * parameters + NET_BYTES_PER_PIXEL * args.width_mult * args.size**2,
            physical_memory(),
            f"--width-mult {args.width_mult} at --size {args.size}",
            "lower --width-mult or --size",
        )
        net = PConvUNet(levels=args.levels, width_mult=args.width_mult)
        net.check_size(args.size, args.size)
    except ValueError as error:
        return fail(str(error))
    for name, shape, count in layer_shapes(net, args.size):
        print(f"{name:<8} {'×'.join(map(str, shape[1:])):>16} {count:>12,}")
    print(f"total parameters: {parameters:,}")
    return 0
