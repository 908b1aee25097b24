"""`pconv evaluate` as a user drives it: NVIDIA-style mask folders, and every mistake is one
line, exit 2, with the files that were there left byte-identical."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
from refusals import READ_ONLY

from pconv.evaluation.cli import main
from pconv.utils.lock import folder_lock

SIZE = 32
FAST = ["--size", str(SIZE), "--baselines", "mean", "--optional-metrics", "none"]
FAST += ["--workers", "0", "--per-bucket", "1"]


def hashes(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def mask_folder(folder, hole_value=0):
    """Three 64×64 masks: holes of 14.1 % (no border), 25 % and 75 % (border)."""
    folder.mkdir()
    holes = {"c": np.s_[16:28, 8:56], "a": np.s_[0:16, :], "b": np.s_[0:48, :]}
    for name, hole in holes.items():
        image = np.full((64, 64), 255 - hole_value, np.uint8)
        image[hole] = hole_value
        cv2.imwrite(str(folder / f"{name}.png"), image)
    return folder


def test_mask_folder_is_bucketed_counted_and_accounted_for(tmp_path, capsys):
    masks = mask_folder(tmp_path / "masks")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.csv").write_text("an earlier report\n")
    assert main([*FAST, "--masks", str(masks), "-o", str(out), "--overwrite"]) == 0
    captured = capsys.readouterr()
    assert "3 masks in" in captured.out
    assert "0.1-0.2: 1+0" in captured.out and "0.2-0.3: 0+1" in captured.out
    assert "outside buckets: 0+1" in captured.out
    assert captured.err == ""  # no progress bar, no warning when not on a terminal
    report = json.loads((out / "report.json").read_text())
    rows = {r["row"]: r for r in report["rows"]}
    assert rows["0.1-0.2_no_border"]["count"] == 1 and rows["0.2-0.3_border"]["count"] == 1
    assert rows["outside_buckets"]["count"] == 1
    assert rows["outside_buckets"]["hole_ratio"] == pytest.approx(0.75)
    assert rows["all"]["count"] == sum(r["count"] for k, r in rows.items() if k != "all") == 3
    assert "3 mask files, not NVIDIA's 12,000" in report["reference"]["label"]
    assert "an earlier report" not in (out / "report.csv").read_text()


def test_swapped_mask_polarity_is_warned_about(tmp_path, capsys):
    masks = mask_folder(tmp_path / "masks", hole_value=255)
    assert main([*FAST, "--masks", str(masks), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "black and white are probably swapped" in err and "pass mask hole value 255" in err
    assert (
        main([*FAST, "--masks", str(masks), "--mask-hole-value", "255", "-o", str(tmp_path / "o2")])
        == 0
    )
    assert "swapped" not in capsys.readouterr().err


def corrupt_images(root):
    folder = root / "corrupt"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "b.png").write_bytes(b"")
    return ["--images", str(folder)]


def existing_report(root):
    out = root / "out"
    out.mkdir()
    (out / "report.csv").write_text("yesterday's numbers\n")
    (out / "examples.png").write_bytes(b"\x89PNG not really")
    return ["-o", str(out)]


def output_is_a_file(root):
    (root / "report.txt").write_text("keep me\n")
    return ["-o", str(root / "report.txt")]


def masks_is_a_file(root):
    (root / "mask.png").write_bytes(b"not a folder")
    return ["--masks", str(root / "mask.png")]


def single_image(root):
    cv2.imwrite(str(root / "photo.png"), np.full((40, 40, 3), 128, np.uint8))
    return ["--images", str(root / "photo.png")]


def ckpt_is_a_folder(root):
    (root / "ckpts").mkdir()
    return ["--ckpt", str(root / "ckpts")]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: ["--size", "0"], "--size must be at least 1, got 0"),
        (lambda root: ["--size", "-64"], "--size must be at least 1, got -64"),
        (lambda root: ["--size", "400000"], "(estimated), more than the"),
        (lambda root: ["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (lambda root: ["--workers", "-1"], "--workers must be at least 0, got -1"),
        (corrupt_images, "no readable image among the first ones"),
        (output_is_a_file, "report.txt is a file; pass a folder for the report"),
        (existing_report, "already holds report.csv, examples.png; pass --overwrite"),
        (masks_is_a_file, "mask.png is a file; pass a folder of mask images"),
        (ckpt_is_a_folder, "ckpts is a folder with no model.safetensors"),
        (lambda root: ["--device", "bogus"], "--device bogus is not a device name"),
        (lambda root: ["--device", "cuda:99"], "--device cuda:99 cannot be used on this machine"),
        (single_image, "photo.png is a single image; give a folder of images or a text file"),
        (lambda root: ["-o", str(READ_ONLY / "report")], str(READ_ONLY / "report")),
    ],
    ids=[
        "size-0",
        "size-negative",
        "size-too-large",
        "batch-0",
        "workers-negative",
        "corrupt-images",
        "output-file",
        "existing-report",
        "masks-file",
        "ckpt-folder",
        "device-unknown",
        "device-absent",
        "images-single-file",
        "output-read-only",
    ],
)
def test_mistakes_exit_2_with_one_line_and_leave_files_alone(make, message, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "photo.png").write_bytes(b"a user's file")
    extra = make(work)
    argv = [*FAST, "-o", str(work / "fresh"), *extra]  # a later -o wins
    before = hashes(work)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith("pconv evaluate: ")
    assert hashes(work) == before
    assert not (work / "fresh").exists()


def test_a_published_network_is_shown_with_its_publishers_figures(tmp_path, monkeypatch, capsys):
    import torch

    from pconv.nn.unet import PConvUNet
    from pconv.weights.named import converted_path
    from pconv.weights.safetensors_pair import save_safetensors

    # A stand-in for the converted mmagic-places2 in the torch cache, as `pconv weights` leaves it.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    converted_path("mmagic-places2").parent.mkdir(parents=True)
    save_safetensors(PConvUNet(levels=2, width_mult=1 / 64), converted_path("mmagic-places2"))
    out = tmp_path / "out"
    assert main([*FAST, "--ckpt", "mmagic-places2", "-o", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    expected = "reference for mmagic-places2: l1 8.776, psnr 22.762, ssim 0.801 (PConv, OpenMMLab"
    assert expected in printed and "Places365 val" in printed
    assert any(expected in note for note in json.loads((out / "report.json").read_text())["notes"])


def test_a_second_evaluation_into_a_held_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    (tmp_path / "keep.txt").write_text("keep")
    before = hashes(tmp_path)
    with folder_lock(out):  # as a first `pconv evaluate` still running holds it
        before = hashes(tmp_path)
        assert main([*FAST, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{out} is in use by another `pconv evaluate`" in err and err.count("\n") == 1
        assert hashes(tmp_path) == before
    assert main([*FAST, "-o", str(out)]) == 0  # released: the folder is free again


def test_unreadable_images_are_counted_once(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in "ace":
        cv2.imwrite(str(folder / f"{name}.png"), np.full((40, 40, 3), ord(name), np.uint8))
    (folder / "b.jpg").write_bytes(b"\xff\xd8 truncated")
    (folder / "d.png").write_bytes(b"")
    argv = [*FAST, "--per-bucket", "2", "--images", str(folder), "-o", str(tmp_path / "out")]
    assert main(argv) == 0
    out = "".join(capsys.readouterr().out.split("\n"))  # unwrapped
    assert "2 unreadable image(s) of " in out and f"(e.g. {folder / 'b.jpg'}: " in out, out
