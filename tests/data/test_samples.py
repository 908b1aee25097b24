import numpy as np
import pytest
import skimage.data

from pconv.data.samples import SAMPLE_NAMES, sample_image, sample_source


def test_samples_are_colour_photos_loaded_offline():
    assert len(SAMPLE_NAMES) >= 6
    for name in SAMPLE_NAMES:
        image = sample_image(name)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        assert min(image.shape[:2]) >= 256
        # colour, not gray stored as RGB
        assert np.abs(image[..., 0].astype(int) - image[..., 2]).mean() > 5


def test_samples_match_skimage_data():
    assert np.array_equal(sample_image("astronaut"), skimage.data.astronaut())
    assert np.array_equal(sample_image("motorcycle"), skimage.data.stereo_motorcycle()[0])
    source = sample_source()
    assert len(source) == len(SAMPLE_NAMES)
    assert source.name(1) == f"skimage.data.{SAMPLE_NAMES[1]}"
    assert np.array_equal(source.load(1), getattr(skimage.data, SAMPLE_NAMES[1])())


def test_unknown_sample_and_read_only():
    with pytest.raises(ValueError, match="unknown sample 'lena'"):
        sample_image("lena")
    with pytest.raises(ValueError, match="read-only"):
        sample_image("coffee")[0, 0, 0] = 1
