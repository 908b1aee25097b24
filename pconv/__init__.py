"""pconv: image inpainting with partial convolutions (Liu et al., ECCV 2018)."""

import importlib
import os

# albumentations checks PyPI for updates on import unless told not to; never do that.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"

# Module paths of earlier versions (pconv.module, pconv.callbacks, ...) keep importing.
from pconv.utils import moved as _moved  # noqa: E402

_moved.install()

# The public names load on first use, so `import pconv` (and the CLI's start) stays quick.
_LAZY = {
    "PartialConv2d": "pconv.nn.partial_conv",
    "PConvUNet": "pconv.nn.unet",
    "InpaintingLoss": "pconv.losses.inpainting",
    "InpaintingModule": "pconv.training.module",
    "InpaintingDataModule": "pconv.data.datamodule",
    "Inpainter": "pconv.inference",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pconv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
