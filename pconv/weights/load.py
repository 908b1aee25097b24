"""Any weights spec to a file and a network: :func:`resolve`, :func:`load_network`.

See :mod:`pconv.weights` for the forms a spec takes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pconv.weights.checkpoints import build_net, load_state, net_state, read_checkpoint
from pconv.weights.download import fetch_url
from pconv.weights.errors import CheckpointError
from pconv.weights.hub import HUB_PREFIX, REPO_ID, fetch_hub
from pconv.weights.safetensors_pair import (
    SAFETENSORS_FILE,
    read_safetensors_architecture,
    read_safetensors_state,
)

if TYPE_CHECKING:
    from torch import nn

    from pconv.nn.unet import PConvUNet


def resolve(spec: str | os.PathLike, bare_repo_ids: bool = False) -> Path:
    """The local weights file of a spec (see :mod:`pconv.weights`), fetched if need be.

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
    if not path.exists() and bare_repo_ids and REPO_ID.match(text):
        return fetch_hub(text)
    return path


def read_architecture(spec: str | os.PathLike) -> dict | None:
    """The ``net`` record (``{class_path, init_args}``, None when absent) of a weights spec,
    fetched and checked to be readable, without building the network."""
    path = resolve(spec)
    if path.suffix == ".safetensors":
        return read_safetensors_architecture(path)
    return read_checkpoint(path).get("hyper_parameters", {}).get("net")


def _architecture_and_state(path: Path, map_location: Any) -> tuple[dict | None, dict]:
    """(``net`` record or None, network state dict) of a local weights file."""
    if path.suffix == ".safetensors":
        return read_safetensors_architecture(path), read_safetensors_state(path)
    checkpoint = read_checkpoint(path, map_location)
    return checkpoint.get("hyper_parameters", {}).get("net"), net_state(checkpoint)


def load_network(spec: str | os.PathLike, map_location: Any = "cpu") -> PConvUNet:
    """The trained :class:`PConvUNet` of a weights spec (checkpoint, safetensors pair or
    folder, ``hf://`` repo or URL; see :mod:`pconv.weights`), in eval mode, without loss or
    VGG, on the CPU (move it with ``.to(device)``; ``map_location`` only affects reading).

    The architecture comes from the safetensors' JSON or the checkpoint's ``net``
    hyper-parameter (the default PConvUNet when it holds none).
    """
    path = resolve(spec)
    record, state = _architecture_and_state(path, map_location)
    net = build_net(record, path)
    load_state(net, state, path)
    return net.eval()


def load_weights_into(net: nn.Module, spec: str | os.PathLike) -> None:
    """Copy the network weights of a weights spec into ``net`` (same architecture), e.g. to
    start the fine-tuning phase from a shared model."""
    path = resolve(spec)
    load_state(net, _architecture_and_state(path, "cpu")[1], path)
