import numpy as np
import pytest
import skimage.data

from pconv.data.samples import PHOTO_NAMES, SAMPLE_NAMES, sample_image, sample_source


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
    assert source.names == PHOTO_NAMES
    assert source.name(1) == f"skimage.data.{PHOTO_NAMES[1]}"
    assert np.array_equal(source.load(1), getattr(skimage.data, PHOTO_NAMES[1])())


def test_unknown_sample_and_read_only():
    with pytest.raises(ValueError, match="unknown sample 'lena'"):
        sample_image("lena")
    with pytest.raises(ValueError, match="read-only"):
        sample_image("coffee")[0, 0, 0] = 1


def test_photos_split_by_name_into_disjoint_train_and_held_out_sets():
    from pconv.data.sources import open_image_source

    train = open_image_source("samples", split="train").names
    held_out = open_image_source("samples", split="val").names
    assert set(train).isdisjoint(held_out) and len(held_out) >= 2
    assert open_image_source("samples", split="test").names == held_out
    assert open_image_source("samples", split="heldout").names == held_out
    assert sorted(sample_source().names) == sorted(train + held_out)  # no split: every photo
    # the non-photographic images stay a named source, in no photo split
    other = sample_source("other").names
    assert set(other) == {"hubble_deep_field", "immunohistochemistry", "retina"}
    assert set(other).isdisjoint(train + held_out)
    # the two views of the stereo pair would leak the scene into the held-out set
    assert "motorcycle" in train and not any(n.startswith("motorcycle") for n in held_out)


def test_unknown_sample_split_is_a_data_source_error():
    from pconv.data.images import DataSourceError

    with pytest.raises(DataSourceError, match="unknown split 'holdout' of the sample photos"):
        sample_source("holdout")
