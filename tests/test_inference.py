"""``Inpainter`` and ``pconv inpaint`` on real photos at odd sizes, and every error path."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from photos import PHOTO_HEIGHT, PHOTO_WIDTH

from pconv.inference import Inpainter, main, pad_to_multiple
from pconv.utils.files import atomic_write
from pconv.weights import load_network

HEIGHT, WIDTH = PHOTO_HEIGHT, PHOTO_WIDTH


@pytest.fixture(scope="module")
def mask() -> np.ndarray:
    mask = np.ones((HEIGHT, WIDTH), np.uint8)
    mask[10:25, 30:60] = 0
    mask[40:, :5] = 0  # a hole on the border
    return mask


def write_rgb(path, image: np.ndarray) -> str:
    assert cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]))
    return str(path)


def read_rgb(path) -> np.ndarray:
    return cv2.imread(str(path))[:, :, ::-1]


def test_pad_to_multiple_reflects_like_numpy():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)
    padded = pad_to_multiple(x, 8)  # pads of 5 and 3: the 3-row side reflects twice
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (0, 5), (0, 3)), mode="reflect")
    np.testing.assert_array_equal(padded.numpy(), expected)
    assert pad_to_multiple(torch.ones(1, 1, 1, 3), 4).shape == (1, 1, 4, 4)  # 1 px: replicated


def test_numpy_call_changes_only_holes_and_uses_reflect_padding(
    inpainter, photo, mask, tiny_checkpoint
):
    out = inpainter(photo, mask)
    assert out.shape == photo.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[mask == 1], photo[mask == 1])
    # Independently: numpy reflect padding to 48×80, the bare network, crop, round.
    image = np.pad(photo, ((0, 3), (0, 13), (0, 0)), mode="reflect").astype(np.float32) / 255
    padded_mask = np.pad(mask, ((0, 3), (0, 13)), mode="reflect").astype(np.float32)
    net = load_network(tiny_checkpoint)
    with torch.no_grad():
        raw = net(
            torch.from_numpy(image).permute(2, 0, 1)[None],
            torch.from_numpy(padded_mask)[None, None],
        )
    expected = (raw[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()[:HEIGHT, :WIDTH]
    np.testing.assert_array_equal(out[mask == 0], expected[mask == 0])


def test_tensor_call_keeps_valid_pixels_and_shape(inpainter, photo, mask):
    image = torch.from_numpy(photo).permute(2, 0, 1).float() / 255
    out = inpainter(image, torch.from_numpy(mask)[None].float())
    assert out.shape == image.shape and out.dtype == image.dtype
    valid = torch.from_numpy(mask).bool().expand_as(image)
    assert torch.equal(out[valid], image[valid])
    assert out.min() >= 0 and out.max() <= 1
    batch = inpainter(
        image[None].repeat(2, 1, 1, 1), torch.from_numpy(mask)[None, None].repeat(2, 1, 1, 1)
    )
    assert batch.shape == (2, 3, HEIGHT, WIDTH)


def test_mismatched_array_sizes_are_refused(inpainter, photo, mask):
    with pytest.raises(ValueError, match="differs from image size"):
        inpainter(photo, mask[:-1])


def test_cli_on_one_file_writes_a_png_with_untouched_valid_pixels(
    tiny_checkpoint, photo, mask, tmp_path, capsys
):
    image = write_rgb(tmp_path / "photo.png", photo)
    cv2.imwrite(str(tmp_path / "mask.png"), mask * 255)
    out = tmp_path / "result" / "filled.png"
    assert main(["--ckpt", tiny_checkpoint, image, str(tmp_path / "mask.png"), "-o", str(out)]) == 0
    result = read_rgb(out)
    assert result.shape == photo.shape
    np.testing.assert_array_equal(result[mask == 1], photo[mask == 1])
    assert [p.name for p in out.parent.iterdir()] == ["filled.png"]  # no temporary left
    assert "wrote 1 image" in capsys.readouterr().out


def test_inverted_and_gray_masks(tiny_checkpoint, photo, mask, tmp_path, capsys):
    image = write_rgb(tmp_path / "photo.png", photo)
    cv2.imwrite(str(tmp_path / "mask.png"), mask * 255)
    cv2.imwrite(str(tmp_path / "inverted.png"), (1 - mask) * 255)
    gray = np.where(mask == 1, 200, 30).astype(np.uint8)  # non-binary: thresholded at 128
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    base = ["--ckpt", tiny_checkpoint, image]
    assert main([*base, str(tmp_path / "mask.png"), "-o", str(tmp_path / "a.png")]) == 0
    inverted = [*base, str(tmp_path / "inverted.png"), "-o", str(tmp_path / "b.png")]
    assert main([*inverted, "--mask-hole-value", "255"]) == 0
    assert main([*base, str(tmp_path / "gray.png"), "-o", str(tmp_path / "c.png")]) == 0
    reference = read_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "b.png"), reference)
    np.testing.assert_array_equal(read_rgb(tmp_path / "c.png"), reference)
    err = capsys.readouterr().err
    assert "gray.png is not binary" in err and "thresholded at 128" in err


def test_cli_on_matching_folders(tiny_checkpoint, mask, tmp_path):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir(), masks.mkdir()
    coffee = cv2.resize(skimage.data.coffee(), (WIDTH, HEIGHT))
    chelsea = cv2.resize(skimage.data.chelsea(), (31, 29))
    write_rgb(images / "coffee.jpg", coffee)
    write_rgb(images / "chelsea.png", chelsea)
    cv2.imwrite(str(masks / "coffee.png"), mask * 255)
    cv2.imwrite(
        str(masks / "chelsea.png"), np.pad(np.zeros((9, 11), np.uint8), 10, constant_values=255)
    )
    assert main(["--ckpt", tiny_checkpoint, str(images), str(masks), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["chelsea.png", "coffee.png"]
    assert read_rgb(out / "chelsea.png").shape == (29, 31, 3)


@pytest.fixture()
def files(photo, mask, tmp_path):
    """Paths of a good image and mask, a smaller mask, a corrupt image and an all-hole mask."""
    cv2.imwrite(str(tmp_path / "small.png"), mask[:-2] * 255)
    cv2.imwrite(str(tmp_path / "black.png"), mask * 0)
    cv2.imwrite(str(tmp_path / "mask.png"), mask * 255)
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return {
        "image": write_rgb(tmp_path / "photo.png", photo),
        **{name: str(tmp_path / f"{name}.png") for name in ("mask", "small", "black", "corrupt")},
        "folder": str(tmp_path),
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["image", "mask"], "a checkpoint is needed: pass --ckpt"),
        (["--ckpt", "missing.ckpt", "image", "mask"], "missing.ckpt does not exist"),
        (["--ckpt", "CKPT", "image", "small"], "is 67×43 but image"),
        (["--ckpt", "CKPT", "corrupt", "mask"], "cannot read image"),
        (["--ckpt", "CKPT", "image", "corrupt"], "cannot read image"),
        (["--ckpt", "CKPT", "image", "black"], "marks every pixel as hole"),
        (["--ckpt", "CKPT", "image", "folder"], "the mask must be a file too"),
        (["--ckpt", "CKPT", "no/such.png", "mask"], "no/such.png does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, files, tiny_checkpoint, tmp_path, capsys):
    argv = [files.get(a, tiny_checkpoint if a == "CKPT" else a) for a in args]
    out = tmp_path / "out.png"
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_missing_mask_in_folder_mode_is_named(tiny_checkpoint, photo, tmp_path, capsys):
    (tmp_path / "images").mkdir(), (tmp_path / "masks").mkdir()
    write_rgb(tmp_path / "images" / "holiday.png", photo)
    argv = ["--ckpt", tiny_checkpoint, str(tmp_path / "images"), str(tmp_path / "masks")]
    assert main([*argv, "-o", str(tmp_path / "out")]) == 2
    assert "no mask for" in capsys.readouterr().err


def test_inpainter_is_exported_lazily_from_the_package():
    import pconv

    assert pconv.Inpainter is Inpainter


def test_atomic_write_gives_the_users_umask_and_leaves_no_temporary(tmp_path):
    """Shared cluster folders need group-readable outputs: mkstemp's 0600 is wrong here."""
    previous = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "out.png", b"data")
    finally:
        os.umask(previous)
    assert path.read_bytes() == b"data"
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
