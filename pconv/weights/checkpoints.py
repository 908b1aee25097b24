"""Lightning checkpoints written by ``pconv fit``: read (weights-only unpickling), check the
architecture they hold, rebuild their network, find the newest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pconv.weights.errors import CheckpointError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pconv.nn.unet import PConvUNet

_HOW_TO_GET_CHECKPOINTS = (
    "checkpoints are written by `pconv fit` under <default_root_dir>/<logger>/.../checkpoints "
    "(best and last.ckpt)"
)

#: Characters of torch's account of a mismatched state_dict kept in the one line.
_MAX_DETAIL_CHARS = 200
#: The ``PConvUNet`` arguments: they fix the shapes of its weights and its function.
ARCHITECTURE_KEYS = ("levels", "width_mult", "in_channels", "normalization", "ratio_eps")


def _torch_load_error(error: Exception) -> str:
    """The cause of a failed weights-only ``torch.load``, without torch's advice to set
    ``weights_only=False`` (which would let the file run code)."""
    text = str(error)
    marker = "WeightsUnpickler error: "
    incomplete = "not a complete PyTorch file: empty, truncated or corrupt"
    if marker in text:
        cause = (text.split(marker, 1)[1].splitlines() or [""])[0].strip()
        if "Unsupported global" in cause:
            return (
                "it is not a plain checkpoint: it holds Python objects besides weights, which "
                "pconv never unpickles, as they could run code; if you trust its source, save "
                "its weights alone with torch.save({'state_dict': "
                "torch.load(PATH, weights_only=False)['state_dict']}, 'plain.ckpt')"
            )
        return cause or incomplete  # a truncated file can fail with no word at all
    if isinstance(error, EOFError) or "zip archive" in text or not text.strip():
        return incomplete
    return f"{type(error).__name__}: {text.splitlines()[0] if text else 'no detail'}"


def read_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Load a Lightning checkpoint written by ``pconv fit`` (weights-only unpickling;
    ``mmap``: tensors are mapped, not read, for a look at the architecture).

    Raises :class:`FileNotFoundError` or :class:`CheckpointError` naming the path.
    """
    import torch

    file = Path(path).expanduser()
    if file.is_dir():
        raise CheckpointError(f"checkpoint {file} is a folder; pass a checkpoint file")
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint {file} does not exist; {_HOW_TO_GET_CHECKPOINTS}")
    try:
        checkpoint = torch.load(file, map_location=map_location, weights_only=True, mmap=mmap)
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


def net_state(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The network's entries of a checkpoint's ``state_dict``, without their ``net.`` prefix."""
    state = checkpoint["state_dict"]
    return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}


def load_state(net: nn.Module, state: dict[str, torch.Tensor], path) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        # torch's first line only says "Error(s) in loading state_dict for PConvUNet:"; the
        # next names the first missing key or mismatched size.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else "different weights"
        if len(detail) > _MAX_DETAIL_CHARS:
            detail = detail[:_MAX_DETAIL_CHARS] + " ..."
        raise CheckpointError(
            f"{path} holds a network of another architecture than the configured "
            f"one (check model.net levels / width_mult): {detail}"
        ) from None


def net_config(net: PConvUNet) -> dict[str, Any]:
    """``{class_path, init_args}`` that rebuild ``net``'s architecture."""
    args = {key: getattr(net, key) for key in ARCHITECTURE_KEYS}
    return {"class_path": f"{type(net).__module__}.{type(net).__qualname__}", "init_args": args}


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
