"""mmagic's PConv weights as our :class:`~pconv.nn.unet.PConvUNet`: :func:`convert`.

OpenMMLab's mmagic (formerly mmediting) trains the paper's network as ``PConvEncoderDecoder``
(``mmagic/models/editors/pconv/``). Read from their encoder, decoder and partial
convolution, with M = 1 valid (their data's mask is 1 = hole; the inpaintor passes 1 - mask):

- input: the image scaled to [-1, 1] (0…255 with mean = std = 127.5, i.e. 2x - 1), the mask
  repeated over the 3 image channels; output y, the image (y + 1) / 2;
- encoder ``enc1``…``encL``: 7×7/64, 5×5/128, 5×5/256, then 3×3/512, stride 2; each a partial
  convolution, BatchNorm (all but ``enc1``, whose convolution has a bias instead), ReLU;
- decoder ``decL``…``dec1``: nearest ×2 of features and mask, concatenated with the encoder
  output one level up (``dec1``: the input image and mask), 3×3 partial convolution, BN and
  LeakyReLU(0.2); ``dec1`` (3 channels) has a bias, no BN and no activation;
- partial convolution: x' = W^T (X ⊙ M) · sum(1) / (sum(M) + 1e-8) + b where sum(M) > 0,
  x' = 0 elsewhere; m' = min(sum(M), 1), one equal channel per output channel.

That is the paper's network with ``normalization="symmetric"`` and ``ratio_eps=1e-8`` (see
:mod:`pconv.nn.unet`), ``width_mult=1`` and ``levels=L``; their tensors map one to one:

- ``encoder.enc{i}.conv.weight|bias`` and ``encoder.enc{i}.bn.*`` → ``encoder.{i-1}.…``;
- ``decoder.dec{i}.…`` → ``decoder.{L-i}.…`` (our decoder runs from the deepest level up);
- ``….conv.weight_mask_updater``, their all-ones counting kernel, is checked and dropped.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from pconv.weights.architecture import CLASS_PATHS, build, check_shapes, validate
from pconv.weights.checkpoints import load_state
from pconv.weights.errors import CheckpointError

if TYPE_CHECKING:
    import torch

    from pconv.nn.unet import PConvUNet

#: Their network in our architecture keys (``levels`` comes from the file).
ARCHITECTURE = {
    "width_mult": 1.0,
    "in_channels": 3,
    "normalization": "symmetric",
    "ratio_eps": 1e-8,
}
#: Where their encoder-decoder's tensors start: the inpaintor's ``generator.``, or nothing
#: for a bare ``PConvEncoderDecoder`` state dict.
_FIRST = "encoder.enc1.conv.weight"
_NAME = re.compile(r"^(encoder\.enc|decoder\.dec)(\d+)\.(conv|bn)\.(\w+)$")
_UPDATER = "weight_mask_updater"


def their_state(checkpoint: dict[str, Any], source: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``PConvEncoderDecoder`` tensors of an mmagic checkpoint (``{"state_dict": …}``
    with the inpaintor's ``generator.`` prefix, or a bare state dict), without the prefix."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    first = [k for k in state or {} if isinstance(k, str) and k.endswith(_FIRST)]
    if not first:
        raise CheckpointError(
            f"{source} is not an mmagic PConv checkpoint (no '…{_FIRST}' tensor); use the "
            "files listed in mmagic's configs/partial_conv/README.md"
        )
    prefix = first[0].removesuffix(_FIRST)
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def convert_state(
    state: dict[str, torch.Tensor], source: str | os.PathLike
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(our ``init_args``, our state dict) for their ``PConvEncoderDecoder`` state dict.

    Raises :class:`CheckpointError` for a tensor that has no place in our network or a
    counting kernel that is not their multi-channel all-ones one."""
    levels = sum(1 for name in state if re.fullmatch(r"encoder\.enc\d+\.conv\.weight", name))
    ours: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        match = _NAME.match(name)
        if not match or not 1 <= int(match.group(2)) <= levels:
            raise CheckpointError(f"{source}: tensor {name} has no counterpart in PConvUNet")
        part, index, layer, kind = match.groups()
        level = int(index)
        if kind == _UPDATER:
            weight = state.get(name.replace(_UPDATER, "weight"))
            if weight is None or tensor.shape != weight.shape or not bool((tensor == 1).all()):
                raise CheckpointError(
                    f"{source}: {name} is not the all-ones multi-channel counting kernel of "
                    "mmagic's published PConv, so its function is not ours"
                )
            continue
        position = level - 1 if part == "encoder.enc" else levels - level
        ours[f"{part.split('.')[0]}.{position}.{layer}.{kind}"] = tensor
    return {"levels": levels, **ARCHITECTURE}, ours


def convert(checkpoint: dict[str, Any], source: str | os.PathLike) -> PConvUNet:
    """Our network computing what mmagic's network in ``checkpoint`` computes, in eval mode;
    the shapes are compared before anything is built."""
    args, state = convert_state(their_state(checkpoint, source), source)
    args = validate({"class_path": CLASS_PATHS[0], "init_args": args}, source)
    check_shapes(args, {name: tuple(tensor.shape) for name, tensor in state.items()}, source)
    net = build(args)
    load_state(net, state, source)
    return net.eval()
