"""``pconv masks export``: PNG files (black = hole) equal to the evaluation masks."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from refusals import assert_refused, digests

from pconv.data.masks import eval_mask
from pconv.evaluation.mask_export import file_names, main
from pconv.evaluation.tracks import Track

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


def export(argv: list) -> int:
    """``pconv masks export --size SIZE -o OUT ...`` for ``argv = [OUT, ...]``."""
    return main(["export", "--size", str(SIZE), "-o", *map(str, argv)])


def test_a_folder_with_files_is_refused_without_overwrite(tmp_path, capsys):
    (tmp_path / "masks.csv").write_text("the user's own table\n")
    (tmp_path / "notes.txt").write_text("keep me")
    assert_refused(export, [tmp_path, "--per-bucket", 1], "pass --overwrite", capsys, tmp_path)
    (tmp_path / "file").write_text("")
    argv = [tmp_path / "file", "--per-bucket", 1]
    assert_refused(export, argv, "is a file; give a folder", capsys, tmp_path)


def test_overwrite_removes_the_previous_exports_masks_only(tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"a user's file")
    out = tmp_path / "masks"
    assert export([out, "--per-bucket", 2]) == 0
    (out / "notes.txt").write_text("keep me")
    assert export([out, "--per-bucket", 1, "--overwrite"]) == 0
    with open(out / "masks.csv") as file:
        listed = {row["file"] for row in csv.DictReader(file)}
    assert len(listed) == 12 and all(name.endswith("_0000.png") for name in listed)
    present = {p.name for p in out.iterdir()}
    assert present == listed | {"masks.csv", "contact_sheet.png", "notes.txt"}
    # A manifest naming a file outside the folder never removes it.
    with open(out / "masks.csv", "a") as file:
        file.write("../outside.png,0,x,x,x,0\n")
    assert export([out, "--per-bucket", 1, "--overwrite"]) == 0
    assert outside.read_bytes() == b"a user's file"


def test_overwrite_refuses_a_foreign_masks_csv(tmp_path, capsys):
    (tmp_path / "masks.csv").write_text("name,score\nholiday.png,3\n")
    argv = [tmp_path, "--per-bucket", 1, "--overwrite"]
    assert_refused(export, argv, "is not a masks.csv written by", capsys, tmp_path)


def test_overwrite_never_replaces_a_users_file_named_like_a_mask(tmp_path, capsys):
    # No masks.csv: nothing in the folder is an earlier export's.
    (tmp_path / "0.01-0.1_border_0000.png").write_bytes(b"the user's picture")
    argv = [tmp_path, "--per-bucket", 1, "--overwrite"]
    assert_refused(export, argv, "0.01-0.1_border_0000.png) that no earlier", capsys, tmp_path)


def test_file_names_are_those_written(tmp_path):
    assert export([tmp_path, "--per-bucket", 2, "--track", "paper"]) == 0
    written = {p.name for p in tmp_path.glob("*_*.png")} - {"contact_sheet.png"}
    assert written == set(file_names("paper", 2))


def test_an_interrupted_export_changes_nothing_and_the_next_cleans_up(
    tmp_path, capsys, monkeypatch
):
    out = tmp_path / "masks"
    assert export([out, "--per-bucket", 1]) == 0
    before = digests(tmp_path)
    real_mask, calls = Track.mask, []

    def mask_then_ctrl_c(self, seed, index, size):
        calls.append(index)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_mask(self, seed, index, size)

    monkeypatch.setattr(Track, "mask", mask_then_ctrl_c)
    capsys.readouterr()
    assert export([out, "--per-bucket", 3, "--overwrite"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted; nothing was written" in err, err
    assert digests(tmp_path) == before  # no new masks, no staging folder left
    monkeypatch.undo()
    # A run killed with SIGKILL leaves its staging folder; the next export removes it.
    killed = tmp_path / ".masks.0123abcd.partial"
    killed.mkdir()
    (killed / "0.01-0.1_border_0000.png").write_bytes(b"half an export")
    assert export([out, "--per-bucket", 2, "--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks"]
    assert len(list(out.glob("*_000[01].png"))) == 24


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--size", "100000", "--per-bucket", "1"], "a --size 100000 mask needs about"),
        (["--per-bucket", "1000000000"], "(12,000,000,000 masks of 64×64)"),
    ],
)
def test_sizes_and_counts_the_machine_cannot_hold_are_refused(tmp_path, capsys, argv, message):
    (tmp_path / "keep.txt").write_text("keep")
    out = ["-o", tmp_path / "masks", *argv]
    assert_refused(main, ["export", "--size", SIZE, *out], message, capsys, tmp_path)


def test_the_working_directory_can_be_the_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("keep me")
    assert export([".", "--per-bucket", 1, "--overwrite"]) == 0
    assert export([".", "--per-bucket", 2, "--overwrite"]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {*file_names("paper", 2), "masks.csv", "contact_sheet.png", "mine.txt"}
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}.")]
