"""Layers and networks."""

from pconv.nn.partial_conv import PartialConv2d
from pconv.nn.unet import PConvUNet

__all__ = ["PConvUNet", "PartialConv2d"]
