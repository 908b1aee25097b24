"""The safe pair: weights in ``.safetensors`` and the architecture in a JSON file beside them.

``pconv export --format safetensors`` and ``pconv push`` write it; loading it never unpickles
anything. The JSON is ``<stem>.json``, or ``config.json`` next to ``model.safetensors`` (the
Hugging Face Hub's names). The same record is also in the safetensors file's own metadata
(key :data:`METADATA_KEY`), so one file and one hash cover both; it wins over the JSON, which
only files written before it need.
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
#: The safetensors metadata key holding the architecture record (JSON text).
METADATA_KEY = "pconv_architecture"
#: An architecture JSON is a few hundred bytes; a bigger one is not read.
MAX_CONFIG_BYTES = 1 << 16


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
    metadata = {
        "format": "pt",
        "pconv_version": record["pconv_version"],
        METADATA_KEY: json.dumps(record),
    }
    path = Path(path)
    config = config_path(path)
    atomic_write(path, save(state, metadata=metadata))
    atomic_write(config, (json.dumps(record, indent=2) + "\n").encode())
    return path, config


def read_safetensors_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """(metadata, name -> shape of every tensor) of a safetensors file, from its header
    alone: no tensor is read. A truncated or foreign file raises :class:`CheckpointError`."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        with safe_open(path, framework="pt") as file:
            shapes = {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}  # noqa: SIM118 (not iterable)
            return file.metadata() or {}, shapes
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"weights file {path} is not a complete safetensors file ({error}); download or "
            "export it again"
        ) from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def read_safetensors_architecture(path: Path, metadata: dict[str, str]) -> Any:
    """The ``net`` record of a safetensors file: from its ``metadata`` (see
    :func:`read_safetensors_header`) or, for older files, its architecture JSON. Not yet
    checked: see :func:`pconv.weights.architecture.validate`."""
    config = config_path(path)
    if METADATA_KEY in metadata:
        source, text = f"{path} (metadata {METADATA_KEY})", metadata[METADATA_KEY]
    elif config.is_file():
        if config.stat().st_size > MAX_CONFIG_BYTES:
            raise CheckpointError(
                f"architecture file {config} is over {MAX_CONFIG_BYTES} bytes, too big to be "
                "a pconv record; re-export it with `pconv export --format safetensors`"
            )
        source, text = str(config), config.read_text(errors="replace")
    else:
        raise CheckpointError(
            f"{path} holds no architecture and needs its architecture file {config} next to "
            "it (written with it by `pconv export --format safetensors`)"
        )
    try:
        # NaN and Infinity are not JSON; Python would accept them and slip past range checks.
        return json.loads(text, parse_constant=_reject_constant)["net"]
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(
            f"architecture in {source} is not a pconv record ({type(error).__name__}: "
            f"{error}); re-export it with `pconv export --format safetensors`"
        ) from None


def read_safetensors_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"weights file {path} is unreadable ({error})") from None
