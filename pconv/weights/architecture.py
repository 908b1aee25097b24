"""The architecture record of a weights file, checked before anything is imported or built.

A weights file says which network its tensors fill as ``{"class_path", "init_args"}`` (a
checkpoint's ``hyper_parameters.net``, a safetensors file's metadata or the JSON beside it).
The record comes from whoever made the file, so nothing in it is trusted:

- :func:`validate` checks it against a JSON schema first: the class is one of our own
  networks, given by name (the record never makes us import anything), and every argument
  has its type and its range (:data:`pconv.nn.unet.LEVELS_RANGE` and the others), so a
  file cannot ask for a network that exhausts memory or degenerates to nothing;
- :func:`check_shapes` compares the tensor shapes that the architecture implies (a network
  built on the meta device, which allocates no memory) with those the file holds, before
  any weight is read or any network is built.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from pconv.weights.errors import CheckpointError

if TYPE_CHECKING:
    from pconv.nn.unet import PConvUNet

#: The names a record may give our network by; anything else is refused unimported.
CLASS_PATHS = ("pconv.nn.unet.PConvUNet", "pconv.nn.PConvUNet", "pconv.PConvUNet", "PConvUNet")
#: Mismatching tensors named in a message, at most.
SHOWN = 3


def schema() -> dict[str, Any]:
    """The JSON schema of a ``{class_path, init_args}`` record of :class:`PConvUNet`."""
    from pconv.nn.unet import (
        IN_CHANNELS_RANGE,
        LEVELS_RANGE,
        NORMALIZATIONS,
        RATIO_EPS_RANGE,
        WIDTH_MULT_RANGE,
    )

    def bounded(kind: str, low_high: tuple[float, float]) -> dict[str, Any]:
        return {"type": kind, "minimum": low_high[0], "maximum": low_high[1]}

    return {
        "type": "object",
        "required": ["class_path"],
        "additionalProperties": False,
        "properties": {
            "class_path": {"enum": list(CLASS_PATHS)},
            "init_args": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "levels": bounded("integer", LEVELS_RANGE),
                    "width_mult": bounded("number", WIDTH_MULT_RANGE),
                    "in_channels": bounded("integer", IN_CHANNELS_RANGE),
                    "normalization": {"enum": list(NORMALIZATIONS)},
                    "ratio_eps": bounded("number", RATIO_EPS_RANGE),
                },
            },
        },
    }


def validate(record: Any, source: str | os.PathLike) -> dict[str, Any]:
    """The ``init_args`` of :class:`PConvUNet` that the record of ``source`` asks for (``{}``,
    the default network, for None), after checking it against :func:`schema`.

    Raises :class:`CheckpointError` with one line naming ``source``, the key and the value.
    """
    import jsonschema

    if record is None:
        return {}
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema()).iter_errors(record)
    )
    if error is None:
        args = dict(record.get("init_args") or {})
        bad = [f"{k}={v}" for k, v in args.items() if isinstance(v, float) and not math.isfinite(v)]
        if not bad:
            # JSON Schema counts 7.0 as an integer; the network needs an int.
            return {k: int(v) if isinstance(v, float) and k in ("levels", "in_channels") else v
                    for k, v in args.items()}  # fmt: skip
        where, message = "init_args", f"{', '.join(bad)} is not a finite number"
    else:
        where = ".".join(map(str, error.absolute_path)) or "the record"
        message = error.message
        if len(message) > 200:
            message = message[:200] + "…"
    raise CheckpointError(
        f"{source} describes no pconv network we can build ({where}: {message}); only "
        "PConvUNet, with its arguments in the ranges of its docstring, is accepted"
    )


def expected_shapes(init_args: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in the state dict of ``PConvUNet(**init_args)``, from a
    network built on the meta device (no memory allocated, no weights initialised)."""
    import torch

    from pconv.nn.unet import PConvUNet

    with torch.device("meta"):
        net = PConvUNet(**init_args)
    return {name: tuple(tensor.shape) for name, tensor in net.state_dict().items()}


def check_shapes(
    init_args: dict[str, Any], shapes: dict[str, tuple[int, ...]], source: str | os.PathLike
) -> None:
    """Raise :class:`CheckpointError` unless ``shapes`` (name -> shape of the tensors a
    file holds) are exactly those of the network ``init_args`` describe."""
    expected = expected_shapes(init_args)
    missing = sorted(expected.keys() - shapes.keys())
    unexpected = sorted(shapes.keys() - expected.keys())
    wrong = [
        f"{name} {list(shapes[name])} (expected {list(expected[name])})"
        for name in expected.keys() & shapes.keys()
        if tuple(shapes[name]) != expected[name]
    ]
    problems = [
        f"{label}: {', '.join(sorted(names)[:SHOWN])}{' …' if len(names) > SHOWN else ''}"
        for label, names in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
        if names
    ]
    if problems:
        described = ", ".join(f"{k}={v}" for k, v in init_args.items()) or "the defaults"
        raise CheckpointError(
            f"{source}: its tensors do not fit the network its architecture describes "
            f"(PConvUNet with {described}; {'; '.join(problems)}); the file is damaged or its "
            "architecture record belongs to another file"
        )


def build(init_args: dict[str, Any]) -> PConvUNet:
    """A fresh network from checked ``init_args`` (:func:`validate`)."""
    from pconv.nn.unet import PConvUNet

    return PConvUNet(**init_args)
