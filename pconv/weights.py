"""Weights in and out: checkpoints, safetensors, the Hugging Face Hub, URLs, pretrained weights.

One module owns reading and writing network weights, so training (:mod:`pconv.module`),
evaluation, inference, export and the hub share one set of checks and one set of messages.

A **weights spec** names a trained network in any of these forms (:func:`load_network`):

- ``run/last.ckpt``: a Lightning checkpoint written by ``pconv fit`` (weights-only unpickling);
- ``model.safetensors``: the safe pair written by ``pconv export --format safetensors``, the
  weights plus the architecture in ``model.json`` next to it (or ``config.json``, the hub's
  name); a folder holding such a pair works too. Loading it never unpickles anything;
- ``hf://user/name[@revision]``: a repo pushed by ``pconv push``, through the hub's cache;
- ``https://host/file.ckpt[#sha256=HEX]``: downloaded once into the torch cache
  (``$TORCH_HOME/checkpoints``) with a progress bar; the hash, when given, is checked.

Heavy libraries (torch, safetensors, huggingface_hub) are imported on first use, so the
command line's ``--help`` stays quick.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pconv.nn.unet import PConvUNet

_HOW_TO_GET_CHECKPOINTS = (
    "checkpoints are written by `pconv fit` under <default_root_dir>/<logger>/.../checkpoints "
    "(best and last.ckpt)"
)
#: The safe pair: weights file and architecture file in a folder (the hub's names).
SAFETENSORS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
HUB_PREFIX = "hf://"
#: ``user/name`` or ``user/name@revision`` (the hub's repo id rules, loosely).
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+(@[\w./-]+)?$")
#: The input convention every exported network follows (written into its metadata).
INPUT_CONVENTION = (
    "image N×3×H×W float RGB in [0, 1]; mask N×1×H×W float, 1 = valid, 0 = hole; "
    "H and W multiples of 2**levels; output N×3×H×W in [0, 1] (composite it with the mask)"
)
#: Seconds before an unreachable download server counts as offline instead of hanging.
DOWNLOAD_TIMEOUT_S = 20.0


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or holds no pconv network."""


class WeightsUnavailableError(RuntimeError):
    """The requested weights can be neither found locally nor downloaded."""


# ---------------------------------------------------------------------------- checkpoints


def _torch_load_error(error: Exception) -> str:
    """The cause of a failed weights-only ``torch.load``, without torch's advice to set
    ``weights_only=False`` (which would let the file run code)."""
    text = str(error)
    marker = "WeightsUnpickler error: "
    if marker in text:
        cause = text.split(marker, 1)[1].splitlines()[0]
        if "Unsupported global" in cause:
            return "it holds Python objects besides weights, which pconv never unpickles"
        return cause
    if isinstance(error, EOFError) or "zip archive" in text:
        return "not a complete PyTorch file: empty, truncated or corrupt"
    return f"{type(error).__name__}: {text.splitlines()[0] if text else 'no detail'}"


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a Lightning checkpoint written by ``pconv fit`` (weights-only unpickling).

    Raises :class:`FileNotFoundError` or :class:`CheckpointError` naming the path.
    """
    import torch

    file = Path(path).expanduser()
    if file.is_dir():
        raise CheckpointError(f"checkpoint {file} is a folder; pass a checkpoint file")
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint {file} does not exist; {_HOW_TO_GET_CHECKPOINTS}")
    try:
        checkpoint = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as error:  # pickle, zip and torch errors have no common base class
        raise CheckpointError(
            f"checkpoint {file} is unreadable ({_torch_load_error(error)}); "
            f"{_HOW_TO_GET_CHECKPOINTS}"
        ) from None
    if not isinstance(checkpoint, dict) or not any(
        k.startswith("net.") for k in checkpoint.get("state_dict", {})
    ):
        raise CheckpointError(
            f"checkpoint {file} holds no pconv network weights (no 'net.*' entries in its "
            f"state_dict); {_HOW_TO_GET_CHECKPOINTS}"
        )
    return checkpoint


def _net_state(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's entries of a checkpoint's ``state_dict``, without their ``net.`` prefix."""
    state = checkpoint["state_dict"]
    return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}


def _load_state(net: nn.Module, state: dict[str, torch.Tensor], path) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(
            f"{path} holds a network of another architecture than the configured "
            f"one (check model.net levels / width_mult): {str(error).splitlines()[0]}"
        ) from None


def net_config(net: PConvUNet) -> dict[str, Any]:
    """``{class_path, init_args}`` that rebuild ``net``'s architecture."""
    args = {"levels": net.levels, "width_mult": net.width_mult, "in_channels": net.in_channels}
    return {"class_path": f"{type(net).__module__}.{type(net).__qualname__}", "init_args": args}


