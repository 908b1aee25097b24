"""``pconv export``: a trained network as safetensors, ONNX or TorchScript.

- ``safetensors``: the weights plus the architecture as JSON (``<name>.safetensors`` and
  ``<name>.json``); loading the pair never unpickles anything, so a file from a stranger cannot
  run code. Every ``--ckpt`` and ``Inpainter.from_pretrained`` accept it.
- ``onnx``: inputs ``image`` N×3×H×W float32 in [0, 1] and ``mask`` N×1×H×W float32 (1 valid,
  0 hole), output ``output`` N×3×H×W on the [0, 1] scale. Batch, height and width are free
  (H and W multiples of 2**levels). Without ``--composite`` the output is the raw prediction
  (composite it yourself: ``mask * image + (1 - mask) * output``, clamped); with it, valid
  pixels come out exactly as given and holes are clamped to [0, 1]. The model's metadata
  holds the levels, the multiple, the mask convention and the pconv version.
- ``torchscript``: a traced module for the ``--size`` it was exported at.

ONNX uses PyTorch's TorchScript-based exporter (the dynamo exporter needs ``onnxscript``).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from pconv.utils.tool_args import OneLineParser

if TYPE_CHECKING:
    import torch

    from pconv.nn.unet import PConvUNet

PROG = "pconv export"
FORMATS = {"safetensors": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}
ONNX_OPSET = 17
INPUT_NAMES = ("image", "mask")
OUTPUT_NAME = "output"
DEFAULT_SIZE = 512
#: Fraction of valid pixels in the example mask traced through the network.
_EXAMPLE_VALID = 0.7


def example_inputs(height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random 1×3×H×W image and 1×1×H×W binary mask (traced, or to compare outputs)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, height, width, generator=generator)
    mask = (torch.rand(1, 1, height, width, generator=generator) < _EXAMPLE_VALID).float()
    return image, mask


def _prepare(net: PConvUNet, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    net.check_size(height, width)
    net.eval()
    return tuple(t.to(next(net.parameters()).device) for t in example_inputs(height, width))


def composited(net: PConvUNet):
    """``net`` followed by the final composite: valid pixels (mask > 0.5) exactly from the
    input image, hole pixels from the network's output clamped to [0, 1]."""
    import torch

    class Composited(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return torch.where(mask > 0.5, image, self.net(image, mask).clamp(0, 1))

    return Composited().eval()


def onnx_metadata(net: PConvUNet, composite: bool) -> dict[str, str]:
    """What a deployment needs to know, stored in the ONNX model's metadata."""
    from pconv.weights.safetensors_pair import INPUT_CONVENTION, architecture

    record = architecture(net)
    return {
        "pconv_version": record["pconv_version"],
        "levels": str(net.levels),
        "multiple": str(net.multiple),
        "mask_convention": "1 = valid, 0 = hole (mask files: black = hole)",
        "input_convention": INPUT_CONVENTION,
        "composite": "valid pixels are the input's" if composite else "raw network output",
    }


def export_onnx(
    net: PConvUNet, path: str | os.PathLike, height: int, width: int, composite: bool = False
) -> Path:
    """Export ``net`` (put in eval mode) as ONNX with free batch, height and width; it is
    traced at H×W. ``composite`` bakes in the final composite (see the module docstring)."""
    import onnx
    import torch

    from pconv.utils.files import atomic_path

    inputs = _prepare(net, height, width)
    axes = {0: "batch", 2: "height", 3: "width"}
    dynamic_axes = {name: axes for name in (*INPUT_NAMES, OUTPUT_NAME)}
    model = composited(net) if composite else net
    with atomic_path(path) as target:
        with warnings.catch_warnings():
            # Expected: the size checks are traced as constants (the sizes stay free), and
            # the legacy exporter is deprecated.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                inputs,
                str(target),
                dynamo=False,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                opset_version=ONNX_OPSET,
            )
        proto = onnx.load(str(target))
        onnx.helper.set_model_props(proto, onnx_metadata(net, composite))
        onnx.save(proto, str(target))
    return Path(path)


def export_torchscript(
    net: PConvUNet, path: str | os.PathLike, height: int, width: int, composite: bool = False
) -> Path:
    """Export ``net`` (put in eval mode) as a traced TorchScript module for H×W inputs."""
    import torch

    from pconv.utils.files import atomic_path

    inputs = _prepare(net, height, width)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings, as above
        traced = torch.jit.trace(composited(net) if composite else net, inputs)
    with atomic_path(path) as target:
        traced.save(str(target))
    return Path(path)


def export_safetensors(
    net: PConvUNet, path: str | os.PathLike, height: int, width: int, composite: bool = False
) -> Path:
    """Write ``net``'s weights (``path``) and architecture (``path`` with ``.json``)."""
    from pconv.weights.safetensors_pair import save_safetensors

    return save_safetensors(net, path)[0]


