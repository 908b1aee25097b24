import io

import cv2
import numpy as np
import pytest
from conftest import write_rgb
from PIL import Image

from pconv.data.images import (
    DataSourceError,
    SkippingReader,
    UnreadableImageError,
    decode_image,
    file_list,
    image_folder,
    read_image,
)
from pconv.data.sources import open_image_source


def save_pil(path, image: Image.Image, fmt: str, **kwargs) -> None:
    image.save(path, fmt, **kwargs)


@pytest.fixture
def photo(photos):
    return photos["astronaut"]


def test_jpeg_and_png_read_as_rgb(tmp_path, photo):
    write_rgb(tmp_path / "a.png", photo)
    assert np.array_equal(read_image(tmp_path / "a.png"), photo)  # PNG is lossless
    write_rgb(tmp_path / "a.jpg", photo)
    jpeg = read_image(tmp_path / "a.jpg")
    assert jpeg.shape == photo.shape and jpeg.dtype == np.uint8
    assert np.abs(jpeg.astype(int) - photo).mean() < 4  # RGB order, not BGR


def test_odd_modes_are_converted(tmp_path, photo):
    gray = photo[:, :, 1]
    save_pil(tmp_path / "gray.png", Image.fromarray(gray), "PNG")
    assert np.array_equal(read_image(tmp_path / "gray.png"), np.repeat(gray[:, :, None], 3, 2))

    palette = Image.fromarray(photo).convert("P")
    save_pil(tmp_path / "palette.png", palette, "PNG")
    assert np.array_equal(read_image(tmp_path / "palette.png"), np.asarray(palette.convert("RGB")))

    cmyk = Image.fromarray(photo).convert("CMYK")
    save_pil(tmp_path / "cmyk.jpg", cmyk, "JPEG", quality=95)
    expected = np.asarray(Image.open(tmp_path / "cmyk.jpg").convert("RGB")).astype(int)
    assert np.abs(read_image(tmp_path / "cmyk.jpg").astype(int) - expected).mean() < 3

    deep = photo.astype(np.uint16) * 257 + 100  # 16-bit values that are not multiples of 257
    cv2.imwrite(str(tmp_path / "deep.png"), deep[:, :, ::-1])
    assert np.array_equal(read_image(tmp_path / "deep.png"), np.rint(deep / 257).astype(np.uint8))


