"""Command line: ``pconv`` and ``lightning``.

``pconv fit|validate|test|predict`` (and the ``lightning`` script) run our LightningCLI;
the other sub-commands are tools, each in the module that owns its concept. This module
imports neither torch nor Lightning, so ``pconv --help`` and ``pconv --version`` answer at
once.
"""

from __future__ import annotations

import importlib
import sys

#: Tool sub-commands: name -> "module:function"; each function takes argv and returns an
#: exit code (2 for bad input).
TOOLS = {
    "params": "pconv.nn.summary:main",
    "prepare": "pconv.data.prepare:main",
    "evaluate": "pconv.evaluation.cli:main",
    "masks": "pconv.evaluation.mask_export:main",
    "inpaint": "pconv.inference:main",
    "export": "pconv.weights.export:main",
    "push": "pconv.weights.push:main",
    "weights": "pconv.weights.pretrained:main",
    "app": "pconv.app:main",
}
#: Every command with one line of help, in the order a user meets them.
COMMANDS = {
    "fit": "train a model (LightningCLI: --config configs/demo.yaml)",
    "validate": "score a checkpoint on the validation masks, per hole-ratio bucket",
    "test": "score a checkpoint on the test set, per hole-ratio bucket",
    "predict": "inpaint the predict set and write PNGs",
    "prepare": "turn an image folder into LitData shards for fast streaming",
    "evaluate": "paper/LaMa evaluation tracks and baselines: report.json, tables, plots",
    "masks": "write the fixed evaluation masks as PNG files",
    "inpaint": "fill the holes of your own photos: image + mask -> PNG",
    "export": "write a trained network as safetensors, ONNX or TorchScript",
    "push": "publish a trained network and its model card on the Hugging Face Hub",
    "weights": "fetch pretrained weights (VGG-16, LPIPS, FID) into the torch cache",
    "params": "per-layer shapes and parameter count of a PConvUNet",
    "app": "a browser page to try a model",
}
USAGE = "usage: pconv COMMAND [ARGS] (pconv COMMAND --help for its arguments; pconv --version)"


def help_text() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {line}" for name, line in COMMANDS.items()]
    return "\n".join([USAGE, "", "Image inpainting with partial convolutions.", "", *lines])


def lightning_main(args: list[str] | None = None) -> int:
    """The LightningCLI for :class:`pconv.InpaintingModule` (fit, validate, test, predict)."""
    from pconv.training.cli import run

    run(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["--version"], ["-V"]):
        from pconv import __version__  # the package's __init__ imports no torch either

        print(f"pconv {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(help_text(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] in TOOLS:
        from pconv.utils.tool_args import PARSERS

        if argv[0] in PARSERS:
            # Help and argument errors exit here, before the tool's heavy imports; the tool's
            # main parses again (microseconds) so that it stays callable on its own.
            PARSERS[argv[0]]().parse_args(argv[1:])
        module, function = TOOLS[argv[0]].split(":")
        return getattr(importlib.import_module(module), function)(argv[1:])
    return lightning_main(argv)
