"""Masks read from image files: NVIDIA's irregular mask set or your own PNGs.

On disk black (0) is hole, as in NVIDIA's set; a pixel is valid when its value is at least
``threshold`` of the full range (the paper thresholds at 0.6). Files saved as 0/1 instead of
0/255 are recognised and scaled. Colour files are reduced to gray.

Training augmentation follows the paper: the holes are dilated by a random 9-49 px kernel,
the mask is rotated and translated at random, and a random crop is resized to the requested
size. Without augmentation a file is just resized (nearest neighbour) to the requested size.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pconv.data.images import (
    IMAGE_EXTENSIONS,
    MAX_CONSECUTIVE_SKIPS,
    DataSourceError,
    scan_images,
)
from pconv.data.masks import VALID

#: Fraction of the full value range above which a pixel is valid (the paper's 0.6).
PAPER_THRESHOLD = 0.6
#: Random hole dilation, kernel side in pixels of the mask file (inclusive range).
DILATION_RANGE = (9, 49)
#: Largest rotation, degrees, either way.
MAX_ROTATION = 180.0
#: Largest translation, as a fraction of the mask side, either way.
MAX_TRANSLATION = 0.25
#: Area range of the random crop, as a fraction of the mask.
CROP_SCALE = (0.5, 1.0)
#: Smaller files are rejected: resizing them would give blocky, meaningless holes.
MIN_MASK_SIDE = 16
_UINT8_MAX = 255
_UINT16_MAX = 65535
_JPEG_MAGIC = b"\xff\xd8"


class MaskFileError(ValueError):
    """A mask file that cannot be used; the message names the file."""


class MaskFileSource:
    """Masks from files: ``src(rng, height, width) -> H×W uint8`` (1 valid, 0 hole).

    An unreadable file (empty, truncated, not an image, inverted...) is passed over for the
    next one and queued as ``"<path>: <reason>"`` until :meth:`drain`, like unreadable
    images; more than ``MAX_CONSECUTIVE_SKIPS`` in a row raise :class:`MaskFileError`.

    Args:
        root: a folder scanned recursively for image files.
        augment: apply the paper's training augmentation (dilation, rotation, translation,
            crop); False only resizes, e.g. for a fixed test set.
        threshold: fraction of the value range at or above which a pixel is valid.
        invert: set for mask sets where white is hole.
        dilation_range, max_rotation, max_translation, crop_scale: augmentation ranges
            (see the module constants).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        augment: bool = True,
        threshold: float = PAPER_THRESHOLD,
        invert: bool = False,
        dilation_range: tuple[int, int] = DILATION_RANGE,
        max_rotation: float = MAX_ROTATION,
        max_translation: float = MAX_TRANSLATION,
        crop_scale: tuple[float, float] = CROP_SCALE,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataSourceError(
                f"mask folder {root} does not exist; set `mask_dir` to a folder of mask PNGs "
                "(black = hole), e.g. NVIDIA's irregular mask set"
            )
        self.paths = scan_images(root)
        if not self.paths:
            raise DataSourceError(
                f"no mask images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}; "
                "put mask PNGs (black = hole) there"
            )
        self.augment = augment
        self.threshold = threshold
        self.invert = invert
        self.dilation_range = dilation_range
        self.max_rotation = max_rotation
        self.max_translation = max_translation
        self.crop_scale = crop_scale
        self.pending: list[str] = []

    def __len__(self) -> int:
        return len(self.paths)

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A random mask file, augmented if configured, as an H×W uint8 mask."""
        start = int(rng.integers(len(self.paths)))
        for offset in range(min(len(self.paths), MAX_CONSECUTIVE_SKIPS)):
            index = (start + offset) % len(self.paths)
            try:
                return self.mask(index, height, width, rng if self.augment else None)
            except MaskFileError as error:
                self.pending.append(str(error))
        raise MaskFileError(
            f"mask file {self.paths[start]} and the {offset} after it are unreadable: "
            "check the files in mask_dir"
        )

    def drain(self) -> list[str]:
        """The mask files skipped since the last call, as ``"<path>: <reason>"``."""
        pending, self.pending = self.pending, []
        return pending

    def mask(
        self, index: int, height: int, width: int, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Mask file ``index`` as an H×W uint8 mask; augmented when ``rng`` is given."""
        mask = load_mask(self.paths[index], self.threshold, self.invert)
        if rng is not None:
            mask = self._augment(mask, rng)
            mask = _random_crop(mask, rng, self.crop_scale, height / width)
        return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)

    def _augment(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        low, high = self.dilation_range
        side = int(rng.integers(low, high + 1))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
        # Dilating the holes is eroding the valid region.
        mask = cv2.erode(mask, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=VALID)
        height, width = mask.shape
        angle = rng.uniform(-self.max_rotation, self.max_rotation)
        shift = rng.uniform(-self.max_translation, self.max_translation, 2) * (width, height)
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        matrix[:, 2] += shift
        # Pixels moved in from outside the file are valid: no hole appears from nowhere.
        return cv2.warpAffine(
            mask,
            matrix,
            (width, height),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=VALID,
        )


def load_mask(
    path: str | os.PathLike, threshold: float = PAPER_THRESHOLD, invert: bool = False
) -> np.ndarray:
    """Read a mask file as an H×W uint8 mask (1 valid, 0 hole); :class:`MaskFileError` if bad.

    The full range is that of the file's type (255 or 65535), or 1 for files that only hold
    0 and 1. A mask without a single valid pixel is rejected: it is almost surely inverted.
    """
    image = _decode(path)
    if min(image.shape[:2]) < MIN_MASK_SIDE:
        raise MaskFileError(
            f"mask file {path} is {image.shape[1]}x{image.shape[0]} pixels; masks need at least "
            f"{MIN_MASK_SIDE} on each side"
        )
    if image.ndim == 3:
        # Colour masks: any channel works for black-and-white files; alpha is ignored.
        image = image[:, :, :3].min(axis=2)
    if image.dtype == np.uint8:
        full = _UINT8_MAX
    elif image.dtype == np.uint16:
        full = _UINT16_MAX
    else:
        raise MaskFileError(f"mask file {path} has pixel type {image.dtype}; use 8- or 16-bit")
    if image.max() == 1:
        full = 1  # a 0/1 mask saved as an image
    mask = (image >= threshold * full).astype(np.uint8)
    if invert:
        mask = VALID - mask
    if not mask.any():
        raise MaskFileError(
            f"mask file {path} has no valid pixel (black = hole); is it inverted? "
            "set invert=True for sets where white is hole"
        )
    return mask  # already 1 valid / 0 hole


def _decode(path: str | os.PathLike) -> np.ndarray:
    """The pixels of a mask file as OpenCV reads them (IMREAD_UNCHANGED); JPEGs through PIL,
    which refuses truncated files (libjpeg would only print a warning and return gray)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise MaskFileError(f"mask file {path}: {error.strerror or error}") from None
    if data.startswith(_JPEG_MAGIC):
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                return np.asarray(image if image.mode in ("L", "RGB") else image.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as error:
            raise MaskFileError(f"mask file {path}: {error}") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if image is None:
        raise MaskFileError(f"mask file {path} cannot be read as an image")
    return image


def _random_crop(
    mask: np.ndarray, rng: np.random.Generator, scale: tuple[float, float], aspect: float
) -> np.ndarray:
    """A random crop of ``mask`` covering a ``scale`` fraction of it, with height/width
    ``aspect`` (clipped to the mask)."""
    height, width = mask.shape
    area = rng.uniform(*scale) * height * width
    crop_h = int(np.clip(round(np.sqrt(area * aspect)), 1, height))
    crop_w = int(np.clip(round(np.sqrt(area / aspect)), 1, width))
    top = int(rng.integers(height - crop_h + 1))
    left = int(rng.integers(width - crop_w + 1))
    return mask[top : top + crop_h, left : left + crop_w]
