"""``pconv inpaint`` and the user's files: inputs and existing outputs are never written over,
16-bit and alpha survive, transparent mask pixels are holes, every mistake is one line."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from photos import PHOTO_HEIGHT, PHOTO_WIDTH
from refusals import assert_refused, digests

from pconv.inference import main

HEIGHT, WIDTH = PHOTO_HEIGHT, PHOTO_WIDTH


@pytest.fixture(scope="module")
def mask() -> np.ndarray:
    mask = np.ones((HEIGHT, WIDTH), np.uint8)
    mask[10:25, 30:60] = 0
    return mask


def write(path, pixels: np.ndarray) -> str:
    """Write RGB(A) or gray ``pixels`` (any depth OpenCV takes) to ``path``."""
    if pixels.ndim == 3:
        order = [2, 1, 0, 3][: pixels.shape[2]]  # RGB(A) -> BGR(A)
        pixels = pixels[:, :, order]
    assert cv2.imwrite(str(path), np.ascontiguousarray(pixels))
    return str(path)


def read(path) -> np.ndarray:
    """A written file as stored, RGB(A) order."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    order = [2, 1, 0, 3][: pixels.shape[2]]
    return pixels[:, :, order]


@pytest.fixture()
def user(tmp_path, photo, mask, tiny_checkpoint):
    """A user's folder: photos/ (pic.png), masks/ (pic.png), and an earlier result."""
    (tmp_path / "photos").mkdir(), (tmp_path / "masks").mkdir(), (tmp_path / "out").mkdir()
    write(tmp_path / "photos" / "pic.png", photo)
    write(tmp_path / "masks" / "pic.png", mask * 255)
    write(tmp_path / "out" / "pic.png", photo[::-1])
    return tmp_path, ["--ckpt", tiny_checkpoint]


@pytest.mark.parametrize(
    ("image", "mask_file", "output", "message"),
    [
        ("photos/pic.png", "masks/pic.png", "photos/pic.png", "is the input"),
        ("photos/pic.png", "masks/pic.png", "masks/pic.png", "is the input"),
        ("photos/pic.png", "masks/pic.png", "photos", "is the input"),  # -> photos/pic.png
        ("photos/pic.png", "masks/pic.png", "masks/../photos/pic.png", "is the input"),
        ("photos/pic.png", "masks/pic.png", "link.png", "is the input"),  # a symlink to it
        ("photos", "masks", "photos", "is the image folder"),
        ("photos", "masks", "masks/./", "is the mask folder"),
        ("photos", "masks", "link_dir", "is the image folder"),
        ("photos", "masks", "photos/sub", "lies inside the image folder"),
        ("photos", "masks", "masks/filled", "lies inside the mask folder"),
        ("photos/pic.png", "masks/pic.png", "out/pic.png", "pass --overwrite"),
        ("photos", "masks", "out", "out/pic.png already exists; pass --overwrite"),
        ("photos", "masks", "out/pic.png", "is a file, but the inputs are folders"),
        ("photos/pic.png", "masks/pic.png", "filled.xyz", "cannot write images of type '.xyz'"),
    ],
)
def test_outputs_that_would_destroy_files_are_refused(
    user, image, mask_file, output, message, capsys
):
    root, ckpt = user
    os.symlink(root / "photos" / "pic.png", root / "link.png")
    os.symlink(root / "photos", root / "link_dir")
    argv = [*ckpt, root / image, root / mask_file, "-o", root / output]
    assert_refused(main, argv, message, capsys, root)
    if "is the input" in message or "folder" in message:  # even with --overwrite
        assert_refused(main, [*argv, "--overwrite"], message, capsys, root)


def test_overwrite_replaces_an_existing_output(user, photo, mask, capsys):
    root, ckpt = user
    argv = [*ckpt, root / "photos", root / "masks", "-o", root / "out", "--overwrite"]
    assert main([str(a) for a in argv]) == 0
    np.testing.assert_array_equal(read(root / "out" / "pic.png")[mask == 1], photo[mask == 1])


