"""Pretrained weights pconv uses (VGG-16 for the loss, LPIPS and FID for evaluation), and
``pconv weights``, which fetches them ahead of a run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pconv.weights.download import fetch_hashed
from pconv.weights.errors import CheckpointError, WeightsUnavailableError
from pconv.weights.named import NAMED, fetch_named

#: Names `pconv weights` knows and what they are; lpips and fid need the eval extra.
PRETRAINED = {
    "vgg16": "VGG-16 ImageNet weights",
    "lpips": "LPIPS AlexNet weights",
    "fid": "FID Inception weights",
}


def pretrained_urls() -> dict[str, str]:
    """Name -> URL of the pretrained weights pconv uses: torchvision's VGG-16 (the loss) and,
    with the ``eval`` extra (torch-fidelity), the LPIPS AlexNet and the FID Inception."""
    import importlib.util

    from torchvision.models import AlexNet_Weights, VGG16_Weights

    urls = {"vgg16": VGG16_Weights.IMAGENET1K_V1.url}
    if importlib.util.find_spec("torch_fidelity") is not None:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

        urls.update(lpips=AlexNet_Weights.DEFAULT.url, fid=URL_INCEPTION_V3)
    return urls


def fetch_pretrained(
    name: str, to: str | os.PathLike | None = None, verify_cached: bool = False
) -> Path:
    """The local file of pretrained weights ``name`` (:func:`pretrained_urls`), downloaded
    into the torch cache (or to the file ``to``) unless it is there; see
    :func:`~pconv.weights.download.fetch_hashed`.

    Offline, raises :class:`WeightsUnavailableError` saying which file to copy where.
    """
    return fetch_hashed(pretrained_urls()[name], PRETRAINED[name], name, to, verify_cached)


def main(argv: list[str] | None = None) -> int:
    """``pconv weights [NAME ...] [--to PATH]``: fetch pretrained weights ahead of a run."""
    from pconv.utils.tool_args import OneLineParser

    prog = "pconv weights"
    parser = OneLineParser(
        prog=prog,
        description="Fetch the pretrained weights pconv uses into the torch cache "
        "($TORCH_HOME/hub/checkpoints), checking their hashes; run it where there is internet "
        "(e.g. a cluster's login node, with TORCH_HOME on shared storage).",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"any of {', '.join(PRETRAINED)} (lpips and fid need the eval extra, "
        f"torch-fidelity), or a published network: {', '.join(NAMED)} (downloaded, converted "
        "and cached as safetensors); default: all available of the first list",
    )
    parser.add_argument("--to", type=Path, help="write the file here instead (one NAME)")
    args = parser.parse_args(argv)

    def fail(message: str, code: int = 2) -> int:
        print(f"{prog}: {message}", file=sys.stderr)
        return code

    unknown = [n for n in args.names if n not in PRETRAINED and n not in NAMED]
    if unknown:
        return fail(
            f"unknown weights {', '.join(unknown)}; choose from {', '.join([*PRETRAINED, *NAMED])}"
        )
    networks = [n for n in args.names if n in NAMED]
    if networks and args.to is not None:
        return fail(f"--to is for {', '.join(PRETRAINED)}; {networks[0]} goes to the torch cache")
    available = pretrained_urls()
    names = args.names or list(available)
    missing = [n for n in names if n not in available and n not in NAMED]
    if missing:
        return fail(
            f"{', '.join(missing)} need the eval extra: pip install torch-fidelity "
            "(pip install 'pconv[eval]')"
        )
    if args.to is not None and len(names) != 1:
        return fail(f"--to names one file; give one NAME, not {', '.join(names)}")
    if args.to is not None:
        from pconv.utils.files import check_writable

        folder = next(p for p in (args.to.parent, *args.to.parents) if p.exists())
        try:  # before a download of hundreds of megabytes
            check_writable(folder)
        except OSError as error:
            return fail(f"--to {args.to}: {error.strerror}; choose a writable folder")
    for name in names:
        try:
            if name in NAMED:
                path = fetch_named(name, verify_cached=True)
            else:
                path = fetch_pretrained(name, args.to, verify_cached=True)
        except CheckpointError as error:
            return fail(str(error))
        except WeightsUnavailableError as error:
            return fail(str(error), code=1)
        except OSError as error:  # a cache folder that cannot be created or written
            where = error.filename or args.to or "the torch cache"
            return fail(
                f"cannot store the {name} weights in {where} ({error.strerror or error}); set "
                "TORCH_HOME to a writable folder or pass --to PATH"
            )
        print(f"{prog}: {name}: {path}")
    return 0
