"""NVIDIA-style test masks, bucketed by measured ratio and border at the evaluation size."""

import cv2
import numpy as np
import pytest
from conftest import edge_has_hole, paper_bucket

from pconv.data.images import DataSourceError
from pconv.data.nvidia_masks import FileEvalMasks

FILE_SIDE = 128
SIZE = 64
#: (hole rows, border, hole columns): the hole is a band of ``rows`` × ``columns`` pixels of
#: the 128×128 file; ratios chosen well inside their buckets, one or two per bucket, two
#: outside every bucket.
CASES = [
    (10, False, 96),  # 960 / 128² = 0.059 → bucket 0
    (8, True, 128),  # 0.0625 → bucket 0
    (24, False, 96),  # 0.141 → bucket 1
    (24, False, 96),
    (20, True, 128),  # 0.156 → bucket 1
    (44, False, 96),  # 0.258 → bucket 2
    (60, False, 96),  # 0.352 → bucket 3
    (44, True, 128),  # 0.344 → bucket 3
    (76, False, 96),  # 0.445 → bucket 4
    (70, True, 128),  # 0.547 → bucket 5
    (96, True, 128),  # 0.75 → outside
    (4, False, 16),  # 0.004 → outside
]
EXPECTED = {(0, 0): 1, (0, 1): 1, (1, 0): 2, (1, 1): 1, (2, 0): 1, (3, 0): 1, (3, 1): 1}
EXPECTED |= {(4, 0): 1, (5, 1): 1, (-1, 0): 1, (-1, 1): 1}


def mask_file(rows: int, border: bool, columns: int, hole_value: int) -> np.ndarray:
    """A 128×128 file, valid = 255 - hole_value, with a ``rows`` × ``columns`` hole from
    (0, 0) when it touches the border, else from (16, 16). Even sizes and offsets keep the
    ratio exact after halving with nearest neighbour."""
    image = np.full((FILE_SIDE, FILE_SIDE), 255 - hole_value, np.uint8)
    start = 0 if border else 16
    image[start : start + rows, start : start + columns] = hole_value
    return image


def write_set(folder, hole_value=0):
    folder.mkdir()
    rng = np.random.default_rng(0)
    # Shuffled names: the file order says nothing about the buckets.
    for name, case in zip(rng.permutation(len(CASES)), CASES, strict=True):
        cv2.imwrite(str(folder / f"{name:05d}.png"), mask_file(*case, hole_value))
    return folder


def test_masks_are_bucketed_by_measured_ratio_and_border(tmp_path):
    masks = FileEvalMasks(write_set(tmp_path / "m"), SIZE)
    assert masks.counts == [
        EXPECTED.get((b if b < 6 else -1, s), 0) for b in range(7) for s in (0, 1)
    ]
    assert masks.polarity_warning is None
    assert len(masks) == len(CASES)
    seen = {}
    for index in range(len(masks)):
        mask, bucket, border = masks(index)
        assert mask.shape == (SIZE, SIZE)
        ratio = float((mask == 0).mean())
        assert paper_bucket(ratio) == bucket and edge_has_hole(mask) == border
        seen[(bucket, int(border))] = seen.get((bucket, int(border)), 0) + 1
    assert seen == EXPECTED
    # neighbouring items come from different cells (round-robin), not one bucket at a time
    assert len({masks(i)[1:] for i in range(4)}) == 4
    summary = masks.summary()
    assert "12 masks" in summary and "0.1-0.2: 2+1" in summary
    assert "outside buckets: 1+1" in summary


def test_per_cell_keeps_at_most_n_per_bucket_and_split(tmp_path):
    masks = FileEvalMasks(write_set(tmp_path / "m"), SIZE, per_cell=1)
    assert len(masks) == len(EXPECTED)  # the (0.1-0.2, no border) cell drops one of two
    assert masks.counts[2] == 2  # counts report what was found


def test_swapped_polarity_is_flagged_and_hole_value_255_reads_it(tmp_path):
    folder = write_set(tmp_path / "white_holes", hole_value=255)
    swapped = FileEvalMasks(folder, SIZE)  # read as black = hole: holes and valid swapped
    assert swapped.median_ratio > 0.5
    assert "probably swapped" in swapped.polarity_warning
    assert "pass mask hole value 255" in swapped.polarity_warning
    right = FileEvalMasks(folder, SIZE, hole_value=255)
    assert right.polarity_warning is None
    assert right.counts == FileEvalMasks(write_set(tmp_path / "black"), SIZE).counts


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    folder = write_set(tmp_path / "m")
    (folder / "empty.png").write_bytes(b"")
    masks = FileEvalMasks(folder, SIZE)
    assert len(masks) == len(CASES)
    assert list(masks.skipped) == [str(folder / "empty.png")]
    assert "1 unreadable skipped" in masks.summary()


def test_a_file_or_missing_folder_is_named_for_what_it_is(tmp_path):
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataSourceError, match="file.png is a file; pass a folder"):
        FileEvalMasks(tmp_path / "file.png", SIZE)
    with pytest.raises(DataSourceError, match="nope does not exist"):
        FileEvalMasks(tmp_path / "nope", SIZE)


def test_datamodule_validates_and_tests_on_the_mask_folder(tmp_path, caplog):
    import logging

    from pconv.data import InpaintingDataModule

    dm = InpaintingDataModule(
        image_size=SIZE, num_workers=0, batch_size=4, eval_mask_dir=str(write_set(tmp_path / "m"))
    )
    with caplog.at_level(logging.INFO):
        dm.setup("validate")
        dm.setup("test")
    assert caplog.text.count("outside buckets: 1+1") == 1  # counts printed once
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        batches = list(loader)
        buckets = [b for batch in batches for b in batch["bucket"].tolist()]
        borders = [b for batch in batches for b in batch["border"].tolist()]
        found = {}
        for key in zip(buckets, map(int, borders), strict=True):
            found[key] = found.get(key, 0) + 1
        assert found == EXPECTED
