"""Any weights spec to a file and a network: :func:`resolve`, :func:`load_network`.

See :mod:`pconv.weights` for the forms a spec takes. Every path checks the file's
architecture record and tensor shapes (:mod:`pconv.weights.architecture`) before it builds a
network or reads a weight.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pconv.weights.architecture import build, check_shapes, validate
from pconv.weights.checkpoints import load_state, net_state, read_checkpoint
from pconv.weights.download import fetch_url
from pconv.weights.errors import CheckpointError
from pconv.weights.hub import HUB_PREFIX, REPO_ID, fetch_hub
from pconv.weights.named import NAMED, fetch_named
from pconv.weights.safetensors_pair import (
    SAFETENSORS_FILE,
    read_safetensors_architecture,
    read_safetensors_header,
    read_safetensors_state,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pconv.nn.unet import PConvUNet


def inspect(path: Path) -> dict[str, Any]:
    """The checked ``init_args`` of a local weights file, its tensor shapes compared with
    them, without reading a weight (safetensors: the header; checkpoints: memory-mapped)."""
    if path.suffix == ".safetensors":
        metadata, shapes = read_safetensors_header(path)
        args = validate(read_safetensors_architecture(path, metadata), path)
    else:
        checkpoint = read_checkpoint(path, mmap=True)
        args = validate(checkpoint.get("hyper_parameters", {}).get("net"), path)
        shapes = {name: tuple(tensor.shape) for name, tensor in net_state(checkpoint).items()}
    check_shapes(args, shapes, path)
    return args


def resolve(spec: str | os.PathLike, bare_repo_ids: bool = False) -> Path:
    """The local weights file of a spec (see :mod:`pconv.weights`), fetched if need be.
    Anything downloaded is checked (:func:`inspect`) before it enters a cache.

    ``bare_repo_ids``: also read ``user/name`` that is not a local path as a hub repo.
    """
    text = str(spec)
    if text in NAMED and not Path(text).exists():  # a file of that name comes first
        return fetch_named(text, check=inspect)
    if text.startswith(HUB_PREFIX):
        return fetch_hub(text)
    if text.startswith(("https://", "http://")):
        return fetch_url(text, check=inspect)
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / SAFETENSORS_FILE
        if not path.is_file():
            raise CheckpointError(
                f"{path.parent} is a folder with no {SAFETENSORS_FILE}; pass a checkpoint "
                f"file, or a folder holding {SAFETENSORS_FILE}"
            )
    if not path.exists() and bare_repo_ids and REPO_ID.match(text):
        return fetch_hub(text)
    return path


def read_architecture(spec: str | os.PathLike) -> dict:
    """The checked ``net`` record (``{class_path, init_args}``) of a weights spec, fetched and
    compared with its tensor shapes, without building the network."""
    path = resolve(spec)
    return {"class_path": "pconv.nn.unet.PConvUNet", "init_args": inspect(path)}


def _architecture_and_state(
    path: Path, map_location: Any
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(checked ``init_args``, network state dict) of a local weights file; the shapes are
    compared before the safetensors weights are read."""
    if path.suffix == ".safetensors":
        args = inspect(path)
        return args, read_safetensors_state(path)
    checkpoint = read_checkpoint(path, map_location)
    args = validate(checkpoint.get("hyper_parameters", {}).get("net"), path)
    state = net_state(checkpoint)
    check_shapes(args, {name: tuple(tensor.shape) for name, tensor in state.items()}, path)
    return args, state


def load_network(spec: str | os.PathLike, map_location: Any = "cpu") -> PConvUNet:
    """The trained :class:`PConvUNet` of a weights spec (checkpoint, safetensors file or
    folder, published name, ``hf://`` repo or URL; see :mod:`pconv.weights`), in eval mode,
    without loss or VGG, on the CPU (move it with ``.to(device)``; ``map_location`` only
    affects reading).

    The architecture comes from the safetensors' metadata or JSON, or the checkpoint's ``net``
    hyper-parameter (the default PConvUNet when it holds none), checked before building.
    """
    path = resolve(spec)
    args, state = _architecture_and_state(path, map_location)
    net = build(args)
    load_state(net, state, path)
    return net.eval()


def load_weights_into(net: nn.Module, spec: str | os.PathLike) -> None:
    """Copy the network weights of a weights spec into ``net`` (same architecture), e.g. to
    start the fine-tuning phase from a shared model."""
    path = resolve(spec)
    load_state(net, _architecture_and_state(path, "cpu")[1], path)