def test_folder_names_shared_by_two_inputs_are_refused_before_any_work(user, photo, capsys):
    root, ckpt = user
    write(root / "photos" / "pic.jpg", photo)
    err = assert_refused(
        main, [*ckpt, root / "photos", root / "masks", "-o", root / "new"], "shared", capsys, root
    )
    assert "pic.jpg" in err and "pic.png" in err and "new/pic.png" in err
    assert not (root / "new").exists()


def test_two_masks_for_one_name_are_refused(user, mask, capsys):
    root, ckpt = user
    write(root / "masks" / "pic.bmp", mask * 255)
    argv = [*ckpt, root / "photos", root / "masks", "-o", root / "new"]
    assert_refused(main, argv, "both match images named pic", capsys, root)


@pytest.mark.parametrize(
    ("file", "message", "absent"),
    [
        ("corrupt.png", "cannot read image {root}/corrupt.png", "BytesIO"),
        ("white.png", "(white = hole)", "pass --mask-hole-value 255"),
    ],
)
def test_messages_name_the_file_and_give_right_advice(user, file, message, absent, capsys):
    root, ckpt = user
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    write(root / "white.png", np.full((HEIGHT, WIDTH), 255, np.uint8))
    image, mask = root / "photos" / "pic.png", root / file
    if file == "corrupt.png":
        image, mask = mask, root / "masks" / "pic.png"
    argv = [*ckpt, image, mask, "-o", root / "new.png", "--mask-hole-value", "255"]
    err = assert_refused(main, argv, message.format(root=root), capsys, root)
    assert absent not in err


def test_folder_mode_reads_every_input_before_writing_any_output(user, photo, capsys):
    root, ckpt = user
    (root / "photos" / "zz.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # read last
    write(root / "masks" / "zz.png", np.full((HEIGHT, WIDTH), 255, np.uint8))
    argv = [*ckpt, root / "photos", root / "masks", "-o", root / "new"]
    assert_refused(main, argv, f"cannot read image {root}/photos/zz.png", capsys, root)
    assert not (root / "new").exists()  # not even pic.png: the rerun needs no --overwrite


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("bogus", "--device bogus is not a device name; use cpu, cuda or cuda:N"),
        ("cuda:99", "--device cuda:99 cannot be used on this machine"),
    ],
)
def test_an_unusable_device_is_one_line(user, device, message, capsys):
    root, ckpt = user
    argv = [*ckpt, root / "photos", root / "masks", "-o", root / "new", "--device", device]
    assert_refused(main, argv, message, capsys, root)


def test_16_bit_png_comes_back_16_bit_with_valid_samples_identical(
    tmp_path, photo, mask, inpainter, tiny_checkpoint
):
    rng = np.random.default_rng(0)
    # Samples that are not multiples of 257, so an 8-bit round trip would change them.
    deep = photo.astype(np.uint16) * 257 + rng.integers(0, 200, photo.shape, dtype=np.uint16)
    write(tmp_path / "deep.png", deep)
    write(tmp_path / "mask.png", mask * 255)
    argv = [tmp_path / "deep.png", tmp_path / "mask.png", "-o", tmp_path / "out.png"]
    assert main(["--ckpt", tiny_checkpoint, *map(str, argv)]) == 0
    out = read(tmp_path / "out.png")
    assert out.dtype == np.uint16 and out.shape == deep.shape
    np.testing.assert_array_equal(out[mask == 1], deep[mask == 1])
    # Holes: the network's 8-bit fill of the image rounded to 8 bits, scaled by 257.
    fill = inpainter(np.rint(deep / 257).astype(np.uint8), mask).astype(np.uint16) * 257
    np.testing.assert_array_equal(out[mask == 0], fill[mask == 0])


