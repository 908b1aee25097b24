"""Image files at their own bit depth and with their alpha channel, for ``pconv inpaint``.

The training and evaluation code reads every image as 8-bit RGB (:mod:`pconv.data.images`).
A user's photo must come back as it went in, so this module keeps what that reading drops:

- **16-bit** samples stay 16-bit where the output format holds them (PNG, TIFF);
- the **alpha channel** is kept, unchanged, where the output format holds it (PNG, TIFF,
  WebP, BMP);
- grayscale photos come back as RGB with three equal channels (the network fills holes in
  colour).

Where the output format cannot keep the depth or the alpha, the conversion is done and
named in one note each (:func:`encode_photo`); it is never silent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pconv.data.images import IMAGE_EXTENSIONS, UnreadableImageError, decode_image, to_rgb8

#: Output formats that hold 16-bit samples, and those that hold an alpha channel.
DEPTH16_SUFFIXES = (".png", ".tif", ".tiff")
ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp", ".bmp")
#: Output formats whose encoding loses detail (OpenCV writes WebP losslessly by default).
LOSSY_SUFFIXES = (".jpg", ".jpeg")
_JPEG_MAGIC = b"\xff\xd8"
_UINT16_TO_UINT8 = 257
_GRAY_AND_ALPHA = 2


@dataclass
class Photo:
    """An image file's pixels as stored: ``colour`` H×W×3 RGB and ``alpha`` H×W (or None),
    both ``uint8`` (0..255) or both ``uint16`` (0..65535); ``rgb8`` is the H×W×3 uint8 RGB
    view the network sees (transparent pixels composited onto white, as in training)."""

    colour: np.ndarray
    alpha: np.ndarray | None
    rgb8: np.ndarray

    @property
    def colour8(self) -> np.ndarray:
        """``colour`` as H×W×3 uint8 (16-bit samples divided by 257 and rounded)."""
        return _to_uint8(self.colour)

    @property
    def alpha8(self) -> np.ndarray | None:
        """``alpha`` as H×W uint8, or None."""
        return None if self.alpha is None else _to_uint8(self.alpha)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    return np.rint(array / _UINT16_TO_UINT8).astype(np.uint8)


def read_photo(path: str | os.PathLike) -> Photo:
    """Read an image file keeping its depth and alpha; raises :class:`UnreadableImageError`
    naming the file. JPEGs (8-bit, no alpha) and files only PIL decodes are read as 8-bit RGB
    by :func:`pconv.data.images.decode_image`."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UnreadableImageError(str(path), error.strerror or str(error)) from error
    raw = None
    if not data.startswith(_JPEG_MAGIC) and data:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype not in (np.uint8, np.uint16) or raw.size == 0:
        rgb = decode_image(data, str(path))  # applies EXIF orientation; names bad files
        return Photo(rgb, None, rgb)
    rgb8 = to_rgb8(raw, bgr=True, name=str(path))
    if raw.ndim == 2:
        raw = raw[:, :, None]
    channels = raw.shape[2]
    alpha = raw[:, :, -1] if channels in (_GRAY_AND_ALPHA, 4) else None
    if channels <= _GRAY_AND_ALPHA:
        colour = np.repeat(raw[:, :, :1], 3, axis=2)
    else:
        colour = np.ascontiguousarray(raw[:, :, 2::-1])  # BGR(A) -> RGB
    return Photo(colour, alpha, rgb8)


def writable_suffix(path: str | os.PathLike) -> bool:
    """Whether ``path``'s file type is an image format that can be written."""
    suffix = Path(path).suffix.lower()
    return suffix in IMAGE_EXTENSIONS and cv2.haveImageWriter(f"x{suffix}")


def encode_photo(
    colour: np.ndarray, alpha: np.ndarray | None, path: str | os.PathLike
) -> tuple[bytes, list[str]]:
    """Encode H×W×3 RGB ``colour`` and H×W ``alpha`` (or None; both uint8 or both uint16) in
    the format of ``path``'s suffix; returns the bytes and one note per thing the format
    cannot keep (16-bit samples, alpha, lossless pixels)."""
    suffix = Path(path).suffix.lower()
    notes = []
    if colour.dtype == np.uint16 and suffix not in DEPTH16_SUFFIXES:
        notes.append(
            f"{path}: {suffix} cannot hold 16-bit samples, so they are written as 8-bit; "
            f"use {' or '.join(DEPTH16_SUFFIXES[:2])} to keep them"
        )
        colour, alpha = _to_uint8(colour), None if alpha is None else _to_uint8(alpha)
    if alpha is not None and suffix not in ALPHA_SUFFIXES:
        notes.append(
            f"{path}: {suffix} cannot hold an alpha channel, so it is left out; use .png to keep it"
        )
        alpha = None
    if suffix in LOSSY_SUFFIXES:
        notes.append(
            f"{path} is a lossy format: its valid pixels will not be bit-identical to the "
            "input; use .png to keep them"
        )
    bgr = colour[:, :, ::-1]
    pixels = bgr if alpha is None else np.dstack([bgr, alpha])
    ok, buffer = cv2.imencode(suffix, np.ascontiguousarray(pixels))
    if not ok:
        raise OSError(f"OpenCV could not encode {path} as {suffix}; use .png")
    return buffer.tobytes(), notes
