import albumentations as A
import cv2
import numpy as np
import pytest
import torch

from pconv.data.transforms import Photometric, eval_transform, to_tensor, train_transform


def test_train_crops_any_image_to_the_training_size(photos):
    transform = train_transform(96, seed=0)
    odd = [photos["coffee"], photos["coffee"][:3, :3], cv2.resize(photos["coffee"], (2000, 20))]
    for image in odd:
        out = transform(image=image)["image"]
        assert out.shape == (96, 96, 3) and out.dtype == np.uint8
    crops = [transform(image=photos["coffee"])["image"] for _ in range(4)]
    assert len({c.tobytes() for c in crops}) == 4  # random


def test_train_crops_come_from_the_photo_and_flip_sometimes(photos):
    """Full-area crops (scale 1, ratio of the photo) are the resized photo or its mirror."""
    image = photos["astronaut"][:128, :128]
    transform = train_transform(64, crop_scale=(1.0, 1.0), seed=1)
    resized = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA).astype(int)
    flips = []
    for _ in range(12):
        out = transform(image=image)["image"].astype(int)
        straight = np.abs(out - resized).mean()
        mirrored = np.abs(out - resized[:, ::-1]).mean()
        assert min(straight, mirrored) < 2
        flips.append(mirrored < straight)
    assert 0 < sum(flips) < len(flips)


def test_eval_is_shorter_side_resize_then_centre_crop(photos):
    image = photos["coffee"]  # 107×160
    out = eval_transform(64)(image=image)["image"]
    height, width = image.shape[:2]
    new_width = round(width * 64 / height)
    resized = cv2.resize(image, (new_width, 64), interpolation=cv2.INTER_AREA)
    left = (new_width - 64) // 2
    assert np.abs(out.astype(int) - resized[:, left : left + 64]).max() <= 1
    assert np.array_equal(out, eval_transform(64)(image=image)["image"])


def test_to_tensor_is_chw_float_in_unit_range():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 14
    tensor = to_tensor(image)
    assert tensor.shape == (3, 2, 3) and tensor.dtype == torch.float32
    assert torch.equal(tensor[1, 0, 2], torch.tensor(image[0, 2, 1] / 255.0, dtype=torch.float32))
    assert tensor.min() >= 0 and tensor.max() <= 1


def test_photometric_changes_colours_not_the_crop(photos):
    """Same seed, same crop: the jitter only changes colours; without it nothing changes."""
    image = photos["astronaut"]
    plain = train_transform(64, crop_scale=(1.0, 1.0), seed=3)
    assert not any(isinstance(t, A.ColorJitter) for t in plain.transforms)
    jitter = Photometric(brightness=0.5, contrast=0.5, saturation=0.8, hue=0.2)
    coloured = train_transform(64, crop_scale=(1.0, 1.0), seed=3, photometric=jitter)
    hue_shifts, edges = [], []
    for _ in range(6):
        a, b = plain(image=image)["image"], coloured(image=image)["image"]
        hue_a = cv2.cvtColor(a, cv2.COLOR_RGB2HSV)[..., 0].astype(int)
        hue_b = cv2.cvtColor(b, cv2.COLOR_RGB2HSV)[..., 0].astype(int)
        hue_shifts.append(np.abs(hue_a - hue_b).mean())
        # the same geometry: strong edges stay at the same pixels
        grad = [np.abs(np.diff(x.astype(int).mean(2), axis=1)) for x in (a, b)]
        edges.append(np.corrcoef(grad[0].ravel(), grad[1].ravel())[0, 1])
    assert max(hue_shifts) > 5 and min(edges) > 0.8


@pytest.mark.parametrize("key", ["brightness", "contrast", "saturation", "hue"])
def test_photometric_ranges_are_checked_by_the_config_parser(key):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--jitter", type=Photometric)
    assert parser.parse_args([f"--jitter.{key}=0.5"]).jitter[key] == 0.5
    with pytest.raises(Exception, match="does not conform"):
        parser.parse_args([f"--jitter.{key}=1.5"])
