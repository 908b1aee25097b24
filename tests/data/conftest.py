"""Shared fixtures: real photos (skimage.data) written as image folders, and odd files."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2
import numpy as np
import pytest
import skimage.data

#: The paper's buckets, written out here so tests do not check the code against itself.
PAPER_BUCKETS = [(0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6)]
#: Photos are shrunk to this longer side to keep the tests fast.
PHOTO_SIDE = 160


def paper_bucket(ratio: float) -> int:
    """Index of the paper bucket holding ``ratio``, or -1."""
    return next((i for i, (lo, hi) in enumerate(PAPER_BUCKETS) if lo < ratio <= hi), -1)


def edge_has_hole(mask: np.ndarray) -> bool:
    """True when a hole (0) lies in the first/last row or column."""
    edges = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    return bool((edges == 0).any())


def small_photo(image: np.ndarray) -> np.ndarray:
    scale = PHOTO_SIDE / max(image.shape[:2])
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real colour photos, RGB uint8, longer side PHOTO_SIDE."""
    return {
        "astronaut": small_photo(skimage.data.astronaut()),
        "coffee": small_photo(skimage.data.coffee()),
        "chelsea": small_photo(skimage.data.chelsea()),
        "rocket": small_photo(skimage.data.rocket()),
    }


def write_rgb(path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]))


@pytest.fixture
def imagenet_root(tmp_path, photos):
    """ImageNet-style tree: root/train/<wnid>/*.JPEG (3 classes), root/val/<wnid>/*.JPEG."""
    root = tmp_path / "imagenet"
    names = list(photos)
    for split, chosen in (("train", names), ("val", names[:2])):
        for i, name in enumerate(chosen):
            write_rgb(root / split / f"n0000{i % 3}" / f"{name}.JPEG", photos[name])
    return root
