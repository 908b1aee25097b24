"""Robust image reading and the file-based image sources.

Every reader returns an H×W×3 ``uint8`` RGB array. Odd files are converted, not rejected:
grayscale and palette images are expanded to RGB; CMYK is converted to RGB; 16-bit images are
scaled to 8 bits (``v / 257``, so 65535 maps to 255); float images are clipped to [0, 1] and
scaled; **transparent pixels are composited onto white** (dropping alpha would expose whatever
colour the transparent pixels happen to store, often black). Files that cannot be decoded,
including truncated ones, raise :class:`UnreadableImageError` naming the file.

An *image source* is a sized collection of images: ``len(source)``, ``source.name(i)`` and
``source.load(i, min_size)``. This module has the file-based ones (:func:`image_folder`,
:func:`file_list`); :func:`pconv.data.sources.open_image_source` builds any kind from a
config ``(source, root, split)``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pconv.data.file_index import FileIndex, read_list, scan_folder, walk_files

#: File name endings scanned for in image folders (compared lower-case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif")
#: Reduced JPEG decoding factors OpenCV offers, largest first, with their flags.
_JPEG_REDUCTIONS = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)
_JPEG_MAGIC = b"\xff\xd8"
_UINT16_TO_UINT8 = 257.0
_UINT8_MAX = 255
_WHITE = 255.0
#: A dataset gives up after this many unreadable images in a row (a broken source, not noise).
MAX_CONSECUTIVE_SKIPS = 32

# OpenCV prints "[ WARN] ... grfmt_png.cpp ..." and "[ERROR] ..." lines straight to stderr
# for a corrupt file, before our own one line that names it: every image pconv decodes goes
# through this package, which reports each bad file itself.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


class UnreadableImageError(OSError):
    """An image file (or byte string) that cannot be decoded; ``path`` names it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read image {path}: {reason}")
        self.path = path
        self.reason = reason


class UnreadableImageWarning(UserWarning):
    """Unreadable files left out (``pconv prepare``) or skipped by a stage."""


class DataSourceError(ValueError):
    """An image source that is missing, empty or misconfigured."""