def test_rgba_keeps_its_alpha_and_jpeg_output_says_what_it_drops(
    tmp_path, photo, mask, tiny_checkpoint, capsys
):
    alpha = np.tile(np.linspace(0, 255, WIDTH).astype(np.uint8), (HEIGHT, 1))
    write(tmp_path / "rgba.png", np.dstack([photo, alpha]))
    write(tmp_path / "mask.png", mask * 255)
    base = ["--ckpt", tiny_checkpoint, str(tmp_path / "rgba.png"), str(tmp_path / "mask.png")]
    assert main([*base, "-o", str(tmp_path / "out.png")]) == 0
    out = read(tmp_path / "out.png")
    assert out.shape == (HEIGHT, WIDTH, 4)
    np.testing.assert_array_equal(out[:, :, 3], alpha)
    np.testing.assert_array_equal(out[mask == 1][:, :3], photo[mask == 1])
    assert capsys.readouterr().err == ""
    assert main([*base, "-o", str(tmp_path / "out.jpg")]) == 0
    err = capsys.readouterr().err
    assert "cannot hold an alpha channel" in err and "lossy" in err and err.count("\n") == 2
    assert read(tmp_path / "out.jpg").shape == (HEIGHT, WIDTH, 3)


def test_transparent_mask_pixels_are_holes(tmp_path, photo, mask, tiny_checkpoint):
    # White everywhere, transparent where the hole is: same result as the black-hole mask.
    painted = np.dstack([np.full((HEIGHT, WIDTH, 3), 255, np.uint8), mask * 255])
    write(tmp_path / "painted.png", painted)
    write(tmp_path / "mask.png", mask * 255)
    write(tmp_path / "photo.png", photo)
    for name in ("painted", "mask"):
        argv = [str(tmp_path / "photo.png"), str(tmp_path / f"{name}.png")]
        assert (
            main(["--ckpt", tiny_checkpoint, *argv, "-o", str(tmp_path / f"{name}_out.png")]) == 0
        )
    np.testing.assert_array_equal(
        read(tmp_path / "painted_out.png"), read(tmp_path / "mask_out.png")
    )
    assert not np.array_equal(read(tmp_path / "mask_out.png"), photo)


def test_an_opaque_black_mask_with_transparent_holes_is_read_by_its_alpha(
    tmp_path, photo, mask, tiny_checkpoint
):
    # Black paint everywhere, erased (transparent) where the hole is: as the black-hole mask.
    erased = np.dstack([np.zeros((HEIGHT, WIDTH, 3), np.uint8), mask * 255])
    write(tmp_path / "erased.png", erased)
    write(tmp_path / "mask.png", mask * 255)
    write(tmp_path / "photo.png", photo)
    for name in ("erased", "mask"):
        argv = [str(tmp_path / "photo.png"), str(tmp_path / f"{name}.png")]
        argv += ["-o", str(tmp_path / f"{name}_out.png")]
        assert main(["--ckpt", tiny_checkpoint, *argv]) == 0
    np.testing.assert_array_equal(
        read(tmp_path / "erased_out.png"), read(tmp_path / "mask_out.png")
    )


def test_fully_transparent_mask_is_refused(user, capsys):
    root, ckpt = user
    write(root / "clear.png", np.zeros((HEIGHT, WIDTH, 4), np.uint8))
    argv = [*ckpt, root / "photos" / "pic.png", root / "clear.png", "-o", root / "new.png"]
    assert_refused(main, argv, "fully transparent", capsys, root)


def test_folder_mode_shows_a_bar_on_a_terminal_only(user, photo, mask, capsys, monkeypatch):
    root, ckpt = user
    write(root / "photos" / "b.png", photo)
    write(root / "masks" / "b.png", mask * 255)
    argv = [*ckpt, str(root / "photos"), str(root / "masks"), "-o"]
    assert main([*argv, str(root / "quiet")]) == 0
    assert capsys.readouterr().err == ""  # not a terminal: no bar
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich then treats stderr as a terminal
    assert main([*argv, str(root / "shown")]) == 0
    assert "inpainting" in capsys.readouterr().err
    assert digests(root / "quiet") == digests(root / "shown")
