"""Argument parsers of the heavy ``pconv`` tools, free of torch, OpenCV and Lightning.

:func:`pconv.cli.main` parses a tool's arguments here before it imports the tool's module, so
``pconv <tool> --help`` and argument errors answer at once; each tool's ``main(argv)`` parses
with the same parser. Only argparse and the standard library are imported. Descriptions are
read from the tool module's docstring without importing it. Choices owned by heavy modules
(tracks, baselines, metrics, mask values) come from :mod:`pconv.utils.choices`, which the
owners import too.
"""

from __future__ import annotations

import argparse
import ast
import math
from collections.abc import Callable
from pathlib import Path

from pconv.utils.choices import (
    BASELINE_NAMES,
    BLACK,
    HOLE_VALUES,
    OPTIONAL_METRICS,
    TRACK_NAMES,
    WHITE,
)

#: The baselines and the LPIPS/FID metrics that ``pconv evaluate`` runs by default: all.
DEFAULT_BASELINES = ",".join(BASELINE_NAMES)
DEFAULT_OPTIONAL_METRICS = ",".join(OPTIONAL_METRICS)
#: ``pconv evaluate`` defaults.
EVAL_SIZE, EVAL_PER_ROW, EVAL_BATCH, EVAL_WORKERS = 512, 10, 8, 2
#: ``pconv masks export`` defaults.
MASKS_SIZE, MASKS_PER_ROW = 512, 100
#: ``pconv prepare``: share of a flat source's images given to each split after the first.
VAL_FRACTION = 0.05
#: ``pconv app`` defaults. Photos are downscaled so that their longer side is at most
#: DEFAULT_MAX_SIDE pixels: the network sees the whole photo at once, so memory grows with the
#: pixel count.
DEFAULT_HOST, DEFAULT_PORT, DEFAULT_MAX_SIDE = "127.0.0.1", 7860, 1024


class OneLineParser(argparse.ArgumentParser):
    """argparse whose mistakes end in one line, ``<prog>: <what is wrong>; see `<prog>
    --help```, and exit code 2, like every other refusal of pconv (not the usage text)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def description(module: str, whole: bool = False) -> str:
    """The docstring of ``module`` (its first paragraph unless ``whole``), read, not imported.

    ``module`` is a dotted name inside pconv; its file is found without importing its parent
    packages either (``pconv.nn`` imports torch).
    """
    path = Path(__file__).parents[1].joinpath(*module.split(".")[1:]).with_suffix(".py")
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    return doc if whole else doc.split("\n\n")[0]


def inpaint() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="pconv inpaint", description=description("pconv.inference"))
    parser.add_argument("image", type=Path, help="an image file or a folder of images")
    parser.add_argument("mask", type=Path, help="its mask file, or a folder of masks by name")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output file/folder")
    parser.add_argument(
        "--ckpt", help="checkpoint of `pconv fit`, .safetensors, hf://user/name or https:// URL"
    )
    parser.add_argument(
        "--mask-hole-value",
        type=int,
        choices=(BLACK, WHITE),
        default=BLACK,
        help="mask file value that means hole (default 0: black = hole)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    return parser


def evaluate() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="pconv evaluate", description=description("pconv.evaluation.cli"))
    parser.add_argument(
        "--ckpt", help="checkpoint of `pconv fit`, .safetensors, hf://user/name or https:// URL"
    )
    parser.add_argument(
        "--images",
        default="samples",
        help="'samples' (default), 'samples:heldout', an image folder or file list",
    )
    parser.add_argument(
        "--masks",
        type=Path,
        help="folder of mask files for the paper track, e.g. NVIDIA's irregular test masks "
        "(default: generated masks)",
    )
    parser.add_argument(
        "--mask-hole-value",
        type=int,
        choices=HOLE_VALUES,
        default=HOLE_VALUES[0],
        help="value that means hole in --masks files (default 0: black = hole)",
    )
    parser.add_argument("--size", type=int, default=EVAL_SIZE, help="square crop side")
    parser.add_argument(
        "--per-bucket",
        type=int,
        default=EVAL_PER_ROW,
        help="images per row: per bucket × border split (paper; with --masks: at most) or "
        "per preset (lama)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed masks")
    parser.add_argument("--track", choices=TRACK_NAMES, default="paper")
    parser.add_argument(
        "--baselines",
        default=DEFAULT_BASELINES,
        help=f"comma-separated, or 'none' (default {DEFAULT_BASELINES})",
    )
    parser.add_argument(
        "--optional-metrics",
        default=DEFAULT_OPTIONAL_METRICS,
        help="lpips,fid when their weights are cached; 'none' to skip",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace report files already in -o"
    )
    parser.add_argument("--batch-size", type=int, default=EVAL_BATCH)
    parser.add_argument("--workers", type=int, default=EVAL_WORKERS, help="loader workers")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument(
        "--compact",
        action="store_true",
        help="print one PSNR table, a row per hole-ratio bucket (the files are unchanged)",
    )
    parser.add_argument("--wandb", action="store_true", help="also log to Weights & Biases")
    parser.add_argument("--wandb-project", default="pconv")
    return parser


def masks() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="pconv masks", description=description("pconv.evaluation.mask_export")
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the evaluation masks as PNGs")
    export.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    export.add_argument("--size", type=int, default=MASKS_SIZE, help="square mask side")
    export.add_argument(
        "--per-bucket",
        type=int,
        default=MASKS_PER_ROW,
        help="masks per row: per bucket × border split (paper) or per preset (lama)",
    )
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--track", choices=TRACK_NAMES, default="paper")
    export.add_argument(
        "--overwrite", action="store_true", help="replace an earlier export in the folder"
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="export even when the masks seem not to fit on the disk or in memory",
    )
    return parser


def prepare() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="pconv prepare",
        description="Convert an image folder, file list or the sample photos into LitData "
        "shards that `data.source: shards` streams.",
    )
    parser.add_argument("source", choices=["samples", "imagefolder", "folder", "filelist"])
    parser.add_argument("root", nargs="?", help="image root or file list (not for samples)")
    parser.add_argument("-o", "--output", required=True, help="shards root (path or URL)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    parser.add_argument("--workers", type=int, default=None, help="default: all cores")
    parser.add_argument("--max-side", type=int, default=None, help="downscale larger images")
    parser.add_argument("--overwrite", action="store_true", help="replace existing shards")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=VAL_FRACTION,
        help="flat sources (folder, filelist, samples): share of the images given to each "
        f"split after the first (default {VAL_FRACTION})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the flat-source split")
    return parser


def params() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="pconv params", description=description("pconv.nn.summary", whole=True)
    )
    parser.add_argument("--levels", type=_positive, default=8, help="encoder levels (8 at 512)")
    parser.add_argument("--size", type=_positive, default=512, help="input side in pixels")
    parser.add_argument(
        "--width-mult", type=_positive_float, default=1.0, help="channel width factor"
    )
    return parser


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1..65535)")
    return port


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a finite positive number, got {text}")
    return value


def app() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="pconv app", description=description("pconv.app"))
    parser.add_argument("--ckpt", help="checkpoint written by `pconv fit` (none: baselines only)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port (default 7860)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if any)")
    parser.add_argument(
        "--max-side",
        type=_positive,
        default=DEFAULT_MAX_SIDE,
        help=f"larger photos are downscaled to this longer side (default {DEFAULT_MAX_SIDE})",
    )
    return parser


#: Tool name -> its parser, for the tools whose modules are slow to import.
PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "inpaint": inpaint,
    "evaluate": evaluate,
    "masks": masks,
    "prepare": prepare,
    "params": params,
    "app": app,
}
