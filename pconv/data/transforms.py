"""albumentations 2.0.x pipelines from an RGB uint8 photo to the training/evaluation crop.

Output convention (DESIGN.md): float32 tensors 3×H×W in [0, 1] RGB. ImageNet mean and std
are *not* applied here: the networks and the VGG loss standardise their own inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import numpy as np
import torch
from jsonargparse.typing import ClosedUnitInterval, restricted_number_type

#: Default area range of the random crop. Smaller crops than a quarter of the photo are
#: upscaled so much that the model would learn to inpaint blur.
TRAIN_CROP_SCALE = (0.25, 1.0)
#: Aspect-ratio range of the random crop before it is resized to a square.
TRAIN_CROP_RATIO = (3 / 4, 4 / 3)
FLIP_PROBABILITY = 0.5
_UINT8_MAX = 255.0
#: A hue shift as a fraction of the colour wheel: half of it reaches every hue.
HueShift = restricted_number_type("HueShift", float, [(">=", 0), ("<=", 0.5)])
#: A crop's share of the photo's area.
AreaFraction = restricted_number_type("AreaFraction", float, [(">", 0), ("<=", 1)])


@dataclass(frozen=True)
class Photometric:
    """Random colour changes of training crops (albumentations' ``ColorJitter``), so that a
    small photo set does not teach the network its palette. Brightness, contrast and
    saturation are multiplied by a factor drawn from [1 - x, 1 + x]; the hue is shifted by up
    to ``hue`` of the colour wheel. All zero (the default): no change."""

    brightness: ClosedUnitInterval = 0.0
    contrast: ClosedUnitInterval = 0.0
    saturation: ClosedUnitInterval = 0.0
    hue: HueShift = 0.0


NO_PHOTOMETRIC = Photometric()


def train_transform(
    size: int,
    crop_scale: tuple[float, float] = TRAIN_CROP_SCALE,
    seed: int | None = None,
    photometric: Photometric = NO_PHOTOMETRIC,
) -> A.Compose:
    """Random resized crop to ``size``×``size`` (small photos are upscaled) + horizontal flip,
    then the ``photometric`` colour changes (none by default).

    Downscaling uses area interpolation (no aliasing), upscaling bilinear.
    """
    steps = [
        A.RandomResizedCrop(
            size=(size, size),
            scale=crop_scale,
            ratio=TRAIN_CROP_RATIO,
            area_for_downscale="image",
        ),
        A.HorizontalFlip(p=FLIP_PROBABILITY),
    ]
    if photometric != NO_PHOTOMETRIC:
        p = photometric
        steps.append(A.ColorJitter(p.brightness, p.contrast, p.saturation, p.hue, p=1.0))
    return A.Compose(steps, seed=seed)


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