def build_net(spec: dict[str, Any] | None, source: str | os.PathLike) -> PConvUNet:
    """A fresh network from ``{class_path, init_args}`` (the default PConvUNet for None).

    jsonargparse only instantiates subclasses of PConvUNet: a file cannot make this import
    and run arbitrary code.
    """
    from jsonargparse import ArgumentParser

    from pconv.nn.unet import PConvUNet

    if spec is None:
        return PConvUNet()
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--net", type=PConvUNet)
    try:
        return parser.instantiate(parser.parse_object({"net": spec})).net
    except Exception as error:  # jsonargparse's errors have no common base class
        raise CheckpointError(
            f"{source} describes no PConvUNet ({str(error).splitlines()[0]})"
        ) from None


# ---------------------------------------------------------------------------- safetensors


def architecture(net: PConvUNet) -> dict[str, Any]:
    """The JSON architecture record of ``net``: what rebuilds it and how to feed it."""
    import pconv

    return {
        "format": "pconv",
        "pconv_version": pconv.__version__,
        "net": net_config(net),
        "levels": net.levels,
        "width_mult": net.width_mult,
        "multiple": net.multiple,
        "input_convention": INPUT_CONVENTION,
    }


def config_path(weights_file: str | os.PathLike) -> Path:
    """The architecture JSON of a safetensors file: ``<stem>.json``, or ``config.json`` next
    to ``model.safetensors`` (the hub's layout)."""
    weights_file = Path(weights_file)
    if weights_file.name == SAFETENSORS_FILE:
        return weights_file.with_name(CONFIG_FILE)
    return weights_file.with_suffix(".json")


def save_safetensors(net: PConvUNet, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``net``'s weights to ``path`` (.safetensors) and its architecture to
    :func:`config_path`, each atomically; returns both paths."""
    from safetensors.torch import save

    from pconv.inference import atomic_write

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    record = architecture(net)
    metadata = {"format": "pt", "pconv_version": record["pconv_version"]}
    path = Path(path)
    config = config_path(path)
    atomic_write(path, save(state, metadata=metadata))
    atomic_write(config, (json.dumps(record, indent=2) + "\n").encode())
    return path, config


def _safetensors_architecture(path: Path) -> dict[str, Any]:
    """The ``net`` record of a safetensors file's architecture JSON."""
    config = config_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if not config.is_file():
        raise CheckpointError(
            f"{path} needs its architecture file {config} next to it (written with it by "
            "`pconv export --format safetensors`)"
        )
    try:
        return json.loads(config.read_text())["net"]
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(
            f"architecture file {config} is not a pconv record ({type(error).__name__}: "
            f"{error}); re-export it with `pconv export --format safetensors`"
        ) from None


def _safetensors_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"weights file {path} is unreadable ({error})") from None


# ---------------------------------------------------------------------------- downloads


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def torch_cache_dir() -> Path:
    """Where downloaded weights go: ``$TORCH_HOME/checkpoints`` (torch's own cache)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def download(url: str, target: str | os.PathLike, sha256_prefix: str | None = None) -> Path:
    """Download ``url`` to ``target`` (atomically; a progress bar on a terminal), checking
    that the file's SHA-256 starts with ``sha256_prefix`` when given.

    Raises :class:`WeightsUnavailableError` (no route, server error) or
    :class:`CheckpointError` (a hash mismatch; nothing is written) with one line.
    """
    import torch

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        # torch writes a temporary file next to target and moves it there when the hash holds.
        torch.hub.download_url_to_file(
            url, str(target), hash_prefix=sha256_prefix, progress=sys.stderr.isatty()
        )
    except OSError as error:  # URLError, HTTPError, timeouts and DNS failures
        raise WeightsUnavailableError(f"{url} cannot be downloaded ({error})") from None
    except RuntimeError as error:  # torch's "invalid hash value (expected ..., got ...)"
        raise CheckpointError(
            f"{url} does not have the expected SHA-256 ({error}); nothing was written"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return target


def fetch_url(spec: str) -> Path:
    """The local file of ``https://…/file[#sha256=HEX]``, downloaded into the torch cache
    on first use. A ``.safetensors`` URL brings its ``.json`` architecture file along."""
    url, _, fragment = spec.partition("#")
    sha256 = None
    if fragment:
        key, _, value = fragment.partition("=")
        if key != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise CheckpointError(
                f"URL fragment #{fragment} of {spec} is not #sha256=<64 hex digits>"
            )
        sha256 = value.lower()
    name = Path(urlparse(url).path).name
    if not name:
        raise CheckpointError(f"URL {url} names no file (expected …/name.ckpt)")
    target = torch_cache_dir() / name
    if target.is_file():
        if sha256 and sha256_of(target) != sha256:
            raise CheckpointError(
                f"cached {target} (from {url}) does not have SHA-256 {sha256}; delete it to "
                "download it again"
            )
    else:
        download(url, target, sha256)
    if target.suffix == ".safetensors" and not config_path(target).is_file():
        download(url.rsplit(".", 1)[0] + ".json", config_path(target))
    return target


# ---------------------------------------------------------------------------- pretrained

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
    into the torch cache (or to the file ``to``) unless it is there. The file name's hash
    prefix (``vgg16-397923af.pth``) is checked as torchvision does: always after a download,
    and for a file already there when ``verify_cached``.

    Offline, raises :class:`WeightsUnavailableError` saying which file to copy where.
    """
    import torch

    url = pretrained_urls()[name]
    file_name = Path(urlparse(url).path).name
    target = Path(to).expanduser() if to is not None else torch_cache_dir() / file_name
    match = torch.hub.HASH_REGEX.search(file_name)
    prefix = match.group(1) if match else None
    if target.is_file():
        if verify_cached and prefix and not sha256_of(target).startswith(prefix):
            raise CheckpointError(
                f"{target} is not {file_name} (its SHA-256 does not start with {prefix}); "
                "delete it and fetch it again"
            )
        return target
    try:
        return download(url, target, prefix)
    except WeightsUnavailableError as error:
        raise WeightsUnavailableError(
            f"{PRETRAINED[name]} are not cached at {target}, and {error}; run `pconv weights "
            f"{name}` where there is internet, or copy {file_name} (from {url}) to {target}"
        ) from None


