"""``pconv masks export``: PNG files (black = hole) equal to the evaluation masks."""

from __future__ import annotations

import csv

import cv2
import numpy as np

from pconv.data.masks import eval_mask
from pconv.evaluation.mask_export import main

SIZE = 64


def test_export_writes_the_eval_masks_named_by_bucket_and_split(tmp_path, capsys):
    assert (
        main(
            ["export", "-o", str(tmp_path), "--size", str(SIZE), "--per-bucket", "1", "--seed", "3"]
        )
        == 0
    )
    with open(tmp_path / "masks.csv") as file:
        manifest = list(csv.DictReader(file))
    assert len(manifest) == 12
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert "0.1-0.2_border_0000.png" in names and "0.5-0.6_no_border_0000.png" in names
    assert "contact_sheet.png" in names and len(names) == 13
    for entry in manifest:
        picture = cv2.imread(str(tmp_path / entry["file"]), cv2.IMREAD_UNCHANGED)
        assert picture.shape == (SIZE, SIZE) and set(np.unique(picture)) <= {0, 255}
        expected, bucket, border = eval_mask(3, int(entry["index"]), SIZE, SIZE, "paper")
        np.testing.assert_array_equal(picture == 255, expected == 1)  # black is hole
        low, high = map(float, entry["group"].split("-"))
        assert low < float(entry["hole_ratio"]) <= high
        assert entry["split"] == ("border" if border else "no_border")
    assert "wrote 12 masks" in capsys.readouterr().out


def test_lama_track_export_names_files_by_preset(tmp_path):
    assert (
        main(
            [
                "export",
                "-o",
                str(tmp_path),
                "--size",
                str(SIZE),
                "--per-bucket",
                "2",
                "--track",
                "lama",
            ]
        )
        == 0
    )
    assert {p.name for p in tmp_path.glob("thick_*.png")} == {"thick_0000.png", "thick_0001.png"}


def test_bad_count_exits_2(tmp_path, capsys):
    assert main(["export", "-o", str(tmp_path), "--per-bucket", "0"]) == 2
    assert "--per-bucket" in capsys.readouterr().err
