"""Loading pconv network weights: Lightning checkpoints written by ``pconv fit``.

One module owns reading weights from disk, so the training code (:mod:`pconv.module`),
evaluation, inference and export share one set of checks and one set of messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentParser
from torch import nn

from pconv.nn.unet import PConvUNet

_HOW_TO_GET_CHECKPOINTS = (
    "checkpoints are written by `pconv fit` under <default_root_dir>/<logger>/.../checkpoints "
    "(best and last.ckpt)"
)


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or holds no pconv network."""


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a Lightning checkpoint written by ``pconv fit`` (weights-only unpickling).

    Raises :class:`FileNotFoundError` or :class:`CheckpointError` naming the path.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint {file} does not exist; {_HOW_TO_GET_CHECKPOINTS}")
    try:
        checkpoint = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as error:  # pickle, zip and torch errors have no common base class
        raise CheckpointError(
            f"checkpoint {file} is unreadable ({type(error).__name__}: {error}); "
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
    state = checkpoint["state_dict"]
    return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}


def load_net_weights(net: nn.Module, checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    try:
        net.load_state_dict(_net_state(checkpoint))
    except RuntimeError as error:
        raise CheckpointError(
            f"checkpoint {path} holds a network of another architecture than the configured "
            f"one (check model.net levels / width_mult): {str(error).splitlines()[0]}"
        ) from None


def load_network(checkpoint_path: str | os.PathLike, map_location: Any = "cpu") -> PConvUNet:
    """The trained :class:`PConvUNet` of a checkpoint, in eval mode, without loss or VGG,
    on the CPU (move it with ``.to(device)``; ``map_location`` only affects reading).

    The architecture comes from the checkpoint's ``net`` hyper-parameter (the default
    PConvUNet when it holds none), the weights from its ``net.*`` entries.
    """
    checkpoint = read_checkpoint(checkpoint_path, map_location)
    spec = checkpoint.get("hyper_parameters", {}).get("net")
    if spec is None:
        net = PConvUNet()
    else:
        # jsonargparse only instantiates subclasses of PConvUNet: a checkpoint cannot make
        # this import and run arbitrary code.
        parser = ArgumentParser(exit_on_error=False)
        parser.add_argument("--net", type=PConvUNet)
        net = parser.instantiate(parser.parse_object({"net": spec})).net
    load_net_weights(net, checkpoint, checkpoint_path)
    return net.eval()


#: The ``PConvUNet`` arguments that fix the shapes of its weights.
ARCHITECTURE_KEYS = ("levels", "width_mult", "in_channels")


def check_architecture(checkpoint: dict[str, Any], net: Any, path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` when ``checkpoint``'s network (its ``net``
    hyper-parameter) differs from ``net`` (a ``{class_path, init_args}`` config, a mapping or
    a namespace) in any of :data:`ARCHITECTURE_KEYS`; a side without a value is not
    compared."""
    saved = (checkpoint.get("hyper_parameters") or {}).get("net") or {}
    saved_args = saved.get("init_args") or {}
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
