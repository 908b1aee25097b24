"""Data: masks, image sources, transforms, shards and the InpaintingDataModule.

litdata and skimage are imported only by the code paths that need them (shards, samples),
and Lightning only when the DataModule is asked for, so mask tools start quickly.
"""

import importlib

from pconv.data.buckets import (
    BUCKETS,
    NUM_BUCKETS,
    OUT_OF_RANGE,
    bucket_label,
    bucket_of,
    buckets_of,
)
from pconv.data.images import (
    DataSourceError,
    UnreadableImageError,
    UnreadableImageWarning,
    decode_image,
    read_image,
)
from pconv.data.mask_files import MaskFileError, MaskFileSource
from pconv.data.masks import (
    MASK_PRESETS,
    MaskGenerationError,
    StrokeMaskGenerator,
    bucketed_mask,
    eval_mask,
    hole_ratio,
    make_mask_generator,
    touches_border,
)
from pconv.data.sources import open_image_source


def __getattr__(name: str):
    if name == "InpaintingDataModule":
        return importlib.import_module("pconv.data.datamodule").InpaintingDataModule
    raise AttributeError(f"module 'pconv.data' has no attribute {name!r}")


__all__ = [
    "BUCKETS",
    "MASK_PRESETS",
    "NUM_BUCKETS",
    "OUT_OF_RANGE",
    "DataSourceError",
    "InpaintingDataModule",
    "MaskFileError",
    "MaskFileSource",
    "MaskGenerationError",
    "StrokeMaskGenerator",
    "UnreadableImageError",
    "UnreadableImageWarning",
    "bucket_label",
    "bucket_of",
    "buckets_of",
    "bucketed_mask",
    "decode_image",
    "eval_mask",
    "hole_ratio",
    "make_mask_generator",
    "open_image_source",
    "read_image",
    "touches_border",
]