def test_transparency_is_composited_onto_white(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = (200, 40, 10)
    rgba[0, :, 3] = 0  # fully transparent: white
    rgba[1, :, 3] = 255  # opaque: the colour
    rgba[2:, :, 3] = 102  # 40% opaque: 0.4 * colour + 0.6 * white
    save_pil(tmp_path / "rgba.png", Image.fromarray(rgba, "RGBA"), "PNG")
    image = read_image(tmp_path / "rgba.png")
    assert (image[0] == 255).all()
    assert (image[1] == (200, 40, 10)).all()
    expected = np.rint(0.4 * np.array([200, 40, 10]) + 0.6 * 255)
    assert np.abs(image[2:].astype(int) - expected).max() <= 1


def test_tiny_and_extreme_aspect_images(tmp_path, photo):
    write_rgb(tmp_path / "tiny.png", photo[:3, :3])
    assert np.array_equal(read_image(tmp_path / "tiny.png"), photo[:3, :3])
    strip = cv2.resize(photo, (2000, 20))
    write_rgb(tmp_path / "strip.jpg", strip)
    assert read_image(tmp_path / "strip.jpg").shape == (20, 2000, 3)


def test_large_jpeg_is_decoded_reduced_but_not_below_min_size(tmp_path, photo):
    big = cv2.resize(photo, (1280, 1040), interpolation=cv2.INTER_LINEAR)
    write_rgb(tmp_path / "big.jpg", big)
    reduced = read_image(tmp_path / "big.jpg", min_size=200)
    assert reduced.shape == (260, 320, 3)  # 1/4: the largest factor keeping 200 px
    expected = cv2.resize(big, (320, 260), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(reduced.astype(int) - expected).mean() < 6
    assert read_image(tmp_path / "big.jpg", min_size=1040).shape == big.shape


def test_unreadable_files_raise_naming_the_file(tmp_path, photo):
    write_rgb(tmp_path / "whole.jpg", photo)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.png").write_bytes(b"this is not an image" * 10)
    (tmp_path / "empty.jpg").write_bytes(b"")
    for name in ("truncated.jpg", "garbage.png", "empty.jpg", "missing.jpg"):
        with pytest.raises(UnreadableImageError, match=f"cannot read image .*{name}"):
            read_image(tmp_path / name)
    with pytest.raises(UnreadableImageError, match="cannot read image <bytes>"):
        decode_image(data[:100])


def test_skipping_reader_queues_each_skip_and_never_returns_black(tmp_path, photos):
    for name, image in photos.items():
        write_rgb(tmp_path / f"{name}.png", image)
    (tmp_path / "b_bad.png").write_bytes(b"garbage")
    (tmp_path / "d_bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    source = image_folder(tmp_path)
    reader = SkippingReader(source)
    images = [reader(i) for i in range(len(source))]
    skipped = reader.drain()
    assert [s.split(": ")[0] for s in skipped] == [str(tmp_path / "b_bad.png")] + [
        str(tmp_path / "d_bad.jpg")
    ]
    assert reader.drain() == []  # handed over once
    # sorted order: astronaut, b_bad, chelsea, coffee, d_bad, rocket -> bad ones replaced
    expected = ["astronaut", "chelsea", "chelsea", "coffee", "rocket", "rocket"]
    for image, name in zip(images, expected, strict=True):
        assert np.array_equal(image, photos[name])


def test_all_unreadable_source_raises(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(b"nope")
    reader = SkippingReader(image_folder(tmp_path))
    with pytest.raises(UnreadableImageError, match="unreadable"):
        reader(0)


def test_image_folder_scans_recursively_and_sorted(imagenet_root):
    source = image_folder(imagenet_root, "train")
    names = [source.name(i) for i in range(len(source))]
    assert len(names) == 4 and names == sorted(names)
    assert all(name.endswith(".JPEG") for name in names)
    assert len(open_image_source("imagefolder", str(imagenet_root), "val")) == 2
    # a flat folder ignores the split and finds everything below root
    assert len(open_image_source("folder", str(imagenet_root), "val")) == 6


def test_file_list_paths_are_relative_to_the_list(imagenet_root, photos):
    listing = imagenet_root / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text("# comment\n../train/n00000/astronaut.JPEG\n\n../val/n00001/coffee.JPEG\n")
    source = file_list(listing)
    assert len(source) == 2
    assert np.abs(source.load(1).astype(int) - photos["coffee"]).mean() < 4


def test_missing_and_empty_roots_say_what_to_do(tmp_path):
    with pytest.raises(DataSourceError, match=f"image folder {tmp_path / 'nope'} does not exist"):
        open_image_source("folder", str(tmp_path / "nope"))
    with pytest.raises(DataSourceError, match="containing a 'train' sub-folder"):
        open_image_source("imagefolder", str(tmp_path), "train")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataSourceError, match=f"no images .* found under {tmp_path / 'empty'}"):
        open_image_source("folder", str(tmp_path / "empty"))
    with pytest.raises(DataSourceError, match="file list .*list.txt does not exist"):
        open_image_source("filelist", str(tmp_path / "list.txt"))
    (tmp_path / "list.txt").write_text("\n# nothing\n")
    with pytest.raises(DataSourceError, match="names no images"):
        open_image_source("filelist", str(tmp_path / "list.txt"))
    with pytest.raises(DataSourceError, match="needs `root`"):
        open_image_source("folder", None)
    with pytest.raises(DataSourceError, match="unknown image source 'lmdb'"):
        open_image_source("lmdb", str(tmp_path))


def test_reading_a_png_through_bytes_matches_pil(photo):
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "PNG")
    assert np.array_equal(decode_image(memoryview(buffer.getvalue())), photo)


def test_a_corrupt_png_is_named_once_without_opencvs_own_lines(tmp_path, capfd):
    path = tmp_path / "c.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(UnreadableImageError, match="c.png"):
        decode_image(path.read_bytes(), str(path))
    assert capfd.readouterr().err == ""  # no "[ WARN] ... grfmt_png.cpp" from OpenCV
