"""Losses."""

from pconv.losses.inpainting import TERMS, InpaintingLoss
from pconv.losses.vgg import VGG16Features, WeightsUnavailableError

__all__ = ["TERMS", "InpaintingLoss", "VGG16Features", "WeightsUnavailableError"]
