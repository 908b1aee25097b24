"""The built-in sample set: real colour photographs shipped inside ``skimage.data``.

Only images stored in the scikit-image distribution are used, so nothing is downloaded
(several other ``skimage.data`` images need ``pooch`` and the network). Images are
H×W×3 uint8 RGB, from 300×451 to 1411×1411 pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import skimage.data

#: Sample name → loader returning an H×W×3 uint8 RGB photograph.
_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "coffee": skimage.data.coffee,
    "chelsea": skimage.data.chelsea,
    "rocket": skimage.data.rocket,
    "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],  # left view of the pair
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "retina": skimage.data.retina,
}
SAMPLE_NAMES: tuple[str, ...] = tuple(_LOADERS)


@cache
def sample_image(name: str) -> np.ndarray:
    """Sample photo ``name`` (one of :data:`SAMPLE_NAMES`) as H×W×3 uint8 RGB, read-only."""
    if name not in _LOADERS:
        raise ValueError(f"unknown sample {name!r}; valid: {', '.join(SAMPLE_NAMES)}")
    image = np.ascontiguousarray(_LOADERS[name]()[:, :, :3], dtype=np.uint8)
    image.setflags(write=False)  # cached and shared: nobody may change it in place
    return image


class SampleImageSource:
    """The sample photos as an image source (see :mod:`pconv.data.images`)."""

    def __init__(self, names: tuple[str, ...] = SAMPLE_NAMES) -> None:
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} skimage.data photos)"

    def name(self, index: int) -> str:
        return f"skimage.data.{self.names[index]}"

    def load(self, index: int, min_size: int | None = None) -> np.ndarray:
        """Photo ``index``; ``min_size`` is accepted for the interface and unused (in memory)."""
        return sample_image(self.names[index])


def sample_source() -> SampleImageSource:
    """All sample photos, in :data:`SAMPLE_NAMES` order."""
    return SampleImageSource()
