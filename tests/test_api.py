"""The Python API (``import pconv``, ``Inpainter`` on PIL and numpy) and ``pconv --help``."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import skimage.data
from PIL import Image

import pconv
from pconv.cli import main

COMMANDS = [
    *("fit", "validate", "test", "predict", "prepare", "evaluate", "masks"),
    *("inpaint", "export", "push", "weights", "params", "app"),
]


def test_dir_shows_the_public_names():
    names = ["Inpainter", "InpaintingDataModule", "InpaintingLoss", "InpaintingModule"]
    names += ["PConvUNet", "PartialConv2d"]
    assert set(names) <= set(dir(pconv)) and not {"importlib", "os"} & set(dir(pconv))
    from pconv.nn.unet import PConvUNet

    assert pconv.PConvUNet is PConvUNet


#: Imports and a config's class_path by module paths of earlier versions, in a fresh interpreter.
OLD_PATHS = """
import pconv.module, pconv.training.module as module
from jsonargparse import ArgumentParser
from lightning.pytorch import Callback
from pconv.callbacks.finetune import FinetuneSwitch
from pconv.training.callbacks import FinetuneSwitch as moved
parser = ArgumentParser()
parser.add_argument("--callback", type=Callback)
config = {"callback": {"class_path": "pconv.callbacks.FinetuneSwitch"}}
callback = parser.instantiate(parser.parse_object(config)).callback
assert pconv.module is module and module.__spec__.name == "pconv.training.module"
assert FinetuneSwitch is moved and type(callback) is moved
"""


def test_old_module_paths_load_the_moved_modules_with_a_one_line_note():
    run = subprocess.run([sys.executable, "-c", OLD_PATHS], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    notes = [line for line in run.stderr.splitlines() if line.startswith("pconv: note: ")]
    assert [note.split()[2:5] for note in notes] == [
        ["pconv.module", "is", "now"],
        ["pconv.callbacks", "is", "now"],
    ], run.stderr
    assert "pconv.training.callbacks;" in notes[1]


def test_inpainter_returns_the_kind_it_is_given(tiny_checkpoint):
    inpainter = pconv.Inpainter.from_pretrained(tiny_checkpoint, device="cpu")
    photo = skimage.data.astronaut()[:45, :67]
    mask = np.full(photo.shape[:2], 255, np.uint8)
    mask[10:25, 30:60] = 0  # black = hole, as in mask files
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "The given NumPy array is not writable"
        filled = inpainter(Image.fromarray(photo), Image.fromarray(mask))
        read_only = np.asarray(Image.fromarray(photo))
        assert not read_only.flags.writeable
        from_numpy = inpainter(read_only, mask != 0)
    assert isinstance(filled, Image.Image) and filled.size == (67, 45) and filled.mode == "RGB"
    result = np.asarray(filled)
    valid = mask == 255
    np.testing.assert_array_equal(result[valid], photo[valid])
    assert (result[~valid] != photo[~valid]).any()
    np.testing.assert_array_equal(result, from_numpy)


def test_help_lists_every_command_without_importing_torch():
    code = (
        "import sys; from pconv.cli import main; code = main(['--help']); "
        "assert code == 0 and 'torch' not in sys.modules and 'lightning' not in sys.modules"
    )
    listing = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    for command in COMMANDS:
        assert sum(line.split()[:1] == [command] for line in lines) == 1, command
    assert main([]) == 2


def test_version_answers_without_importing_torch():
    import importlib.metadata

    code = (
        "import sys; from pconv.cli import main; code = main(['--version']); "
        "assert code == 0 and 'torch' not in sys.modules and 'lightning' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"pconv {importlib.metadata.version('pconv')}\n"


HEAVY = ("torch", "torchvision", "lightning", "litdata", "cv2", "matplotlib")
#: One interpreter runs every tool's --help and an unknown flag through ``pconv``'s dispatch,
#: then prints the exit codes and the heavy modules that got imported.
TOOL_HELP = f"""
import contextlib, io, json, sys
from pconv.cli import TOOLS, main
codes = {{}}
for tool in TOOLS:
    for flag in ("--help", "--no-such-flag"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                main([tool, flag])
            except SystemExit as done:
                codes[tool + " " + flag] = [done.code, out.getvalue()]
print(json.dumps([codes, [m for m in {HEAVY!r} if m in sys.modules]]))
"""


def test_tool_help_and_argument_errors_import_no_heavy_module():
    import json

    from pconv.cli import TOOLS

    run = subprocess.run([sys.executable, "-c", TOOL_HELP], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    codes, heavy = json.loads(run.stdout)
    assert heavy == []
    for tool in TOOLS:
        code, text = codes[f"{tool} --help"]
        assert code == 0 and text.startswith("usage: pconv "), (tool, text)
        code, text = codes[f"{tool} --no-such-flag"]
        assert code == 2 and text.count("\n") == 1, (tool, text)  # one line, no usage text
        assert text.startswith(f"pconv {tool}: ") and f"see `pconv {tool} --help`" in text


def test_tool_parsers_describe_each_tool_by_its_module_docstring():
    from pconv import app, inference
    from pconv.nn import summary
    from pconv.utils import tool_args

    # Descriptions are read from the file: the same text the imported module carries.
    assert tool_args.inpaint().description == inference.__doc__.split("\n\n")[0]
    assert tool_args.app().description == app.__doc__.split("\n\n")[0]
    assert tool_args.params().description == summary.__doc__
