"""Classical baselines: only hole pixels change; mean fill is the valid pixels' mean."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from pconv.evaluation.baselines import BASELINES, baseline_method


@pytest.fixture(scope="module")
def photo_and_mask():
    photo = cv2.resize(skimage.data.chelsea(), (80, 48), interpolation=cv2.INTER_AREA)
    mask = np.ones(photo.shape[:2], np.uint8)
    mask[10:30, 20:50] = 0
    return photo, mask


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_valid_pixels_are_untouched(name, photo_and_mask):
    photo, mask = photo_and_mask
    out = BASELINES[name](photo, mask)
    assert out.shape == photo.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[mask == 1], photo[mask == 1])


def test_mean_fill_is_the_mean_colour_of_valid_pixels(photo_and_mask):
    photo, mask = photo_and_mask
    out = BASELINES["mean"](photo, mask)
    expected = [round(photo[:, :, c][mask == 1].astype(float).mean()) for c in range(3)]
    assert (out[mask == 0] == expected).all()


def test_opencv_inpainting_fills_a_flat_region_flat():
    """A hole in a flat region is filled with the region's colour (within 2 levels)."""
    flat = np.full((32, 32, 3), (40, 120, 200), np.uint8)
    hole = np.ones((32, 32), np.uint8)
    hole[12:20, 12:20] = 0
    for name in ("telea", "ns"):
        assert np.abs(BASELINES[name](flat, hole).astype(int) - flat).max() <= 2


def test_tensor_method_matches_the_numpy_baseline(photo_and_mask):
    photo, mask = photo_and_mask
    image = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    out = baseline_method("telea")(image, torch.from_numpy(mask)[None, None].float())
    expected = BASELINES["telea"](photo, mask)
    np.testing.assert_array_equal((out[0] * 255).round().byte().permute(1, 2, 0).numpy(), expected)


def test_unknown_baseline_is_named():
    with pytest.raises(ValueError, match="'deepfill'"):
        baseline_method("deepfill")
