"""Classical inpainting baselines, run through the same evaluation code path as the network.

- ``telea``: OpenCV's fast marching method (Telea 2004), ``cv2.INPAINT_TELEA``.
- ``ns``: OpenCV's Navier–Stokes method (Bertalmio et al. 2001), ``cv2.INPAINT_NS``.
- ``mean``: every hole pixel gets the mean colour of the image's valid pixels; the floor any
  method should beat.

A method maps ``(image N×3×H×W float [0, 1], mask N×1×H×W float, 1 valid) -> output
N×3×H×W float [0, 1]`` like the network; only hole pixels of the output are ever used.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from pconv.utils.choices import BASELINE_NAMES

#: A method under evaluation: (image, mask) -> output, shapes as in the module docstring.
Method = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: Neighbourhood radius, pixels, of OpenCV's inpainting (the value of OpenCV's own examples).
INPAINT_RADIUS = 3
_UINT8_MAX = 255.0


def opencv_inpaint(image: np.ndarray, mask: np.ndarray, flags: int) -> np.ndarray:
    """``cv2.inpaint`` in our conventions: H×W×3 uint8 and H×W uint8 mask (1 valid) → uint8."""
    holes = (mask == 0).astype(np.uint8)
    return cv2.inpaint(image, holes, INPAINT_RADIUS, flags)


def mean_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Holes set to the per-channel mean of the valid pixels (mid-gray without any)."""
    valid = mask != 0
    colour = image[valid].mean(axis=0) if valid.any() else np.full(3, _UINT8_MAX / 2)
    out = image.copy()
    out[~valid] = np.rint(colour).astype(np.uint8)
    return out


def telea(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return opencv_inpaint(image, mask, cv2.INPAINT_TELEA)


def navier_stokes(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return opencv_inpaint(image, mask, cv2.INPAINT_NS)


#: Baseline name -> H×W×3 uint8 image, H×W uint8 mask (1 valid) -> H×W×3 uint8 output.
BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = dict(
    zip(BASELINE_NAMES, (telea, navier_stokes, mean_fill), strict=True)
)


def baseline_method(name: str) -> Method:
    """Baseline ``name`` (a key of :data:`BASELINES`) as a batched tensor :data:`Method`."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    fill = BASELINES[name]

    def method(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Evaluation images come from uint8 files, so this round trip is exact.
        images = (image * _UINT8_MAX).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        masks = (mask[:, 0] > 0.5).byte().cpu().numpy()
        out = np.stack(
            [fill(np.ascontiguousarray(i), m) for i, m in zip(images, masks, strict=True)]
        )
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(image) / _UINT8_MAX

    return method
