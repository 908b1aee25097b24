"""The built-in sample images: real photographs shipped inside ``skimage.data``, split by name.

Only images stored in the scikit-image distribution are used, so nothing is downloaded
(several other ``skimage.data`` images need ``pooch`` and the network). Images are
H×W×3 uint8 RGB, from 300×451 to 1411×1411 pixels.

The five colour photographs are split by name so that a model can be validated on photos it
never trained on; the colour images that are not photographs of scenes (a deep-sky survey,
a microscope slide, a retina scan) form their own set, for tests only:

- ``train``: astronaut, rocket, motorcycle (left view of the stereo pair);
- ``heldout`` (also under the names ``val`` and ``test``): chelsea, coffee;
- ``other``: hubble_deep_field, immunohistochemistry, retina.

With no split, a source holds every photograph (``train`` + ``heldout``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import skimage.data

from pconv.data.images import DataSourceError

#: Sample name → loader returning an H×W×3 uint8 RGB image.
_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "rocket": skimage.data.rocket,
    "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],  # left view of the pair
    "chelsea": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "retina": skimage.data.retina,
}
TRAIN_PHOTOS: tuple[str, ...] = ("astronaut", "rocket", "motorcycle")
HELDOUT_PHOTOS: tuple[str, ...] = ("chelsea", "coffee")
#: The natural colour photographs, training ones first.
PHOTO_NAMES: tuple[str, ...] = TRAIN_PHOTOS + HELDOUT_PHOTOS
#: Colour images that are not photographs of scenes: for tests, never for the demo.
OTHER_NAMES: tuple[str, ...] = ("hubble_deep_field", "immunohistochemistry", "retina")
SAMPLE_NAMES: tuple[str, ...] = PHOTO_NAMES + OTHER_NAMES
#: Split name → sample names (``val`` and ``test`` are the held-out photos).
SAMPLE_SPLITS: dict[str, tuple[str, ...]] = {
    "train": TRAIN_PHOTOS,
    "heldout": HELDOUT_PHOTOS,
    "val": HELDOUT_PHOTOS,
    "test": HELDOUT_PHOTOS,
    "other": OTHER_NAMES,
}


@cache
def sample_image(name: str) -> np.ndarray:
    """Sample image ``name`` (one of :data:`SAMPLE_NAMES`) as H×W×3 uint8 RGB, read-only."""
    if name not in _LOADERS:
        raise ValueError(f"unknown sample {name!r}; valid: {', '.join(SAMPLE_NAMES)}")
    image = np.ascontiguousarray(_LOADERS[name]()[:, :, :3], dtype=np.uint8)
    image.setflags(write=False)  # cached and shared: nobody may change it in place
    return image


class SampleImageSource:
    """Sample images as an image source (see :mod:`pconv.data.images`)."""

    def __init__(self, names: tuple[str, ...] = PHOTO_NAMES) -> None:
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self.names)})"

    def name(self, index: int) -> str:
        return f"skimage.data.{self.names[index]}"

    def load(self, index: int, min_size: int | None = None) -> np.ndarray:
        """Image ``index``; ``min_size`` is accepted for the interface and unused (in memory)."""
        return sample_image(self.names[index])


def sample_source(split: str | None = None) -> SampleImageSource:
    """The sample images of ``split`` (a key of :data:`SAMPLE_SPLITS`), or every photograph
    (:data:`PHOTO_NAMES`) when ``split`` is None."""
    if split is None:
        return SampleImageSource(PHOTO_NAMES)
    if split not in SAMPLE_SPLITS:
        raise DataSourceError(
            f"unknown split {split!r} of the sample photos; valid: {', '.join(SAMPLE_SPLITS)}"
        )
    return SampleImageSource(SAMPLE_SPLITS[split])
