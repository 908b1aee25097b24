"""``pconv prepare`` as a user runs it: good shards are never lost to a bad run, every split
is checked first, flat folders are split without overlap, and the output is ours alone."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import write_rgb
from refusals import assert_refused, digests

from pconv.data.prepare import main
from pconv.data.shards import ShardImageSource

WORKERS = ["--workers", "1"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory, photos):
    """imagenet/{train,val}/<class>/ (3 and 1 photos), corrupt/train/ (2 corrupt files),
    mixed/ (imagenet's train, corrupt's as val) and flat/ (10 different photos)."""
    root = tmp_path_factory.mktemp("user")
    names = list(photos)
    for i, name in enumerate(names[:3]):
        write_rgb(root / "imagenet" / "train" / f"c{i % 2}" / f"{name}.jpg", photos[name])
    write_rgb(root / "imagenet" / "val" / "c0" / "rocket.png", photos["rocket"])
    (root / "corrupt" / "train").mkdir(parents=True)
    (root / "corrupt" / "train" / "a.jpg").write_bytes(b"\xff\xd8 not a photo")
    (root / "corrupt" / "train" / "b.png").write_bytes(b"nothing")
    shutil.copytree(root / "imagenet" / "train", root / "mixed" / "train")
    shutil.copytree(root / "corrupt" / "train", root / "mixed" / "val")
    for i in range(10):
        write_rgb(root / "flat" / f"p{i}.jpg", np.roll(photos[names[i % 4]], 13 * i, axis=1))
    return root


@pytest.fixture(scope="module")
def good_shards(tree, tmp_path_factory):
    output = tmp_path_factory.mktemp("good") / "shards"
    assert main(["imagefolder", str(tree / "imagenet"), "-o", str(output), *WORKERS]) == 0
    return output


@pytest.fixture()
def shards(good_shards, tmp_path):
    """A fresh copy of a good train + val shard set."""
    return shutil.copytree(good_shards, tmp_path / "shards")


def test_prepare_writes_every_split_and_says_so(good_shards, capsys):
    assert len(ShardImageSource(str(good_shards), "train")) == 3
    assert len(ShardImageSource(str(good_shards), "val")) == 1
    assert sorted(p.name for p in good_shards.iterdir()) == ["train", "val"]  # nothing hidden


@pytest.mark.parametrize(
    ("source", "extra", "message"),
    [
        # Zero readable images: an error, and the good shards stay.
        ("corrupt", ["--splits", "train", "--overwrite"], "none of the 2 images"),
        # train can be read, val cannot: train is not replaced either.
        ("mixed", ["--overwrite"], "none of the 2 images for {shards}/val"),
        # A split missing from the source is found before anything is written.
        ("corrupt", ["--overwrite"], "{tree}/corrupt/val does not exist"),
        ("imagenet", [], "{shards}/train already holds shards; pass --overwrite"),
        ("imagenet", ["--splits", "test", "val"], "{shards}/val already holds shards"),
        ("imagenet", ["--workers", "0"], "--workers must be at least 1"),
        ("flat", ["--val-fraction", "1.5"], "--val-fraction must lie between 0 and 1"),
        ("imagenet", ["--splits", "train", "train"], "names a split twice"),
    ],
)
def test_a_bad_run_keeps_the_good_shards(tree, shards, source, extra, message, capsys):
    kind = "folder" if source == "flat" else "imagefolder"
    argv = [kind, tree / source, "-o", shards, *WORKERS, *extra]
    assert_refused(main, argv, message.format(shards=shards, tree=tree), capsys, shards.parent)
    assert sorted(p.name for p in shards.iterdir()) == ["train", "val"]  # no staging left


def test_a_folder_of_other_files_is_never_replaced(tree, tmp_path, capsys):
    (tmp_path / "out" / "train").mkdir(parents=True)
    (tmp_path / "out" / "train" / "thesis.tex").write_text("years of work")
    argv = ["imagefolder", tree / "imagenet", "-o", tmp_path / "out", "--overwrite", *WORKERS]
    assert_refused(main, argv, "not LitData shards", capsys, tmp_path)


def test_flat_folder_is_split_by_a_seeded_fraction_without_overlap(tree, tmp_path, capfd):
    def split(out, seed):
        argv = ["folder", tree / "flat", "-o", out, "--val-fraction", "0.2", "--seed", seed]
        assert main([str(a) for a in [*argv, *WORKERS]]) == 0
        return {
            s: {ShardImageSource(str(out), s).name(i) for i in range(n)}
            for s, n in (("train", 8), ("val", 2))
        }

    first = split(tmp_path / "a", 0)
    out, err = capfd.readouterr()
    assert "split at random (--seed 0, --val-fraction 0.2) into train 8 and val 2" in out
    assert not first["train"] & first["val"]
    assert first["train"] | first["val"] == {str(p) for p in (tree / "flat").iterdir()}
    assert split(tmp_path / "b", 0) == first
    # What LitData prints on its own is silenced: only our lines, no raw escape codes.
    assert err == "" and "\x1b" not in out and len(out.splitlines()) == 3
    for noise in ("lightning.ai", "start_method", "inferred", "Progress", "Worker"):
        assert noise not in out
    assert split(tmp_path / "c", 1) != first


def test_one_progress_bar_of_ours_on_a_terminal(tree, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich then treats stderr as a terminal
    argv = ["imagefolder", tree / "imagenet", "-o", tmp_path / "s", *WORKERS]
    assert main([str(a) for a in argv]) == 0
    err = capfd.readouterr().err
    assert "preparing train, val" in err and "Progress:" not in err
    assert digests(tmp_path / "s").keys() == {
        "train/index.json", "train/chunk-0-0.bin", "val/index.json", "val/chunk-0-0.bin"
    }  # fmt: skip


def test_an_output_that_is_a_file_is_refused(tree, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    argv = ["imagefolder", tree / "imagenet", "-o", tmp_path / "notes.txt", *WORKERS]
    assert_refused(main, argv, "notes.txt is a file; give -o a folder", capsys, tmp_path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["folder", "{tree}/flat", "-o", "{tree}/flat"], "lies inside the source"),
        (["folder", "{tree}/flat", "-o", "{tree}/flat/shards"], "lies inside the source"),
        (["imagefolder", "{tree}/imagenet", "-o", "{tree}/imagenet/."], "lies inside the source"),
        (["samples", "{tree}/flat", "-o", "{tree}/out"], "samples takes no root"),
        (["folder", "{tree}/flat/p0.jpg", "-o", "{tree}/out"], "p0.jpg is a file, not a folder"),
        (["filelist", "{tree}/flat/p0.jpg", "-o", "{tree}/out"], "p0.jpg is not text"),
        (["filelist", "{tree}/flat", "-o", "{tree}/out"], "flat is a folder, not a file"),
    ],
)
def test_sources_and_outputs_that_cannot_work_are_refused(tree, argv, message, capsys):
    argv = [a.format(tree=tree) for a in [*argv, *WORKERS]]
    assert_refused(main, argv, message, capsys, tree)


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(tree, tmp_path, capsys):
    out = tmp_path / "shards"
    out.mkdir()
    killed = out / ".train.0123abcd.partial"  # what SIGKILL mid-prepare leaves
    killed.mkdir()
    (killed / "chunk-0-0.bin").write_bytes(b"half a shard")
    assert main(["imagefolder", str(tree / "imagenet"), "-o", str(out), *WORKERS]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["train", "val"]
