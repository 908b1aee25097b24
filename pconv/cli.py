"""Command line: ``pconv`` and ``lightning``.

``pconv fit|validate|test|predict`` (and the ``lightning`` script) run our LightningCLI;
the other sub-commands are tools, each in the module that owns its concept.
"""

from __future__ import annotations

import importlib
import sys

#: Tool sub-commands: name -> "module:function"; each function takes argv and returns an
#: exit code (2 for bad input).
TOOLS = {
    "params": "pconv.nn.summary:main",
    "prepare": "pconv.data.shards:main",
    "evaluate": "pconv.evaluation.report:main",
    "masks": "pconv.evaluation.mask_export:main",
    "inpaint": "pconv.inference:main",
    "export": "pconv.export:main",
    "app": "pconv.app:main",
}


def lightning_main(args: list[str] | None = None) -> int:
    """The LightningCLI for :class:`pconv.InpaintingModule` (fit, validate, test, predict)."""
    from pconv.trainer_cli import run

    run(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in TOOLS:
        module, function = TOOLS[argv[0]].split(":")
        return getattr(importlib.import_module(module), function)(argv[1:])
    return lightning_main(argv)
