"""Frozen VGG-16 feature extractor for the perceptual and style losses."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from pconv.nn.unet import IMAGENET_MEAN, IMAGENET_STD
from pconv.weights.errors import WeightsUnavailableError
from pconv.weights.pretrained import fetch_pretrained

#: Indices of pool1, pool2 and pool3 in torchvision's ``vgg16().features``.
POOL_INDICES = (4, 9, 16)


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's VGG-16 ImageNet weights from the torch cache, fetched on first use
    (``pconv weights vgg16`` fetches them ahead, e.g. on a cluster's login node)."""
    try:
        path = fetch_pretrained("vgg16")
    except WeightsUnavailableError as error:
        raise WeightsUnavailableError(
            f"{error}; or pass a local file as the VGG weights "
            "(model.loss.vgg_weights=/path/vgg16.pth)"
        ) from None
    return torch.load(path, map_location="cpu", weights_only=True)


def _file_state_dict(path: str) -> dict[str, torch.Tensor]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsUnavailableError(
            f"VGG-16 weights file {file} does not exist; pass 'imagenet', None or a path to "
            "torchvision's vgg16-397923af.pth"
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and torch errors have no common base class
        raise WeightsUnavailableError(
            f"VGG-16 weights file {file} is unreadable ({type(error).__name__}); pass "
            "model.loss.vgg_weights=imagenet, null or a path to torchvision's vgg16-397923af.pth"
        ) from None
    # Accept a whole torchvision vgg16 state dict or just its ``features`` part.
    return {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("class")}


class VGG16Features(nn.Module):
    """VGG-16 activations at pool1, pool2 and pool3.

    Args:
        weights: ``"imagenet"`` (torchvision's weights through its usual cache), a path to a
            local weights file, or ``None`` for a random initialisation (tests only).

    ``forward(image) -> [pool1, pool2, pool3]`` with ``image`` N×3×H×W in [0, 1]; the
    features are N×64×H/2×W/2, N×128×H/4×W/4 and N×256×H/8×W/8.

    The extractor is frozen: its parameters never take gradients and it stays in eval mode
    whatever ``train()`` is called with.
    """

    def __init__(self, weights: str | None = "imagenet") -> None:
        super().__init__()
        # Only the layers up to pool3 are built: VGG-16's classifier alone is 120M parameters.
        self.features = make_layers(cfgs["D"])[: POOL_INDICES[-1] + 1]
        if weights == "imagenet":
            state = _imagenet_state_dict()
            state = {k.removeprefix("features."): v for k, v in state.items()}
        elif weights is not None:
            state = _file_state_dict(weights)
        if weights is not None:
            missing = [k for k in self.features.state_dict() if k not in state]
            if missing:
                raise WeightsUnavailableError(
                    f"VGG-16 weights {weights} lack {', '.join(missing)}; expected a state dict "
                    "of torchvision's vgg16 (or of its features)"
                )
            self.features.load_state_dict({k: state[k] for k in self.features.state_dict()})
        self.features.requires_grad_(False)
        self.register_buffer(
            "mean", torch.tensor(IMAGENET_MEAN).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, -1, 1, 1), persistent=False)
        super().train(False)

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        pools = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in POOL_INDICES:
                pools.append(x)
        return pools
