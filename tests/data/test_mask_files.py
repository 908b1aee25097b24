import cv2
import numpy as np
import pytest

from pconv.data.images import DataSourceError
from pconv.data.mask_files import MaskFileError, MaskFileSource, load_mask

SIDE = 128


def square_hole_mask(value_valid: int = 255, dtype=np.uint8) -> np.ndarray:
    """A SIDE×SIDE file image: valid everywhere except a black 32×32 square at (48, 48)."""
    image = np.full((SIDE, SIDE), value_valid, dtype)
    image[48:80, 48:80] = 0
    return image


def expected_valid() -> np.ndarray:
    return (square_hole_mask() > 0).astype(np.uint8)


@pytest.fixture
def mask_dir(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), square_hole_mask())
    return tmp_path


def test_black_is_hole_and_threshold_is_60_percent(tmp_path):
    image = square_hole_mask()
    image[0, :10] = 150  # 150 < 0.6 * 255 = 153: hole
    image[1, :10] = 160  # valid
    cv2.imwrite(str(tmp_path / "m.png"), image)
    mask = load_mask(tmp_path / "m.png")
    expected = expected_valid()
    expected[0, :10] = 0
    assert np.array_equal(mask, expected)


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("zero_one.png", square_hole_mask(value_valid=1)),
        ("deep.png", square_hole_mask(value_valid=65535, dtype=np.uint16)),
        ("colour.png", np.repeat(square_hole_mask()[:, :, None], 3, axis=2)),
    ],
)
def test_other_value_ranges_are_understood(tmp_path, name, image):
    cv2.imwrite(str(tmp_path / name), image)
    assert np.array_equal(load_mask(tmp_path / name), expected_valid())


def test_without_augmentation_files_are_resized_to_the_request(mask_dir):
    source = MaskFileSource(mask_dir, augment=False)
    mask = source(np.random.default_rng(0), 64, 96)
    assert mask.shape == (64, 96) and mask.dtype == np.uint8
    # the 32×32 hole of 128×128 keeps its relative size: 1/16 of the image
    assert abs((mask == 0).mean() - 1 / 16) < 0.01


def test_augmentation_dilates_holes_and_stays_binary(mask_dir):
    no_motion = MaskFileSource(mask_dir, max_rotation=0, max_translation=0, crop_scale=(1, 1))
    mask = no_motion(np.random.default_rng(0), SIDE, SIDE)
    hole = mask == 0
    assert hole[expected_valid() == 0].all()  # the original hole is still hole
    grown = hole.sum() - (expected_valid() == 0).sum()
    # a kernel of 9..49 px adds a ring of 4..24 px around the 32×32 square
    assert grown + 16 >= (32 + 8) ** 2 - 32**2 and grown <= (32 + 48) ** 2 - 32**2

    moving = MaskFileSource(mask_dir)
    rng = np.random.default_rng(1)
    masks = [moving(rng, 64, 64) for _ in range(8)]
    assert all(set(np.unique(m)) <= {0, 1} and m.shape == (64, 64) for m in masks)
    assert len({m.tobytes() for m in masks}) == len(masks)


def test_bad_mask_files_are_rejected_naming_the_file(tmp_path):
    (tmp_path / "garbage.png").write_bytes(b"not a png")
    with pytest.raises(MaskFileError, match=r"mask file .*garbage.png cannot be read"):
        load_mask(tmp_path / "garbage.png")
    cv2.imwrite(str(tmp_path / "black.png"), np.zeros((SIDE, SIDE), np.uint8))
    with pytest.raises(MaskFileError, match=r"black.png has no valid pixel.*inverted"):
        load_mask(tmp_path / "black.png")
    cv2.imwrite(str(tmp_path / "tiny.png"), np.full((8, 300), 255, np.uint8))
    with pytest.raises(MaskFileError, match=r"tiny.png is 300x8 pixels"):
        load_mask(tmp_path / "tiny.png")
    cv2.imwrite(str(tmp_path / "float.tiff"), np.ones((SIDE, SIDE), np.float32))
    with pytest.raises(MaskFileError, match=r"float.tiff has pixel type float32"):
        load_mask(tmp_path / "float.tiff")


def test_white_hole_sets_can_be_inverted(tmp_path):
    cv2.imwrite(str(tmp_path / "w.png"), 255 - square_hole_mask())
    assert np.array_equal(load_mask(tmp_path / "w.png", invert=True), expected_valid())


def test_missing_or_empty_mask_dir(tmp_path):
    with pytest.raises(DataSourceError, match=f"mask folder {tmp_path / 'x'} does not exist"):
        MaskFileSource(tmp_path / "x")
    with pytest.raises(DataSourceError, match=f"no mask images .* found under {tmp_path}"):
        MaskFileSource(tmp_path)
