"""``pconv export``: a trained network as ONNX or TorchScript, for deployment without pconv.

The exported graph is the bare :class:`~pconv.nn.unet.PConvUNet` in eval mode:
inputs ``image`` N×3×H×W float32 in [0, 1] and ``mask`` N×1×H×W float32 (1 valid, 0 hole),
output ``output`` N×3×H×W, the raw prediction on the [0, 1] scale. Composite it yourself
(``mask * image + (1 - mask) * output``, clamped). H and W are fixed at export time (the
network's size checks are traced as constants); the batch size is free.

ONNX uses PyTorch's TorchScript-based exporter (the dynamo exporter needs ``onnxscript``).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import torch

from pconv.inference import atomic_path
from pconv.nn.unet import PConvUNet
from pconv.weights import CheckpointError, load_network

PROG = "pconv export"
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
ONNX_OPSET = 17
INPUT_NAMES = ("image", "mask")
OUTPUT_NAME = "output"
DEFAULT_SIZE = 512
#: Fraction of valid pixels in the example mask traced through the network.
_EXAMPLE_VALID = 0.7


def example_inputs(height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random 1×3×H×W image and 1×1×H×W binary mask (traced, or to compare outputs)."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, height, width, generator=generator)
    mask = (torch.rand(1, 1, height, width, generator=generator) < _EXAMPLE_VALID).float()
    return image, mask


def _prepare(net: PConvUNet, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    net.check_size(height, width)
    net.eval()
    return tuple(t.to(next(net.parameters()).device) for t in example_inputs(height, width))


def export_onnx(net: PConvUNet, path: str | os.PathLike, height: int, width: int) -> Path:
    """Export ``net`` (put in eval mode) as ONNX for H×W inputs with a free batch size."""
    inputs = _prepare(net, height, width)
    batch_axis = {name: {0: "batch"} for name in (*INPUT_NAMES, OUTPUT_NAME)}

    with atomic_path(path) as target, warnings.catch_warnings():
        # Expected: shape checks become constants, and the legacy exporter is deprecated.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            inputs,
            str(target),
            dynamo=False,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes=batch_axis,
            opset_version=ONNX_OPSET,
        )
    return Path(path)


def export_torchscript(net: PConvUNet, path: str | os.PathLike, height: int, width: int) -> Path:
    """Export ``net`` (put in eval mode) as a traced TorchScript module for H×W inputs."""
    inputs = _prepare(net, height, width)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings, as above
        traced = torch.jit.trace(net, inputs)
    with atomic_path(path) as target:
        traced.save(str(target))
    return Path(path)


EXPORTERS = {"onnx": export_onnx, "torchscript": export_torchscript}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=Path, help="checkpoint written by `pconv fit`")
    parser.add_argument("--format", choices=tuple(FORMATS), default="onnx")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="square input side")
    parser.add_argument("--height", type=int, help="input height (default: --size)")
    parser.add_argument("--width", type=int, help="input width (default: --size)")
    parser.add_argument(
        "-o", "--output", type=Path, help="output file (default: next to the checkpoint)"
    )
    args = parser.parse_args(argv)

    def fail(message: str) -> int:
        print(f"{PROG}: {message}", file=sys.stderr)
        return 2

    if args.ckpt is None:
        return fail("a checkpoint is needed: pass --ckpt PATH.ckpt, written by `pconv fit`")
    height, width = args.height or args.size, args.width or args.size
    output = args.output or args.ckpt.with_name(
        f"{args.ckpt.stem}_{height}x{width}{FORMATS[args.format]}"
    )
    try:
        net = load_network(args.ckpt)
        net.check_size(height, width)
        EXPORTERS[args.format](net, output, height, width)
    except (CheckpointError, ValueError, OSError) as error:
        return fail(str(error))
    print(f"{PROG}: wrote {output} ({args.format}, inputs 1×3×{height}×{width} and mask)")
    return 0
