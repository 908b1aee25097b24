"""albumentations 2.0.x pipelines from an RGB uint8 photo to the training/evaluation crop.

Output convention (DESIGN.md): float32 tensors 3×H×W in [0, 1] RGB. ImageNet mean and std
are *not* applied here: the networks and the VGG loss standardise their own inputs.
"""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch

#: Default area range of the random crop. Smaller crops than a quarter of the photo are
#: upscaled so much that the model would learn to inpaint blur.
TRAIN_CROP_SCALE = (0.25, 1.0)
#: Aspect-ratio range of the random crop before it is resized to a square.
TRAIN_CROP_RATIO = (3 / 4, 4 / 3)
FLIP_PROBABILITY = 0.5
_UINT8_MAX = 255.0


def train_transform(
    size: int, crop_scale: tuple[float, float] = TRAIN_CROP_SCALE, seed: int | None = None
) -> A.Compose:
    """Random resized crop to ``size``×``size`` (small photos are upscaled) + horizontal flip.

    Downscaling uses area interpolation (no aliasing), upscaling bilinear.
    """
    return A.Compose(
        [
            A.RandomResizedCrop(
                size=(size, size),
                scale=crop_scale,
                ratio=TRAIN_CROP_RATIO,
                area_for_downscale="image",
            ),
            A.HorizontalFlip(p=FLIP_PROBABILITY),
        ],
        seed=seed,
    )


def eval_transform(size: int) -> A.Compose:
    """Deterministic: resize the shorter side to ``size``, then take the central square."""
    return A.Compose(
        [
            A.SmallestMaxSize(max_size=size, area_for_downscale="image"),
            A.CenterCrop(height=size, width=size),
        ]
    )


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 RGB → 3×H×W float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(_UINT8_MAX)
