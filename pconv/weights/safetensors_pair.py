"""The safe pair: weights in ``.safetensors`` and the architecture in a JSON file beside them.

``pconv export --format safetensors`` and ``pconv push`` write it; loading it never unpickles
anything. The JSON is ``<stem>.json``, or ``config.json`` next to ``model.safetensors`` (the
Hugging Face Hub's names).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pconv.utils.files import atomic_write
from pconv.weights.checkpoints import net_config
from pconv.weights.errors import CheckpointError

if TYPE_CHECKING:
    import torch

    from pconv.nn.unet import PConvUNet

#: The safe pair: weights file and architecture file in a folder (the hub's names).
SAFETENSORS_FILE = "model.safetensors"


CONFIG_FILE = "config.json"


#: The input convention every exported network follows (written into its metadata).
INPUT_CONVENTION = (
    "image N×3×H×W float RGB in [0, 1]; mask N×1×H×W float, 1 = valid, 0 = hole; "
    "H and W multiples of 2**levels; output N×3×H×W in [0, 1] (composite it with the mask)"
)


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

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    record = architecture(net)
    metadata = {"format": "pt", "pconv_version": record["pconv_version"]}
    path = Path(path)
    config = config_path(path)
    atomic_write(path, save(state, metadata=metadata))
    atomic_write(config, (json.dumps(record, indent=2) + "\n").encode())
    return path, config


def read_safetensors_architecture(path: Path) -> dict[str, Any]:
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


def read_safetensors_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"weights file {path} is unreadable ({error})") from None