def read_image(path: str | os.PathLike, min_size: int | None = None) -> np.ndarray:
    """Read an image file as H×W×3 uint8 RGB.

    With ``min_size``, a JPEG much larger than needed is decoded at 1/2, 1/4 or 1/8 scale,
    keeping its shorter side at least ``min_size`` (much faster for large photos).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UnreadableImageError(str(path), error.strerror or str(error)) from error
    return decode_image(data, str(path), min_size)


def decode_image(
    data: bytes | memoryview, name: str = "<bytes>", min_size: int | None = None
) -> np.ndarray:
    """Decode encoded image bytes as H×W×3 uint8 RGB (see :func:`read_image`)."""
    buffer = np.frombuffer(data, np.uint8)
    if buffer[: len(_JPEG_MAGIC)].tobytes() == _JPEG_MAGIC:
        # JPEG has no alpha and is 8-bit: decode straight to colour, reduced when possible.
        image = cv2.imdecode(buffer, _jpeg_flag(data, min_size))
    else:
        # Keep alpha and 16-bit samples so they can be converted properly below.
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    if image is None:
        # OpenCV refuses truncated files and some formats and modes; PIL decides.
        return _decode_with_pil(data, name)
    return to_rgb8(image, bgr=True, name=name)


def _jpeg_flag(data: bytes | memoryview, min_size: int | None) -> int:
    if min_size is None:
        return cv2.IMREAD_COLOR
    try:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            shorter = min(header.size)
    except (OSError, ValueError):
        return cv2.IMREAD_COLOR
    for factor, flag in _JPEG_REDUCTIONS:
        if shorter // factor >= min_size:
            return flag
    return cv2.IMREAD_COLOR


def _decode_with_pil(data: bytes | memoryview, name: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I", "I;16", "I;16B", "I;16L"):
                array = np.clip(np.asarray(image), 0, np.iinfo(np.uint16).max).astype(np.uint16)
            elif image.mode == "F":
                array = np.asarray(image)
            elif image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                array = np.asarray(image.convert("RGBA"))
            else:
                array = np.asarray(image.convert("RGB"))
    except UnidentifiedImageError as error:  # its message names the BytesIO, not the file
        raise UnreadableImageError(name, "not an image format OpenCV or PIL can decode") from error
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImageError(name, str(error) or type(error).__name__) from error
    return to_rgb8(array, bgr=False, name=name)


def to_rgb8(image: np.ndarray, bgr: bool, name: str) -> np.ndarray:
    """Any decoded array (H×W, H×W×1..4; uint8, uint16 or float) to H×W×3 uint8 RGB."""
    if image.size == 0:
        raise UnreadableImageError(name, "empty image")
    if image.dtype == np.uint16:
        image = image / _UINT16_TO_UINT8
    elif np.issubdtype(image.dtype, np.floating):
        image = np.clip(np.nan_to_num(image), 0.0, 1.0) * _UINT8_MAX
    elif image.dtype != np.uint8:
        raise UnreadableImageError(name, f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels in (2, 4):  # colour or gray plus alpha: composite onto white
        alpha = image[:, :, -1:].astype(np.float32) / _UINT8_MAX  # values are 0..255 here
        image = image[:, :, :-1] * alpha + _WHITE * (1.0 - alpha)
        channels -= 1
    if image.dtype != np.uint8:
        image = np.rint(image).astype(np.uint8)
    # cv2.cvtColor: several times faster than numpy's copy of a reversed-stride view.
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if channels != 3:
        raise UnreadableImageError(name, f"unsupported channel count {image.shape[2]}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else np.ascontiguousarray(image)


class ImageSource(Protocol):
    """A sized, indexable collection of RGB images."""

    def __len__(self) -> int: ...

    def name(self, index: int) -> str:
        """A human-readable name of image ``index`` (its path for files)."""
        ...

    def load(self, index: int, min_size: int | None = None) -> np.ndarray:
        """Image ``index`` as H×W×3 uint8 RGB; raises :class:`UnreadableImageError`."""
        ...


class FileImageSource:
    """Images read from a list of file paths (see :func:`read_image`).

    ``paths`` is a :class:`~pconv.data.file_index.FileIndex` (what the folder and list
    sources build: two arrays, so forked DataLoader workers copy nothing) or any sequence.
    """

    def __init__(self, paths: FileIndex | Sequence[str | os.PathLike], description: str) -> None:
        self.paths = paths
        self.description = description

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description}, {len(self)} images)"

    def name(self, index: int) -> str:
        return os.fspath(self.paths[index])

    def load(self, index: int, min_size: int | None = None) -> np.ndarray:
        return read_image(self.paths[index], min_size)


def scan_images(root: str | os.PathLike) -> list[Path]:
    """All image files under ``root`` (recursive, following :data:`IMAGE_EXTENSIONS`), sorted
    by path components (:func:`~pconv.data.file_index.walk_files`).

    Sorting makes the order, and so every index, the same on every rank. For mask folders and
    other small trees; image sources use the cached, array-held :func:`image_folder`.
    """
    return [Path(root, name) for name in walk_files(root, IMAGE_EXTENSIONS)[0]]


def image_folder(root: str | os.PathLike, split: str | None = None) -> FileImageSource:
    """Images under ``root/split`` (ImageNet ``train/<wnid>/*.JPEG``, any ImageFolder) or,
    with ``split=None``, under ``root`` itself (a flat folder such as Places2 or CelebA-HQ).
    The listing is cached (:func:`~pconv.data.file_index.scan_folder`).
    """
    folder = Path(root, split) if split else Path(root)
    if not folder.is_dir():
        state = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DataSourceError(
            f"image folder {folder} {state}; set `root` to a folder of images"
            + (f" containing a '{split}' sub-folder" if split else "")
        )
    paths = scan_folder(folder, IMAGE_EXTENSIONS)
    if not len(paths):
        raise DataSourceError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}; "
            "put images there or point `root` at the folder that holds them"
        )
    return FileImageSource(paths, str(folder))


def file_list(list_path: str | os.PathLike) -> FileImageSource:
    """Images named in a text file, one path a line, relative to the list's own folder.

    Blank lines and lines starting with ``#`` are ignored.
    """
    list_path = Path(list_path)
    if not list_path.is_file():
        state = "is a folder, not a file" if list_path.exists() else "does not exist"
        raise DataSourceError(
            f"file list {list_path} {state}; set `root` to a text file with one image path per line"
        )

    def names() -> Iterable[str]:
        try:
            text = list_path.read_text()
        except UnicodeDecodeError:
            raise DataSourceError(
                f"file list {list_path} is not text (an image?); set `root` to a text file "
                "with one image path per line, or to a folder of images"
            ) from None
        lines = (line.strip() for line in text.splitlines())
        return (line for line in lines if line and not line.startswith("#"))

    paths = read_list(list_path, names)
    if not len(paths):
        raise DataSourceError(f"file list {list_path} names no images; add one path per line")
    return FileImageSource(paths, str(list_path))


class SkippingReader:
    """Loads images from a source, replacing an unreadable one by the next readable one.

    Every file passed over is queued as ``"<path>: <reason>"`` until :meth:`drain` hands the
    queue to the sample being built, so skips travel with the batches to the main process
    and are counted over all workers and ranks (:class:`pconv.training.callbacks.SkipReport`), not
    warned separately by each reader. More than ``max_consecutive`` unreadable images in a
    row raise :class:`UnreadableImageError`: that is a broken source, not a stray file.
    """

    def __init__(
        self,
        source: ImageSource,
        min_size: int | None = None,
        max_consecutive: int = MAX_CONSECUTIVE_SKIPS,
    ) -> None:
        self.source = source
        self.min_size = min_size
        self.max_consecutive = max_consecutive
        self.pending: list[str] = []

    def __len__(self) -> int:
        return len(self.source)

    def __call__(self, index: int) -> np.ndarray:
        """Image ``index`` (modulo the source size) or the next readable one after it."""
        attempts = min(len(self.source), self.max_consecutive)
        for offset in range(attempts):
            position = (index + offset) % len(self.source)
            try:
                return self.source.load(position, self.min_size)
            except UnreadableImageError as error:
                self.pending.append(f"{error.path}: {error.reason}")
        raise UnreadableImageError(
            self.source.name(index % len(self.source)),
            f"this and the next {attempts - 1} images of {self.source!r} are unreadable",
        )

    def drain(self) -> list[str]:
        """The files skipped since the last call, as ``"<path>: <reason>"``."""
        pending, self.pending = self.pending, []
        return pending


def drain(reader: object) -> list[str]:
    """``reader.drain()`` for readers that skip unreadable files, else ``[]``."""
    return reader.drain() if hasattr(reader, "drain") else []