# ---------------------------------------------------------------------------- the hub


def parse_repo(spec: str) -> tuple[str, str | None]:
    """``hf://user/name@rev`` or ``user/name@rev`` -> (``user/name``, ``rev`` or None)."""
    repo = spec.removeprefix(HUB_PREFIX)
    if not _REPO_ID.match(repo):
        raise CheckpointError(f"{spec} is not a hub repo: expected hf://user/name[@revision]")
    repo_id, _, revision = repo.partition("@")
    return repo_id, revision or None


def fetch_hub(spec: str) -> Path:
    """The local ``model.safetensors`` of a hub repo (and its ``config.json`` beside it),
    through the hub's cache (``HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` reads only the cache)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    repo_id, revision = parse_repo(spec)
    try:
        hf_hub_download(repo_id, CONFIG_FILE, revision=revision)
        weights = hf_hub_download(repo_id, SAFETENSORS_FILE, revision=revision)
    except (LocalEntryNotFoundError, EntryNotFoundError) as error:
        raise WeightsUnavailableError(
            f"hub repo {repo_id}{'@' + revision if revision else ''} is neither cached nor "
            f"reachable ({str(error).splitlines()[0]}); fetch it once with internet access "
            "(or set HF_HUB_CACHE to where it is cached)"
        ) from None
    except (HfHubHTTPError, OSError) as error:
        raise WeightsUnavailableError(
            f"cannot download hub repo {repo_id} ({str(error).splitlines()[0]})"
        ) from None
    return Path(weights)


# ---------------------------------------------------------------------------- any spec


def resolve(spec: str | os.PathLike, bare_repo_ids: bool = False) -> Path:
    """The local weights file of a spec (see the module docstring), fetched if need be.

    ``bare_repo_ids``: also read ``user/name`` that is not a local path as a hub repo.
    """
    text = str(spec)
    if text.startswith(HUB_PREFIX):
        return fetch_hub(text)
    if text.startswith(("https://", "http://")):
        return fetch_url(text)
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / SAFETENSORS_FILE
        if not path.is_file():
            raise CheckpointError(
                f"{path.parent} is a folder with no {SAFETENSORS_FILE}; pass a checkpoint "
                f"file, or a folder holding {SAFETENSORS_FILE}"
            )
    if not path.exists() and bare_repo_ids and _REPO_ID.match(text):
        return fetch_hub(text)
    return path


def read_architecture(spec: str | os.PathLike) -> dict | None:
    """The ``net`` record (``{class_path, init_args}``, None when absent) of a weights spec,
    fetched and checked to be readable, without building the network."""
    path = resolve(spec)
    if path.suffix == ".safetensors":
        return _safetensors_architecture(path)
    return read_checkpoint(path).get("hyper_parameters", {}).get("net")


def _architecture_and_state(path: Path, map_location: Any) -> tuple[dict | None, dict]:
    """(``net`` record or None, network state dict) of a local weights file."""
    if path.suffix == ".safetensors":
        return _safetensors_architecture(path), _safetensors_state(path)
    checkpoint = read_checkpoint(path, map_location)
    return checkpoint.get("hyper_parameters", {}).get("net"), _net_state(checkpoint)


def load_network(spec: str | os.PathLike, map_location: Any = "cpu") -> PConvUNet:
    """The trained :class:`PConvUNet` of a weights spec (checkpoint, safetensors pair or
    folder, ``hf://`` repo or URL; see the module docstring), in eval mode, without loss or
    VGG, on the CPU (move it with ``.to(device)``; ``map_location`` only affects reading).

    The architecture comes from the safetensors' JSON or the checkpoint's ``net``
    hyper-parameter (the default PConvUNet when it holds none).
    """
    path = resolve(spec)
    record, state = _architecture_and_state(path, map_location)
    net = build_net(record, path)
    _load_state(net, state, path)
    return net.eval()


def load_weights_into(net: nn.Module, spec: str | os.PathLike) -> None:
    """Copy the network weights of a weights spec into ``net`` (same architecture), e.g. to
    start the fine-tuning phase from a shared model."""
    path = resolve(spec)
    _load_state(net, _architecture_and_state(path, "cpu")[1], path)


#: The ``PConvUNet`` arguments that fix the shapes of its weights.
ARCHITECTURE_KEYS = ("levels", "width_mult", "in_channels")


def check_architecture(saved: dict | None, net: Any, path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` when the ``net`` record of a weights file (its
    ``{class_path, init_args}``; None when it holds none) differs from ``net`` (the configured
    ``{class_path, init_args}``, a mapping or a namespace) in any of
    :data:`ARCHITECTURE_KEYS`; a side without a value is not compared."""
    saved_args = (saved or {}).get("init_args") or {}
    args = (net.get("init_args") if net is not None else None) or {}
    differ = [
        f"{key}={args.get(key)} (checkpoint: {saved_args.get(key)})"
        for key in ARCHITECTURE_KEYS
        if args.get(key) is not None
        and saved_args.get(key) is not None
        and args.get(key) != saved_args.get(key)
    ]
    if differ:
        raise CheckpointError(
            f"checkpoint {path} holds another network than the config: model.net "
            f"{', '.join(differ)}; set model.net.init_args to the checkpoint's values or "
            "use a checkpoint of this architecture"
        )


def checkpoint_step(path: str | os.PathLike) -> int:
    """The global step a Lightning checkpoint holds (-1 when unreadable); memory-mapped, so
    the weights are not read."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(checkpoint["global_step"])
    except Exception:  # an unreadable file holds no progress worth keeping
        return -1


def newest_checkpoint(paths: list[str | os.PathLike]) -> str | None:
    """Of ``paths``, the checkpoint holding the highest global step (None if none does)."""
    steps = {str(path): checkpoint_step(path) for path in paths if Path(path).is_file()}
    steps = {path: step for path, step in steps.items() if step >= 0}
    return max(steps, key=steps.get) if steps else None


# ---------------------------------------------------------------------------- `pconv weights`


def main(argv: list[str] | None = None) -> int:
    """``pconv weights [NAME ...] [--to PATH]``: fetch pretrained weights ahead of a run."""
    import argparse

    prog = "pconv weights"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Fetch the pretrained weights pconv uses into the torch cache "
        "($TORCH_HOME/checkpoints), checking their hashes; run it where there is internet "
        "(e.g. a cluster's login node, with TORCH_HOME on shared storage).",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"any of {', '.join(PRETRAINED)} (lpips and fid need the eval extra, "
        "torch-fidelity); default: all available",
    )
    parser.add_argument("--to", type=Path, help="write the file here instead (one NAME)")
    args = parser.parse_args(argv)

    def fail(message: str, code: int = 2) -> int:
        print(f"{prog}: {message}", file=sys.stderr)
        return code

    unknown = [n for n in args.names if n not in PRETRAINED]
    if unknown:
        return fail(f"unknown weights {', '.join(unknown)}; choose from {', '.join(PRETRAINED)}")
    available = pretrained_urls()
    names = args.names or list(available)
    missing = [n for n in names if n not in available]
    if missing:
        return fail(
            f"{', '.join(missing)} need the eval extra: pip install torch-fidelity "
            "(pip install 'pconv[eval]')"
        )
    if args.to is not None and len(names) != 1:
        return fail(f"--to names one file; give one NAME, not {', '.join(names)}")
    for name in names:
        try:
            path = fetch_pretrained(name, args.to, verify_cached=True)
        except CheckpointError as error:
            return fail(str(error))
        except WeightsUnavailableError as error:
            return fail(str(error), code=1)
        print(f"{prog}: {name}: {path}")
    return 0