EXPORTERS = {
    "safetensors": export_safetensors,
    "onnx": export_onnx,
    "torchscript": export_torchscript,
}


def default_output(spec: str, fmt: str, height: int, width: int) -> Path:
    """Next to a local checkpoint (in the current folder for a hub repo or URL), named after
    it; TorchScript names carry their fixed size."""
    local = not spec.startswith(("hf://", "http://", "https://"))
    base = Path(spec) if local else Path(spec.split("#")[0].rstrip("/").split("/")[-1])
    stem = base.stem if base.suffix else base.name
    sized = f"_{height}x{width}" if fmt == "torchscript" else ""
    return base.with_name(f"{stem}{sized}{FORMATS[fmt]}")


def _format_of(suffix: str) -> str:
    return next(name for name, known in FORMATS.items() if known == suffix)


def _input_files(spec: str) -> list[Path]:
    """The local files a weights spec reads: a checkpoint, a safetensors file and its JSON,
    or the files of a folder."""
    from pconv.weights.safetensors_pair import config_path

    path = Path(spec)
    if path.is_dir():
        return [p for p in path.iterdir() if p.is_file()]
    companion = [config_path(path)] if path.suffix == FORMATS["safetensors"] else []
    return [p for p in (path, *companion) if p.is_file()]


def _same_file(a: Path, b: Path) -> bool:
    return a.exists() and os.path.samefile(a, b)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog=PROG,
        description="Export a trained network as safetensors (safe to share), ONNX or TorchScript.",
    )
    parser.add_argument(
        "--ckpt",
        help="the network: a checkpoint of `pconv fit`, a .safetensors file, "
        "hf://user/name[@revision] or an https:// URL",
    )
    parser.add_argument("--format", choices=tuple(FORMATS), default="onnx")
    parser.add_argument(
        "--size",
        type=int,
        default=DEFAULT_SIZE,
        help="square side traced at export (ONNX accepts any multiple of 2**levels later; "
        "TorchScript only this size)",
    )
    parser.add_argument("--height", type=int, help="traced height (default: --size)")
    parser.add_argument("--width", type=int, help="traced width (default: --size)")
    parser.add_argument(
        "--composite",
        action="store_true",
        help="ONNX/TorchScript: bake in the final composite (valid pixels exactly as given)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="output file (default: next to the checkpoint)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = parser.parse_args(argv)

    def fail(message: str) -> int:
        print(f"{PROG}: {message}", file=sys.stderr)
        return 2

    if args.ckpt is None:
        return fail("a checkpoint is needed: pass --ckpt PATH.ckpt, written by `pconv fit`")
    height = args.size if args.height is None else args.height
    width = args.size if args.width is None else args.width
    for name, value in (("--height", height), ("--width", width)):
        if value <= 0:
            flag = "--size" if getattr(args, name[2:]) is None else name
            return fail(f"{flag} {value} is not a positive size; use e.g. --size {DEFAULT_SIZE}")
    output = args.output or default_output(args.ckpt, args.format, height, width)
    from pconv.weights.safetensors_pair import config_path

    if output.suffix in FORMATS.values() and output.suffix != FORMATS[args.format]:
        return fail(
            f"-o {output} names a {_format_of(output.suffix)} file but --format is "
            f"{args.format}; name it *{FORMATS[args.format]} or change --format"
        )
    outputs = [output] + ([config_path(output)] if args.format == "safetensors" else [])
    for path in outputs:
        if path.is_dir():
            return fail(f"-o {output}: {path} is a folder; give a file name, e.g. {path}/model")
        if reading := next((i for i in _input_files(args.ckpt) if _same_file(path, i)), None):
            return fail(
                f"{path} is the input {reading}; it would be replaced by the export: choose "
                "another -o (--overwrite never replaces an input)"
            )
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not args.overwrite:
        return fail(f"{', '.join(existing)} exists; pass --overwrite to replace it")

    from pconv.utils.memory import NET_BYTES_PER_PIXEL, check_fits, physical_memory
    from pconv.weights.errors import CheckpointError, WeightsUnavailableError
    from pconv.weights.load import load_network

    try:
        net = load_network(args.ckpt)
        net.check_size(height, width)
        if args.format != "safetensors":  # traced: one forward pass at height × width
            check_fits(
                NET_BYTES_PER_PIXEL * net.width_mult * height * width,
                physical_memory(),
                f"tracing at {height}×{width}",
                f"export at a smaller --size (ONNX still accepts any size later), e.g. "
                f"{DEFAULT_SIZE}",
            )
        EXPORTERS[args.format](net, output, height, width, args.composite)
    except (CheckpointError, WeightsUnavailableError, ValueError, OSError) as error:
        return fail(str(error))
    written = " and ".join(str(p) for p in outputs)
    print(f"{PROG}: wrote {written} ({args.format})")
    return 0
