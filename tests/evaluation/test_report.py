"""``pconv evaluate`` on the sample photos with a tiny random network and the baselines."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from rich.console import Console
from skimage.metrics import structural_similarity

from pconv.data.masks import eval_mask
from pconv.data.samples import SAMPLE_NAMES, sample_image
from pconv.evaluation.cli import main
from pconv.evaluation.loop import evaluate
from pconv.evaluation.plots import PANEL_SIZE
from pconv.evaluation.report import Report
from pconv.evaluation.tracks import get_track

SIZE = 64
PER_ROW = 1
PAPER_ROWS = 12
METHODS = ["pconv", "telea", "ns", "mean"]
LAMA = ["thin", "medium", "thick"]


@pytest.fixture(scope="module")
def run(tiny_checkpoint, tmp_path_factory):
    """One CLI run: (exit code, output folder, report.json)."""
    out = tmp_path_factory.mktemp("report")
    argv = ["--ckpt", tiny_checkpoint, "--size", str(SIZE), "--per-bucket", str(PER_ROW)]
    code = main([*argv, "--workers", "0", "--seed", "0", "-o", str(out)])
    report = json.loads((out / "report.json").read_text()) if code == 0 else None
    return code, out, report


def test_report_has_a_row_per_method_bucket_and_split(run):
    code, out, report = run
    assert code == 0
    assert report["methods"] == METHODS
    assert report["config"]["track"] == "paper"
    for method in METHODS:
        rows = [r for r in report["rows"] if r["method"] == method]
        assert len(rows) == PAPER_ROWS + 1
        assert [r["count"] for r in rows] == [PER_ROW] * PAPER_ROWS + [PER_ROW * PAPER_ROWS]
        groups = [r["group"] for r in rows[:-1]]
        assert groups[::2] == ["0.01-0.1", "0.1-0.2", "0.2-0.3", "0.3-0.4", "0.4-0.5", "0.5-0.6"]
        assert [r["split"] for r in rows[:2]] == ["no_border", "border"]
        for row in rows[:-1]:  # each mask's hole ratio lies in its row's bucket
            low, high = map(float, row["group"].split("-"))
            assert low < row["hole_ratio"] <= high
    with open(out / "report.csv") as file:
        lines = list(csv.DictReader(file))
    assert len(lines) == len(METHODS) * (PAPER_ROWS + 1) + 3  # + the paper's three buckets
    assert {"method", "row", "count", "l1", "psnr", "ssim", "hole_ratio"} <= set(lines[0])


def test_paper_reference_is_shown_and_labelled_with_the_differences(run):
    """The paper's verified PConv cells (Places2, 512, NVIDIA masks), in CSV, JSON and table."""
    _, out, report = run
    paper = {
        "0.1-0.2": (1.09, 28.32, 0.870),
        "0.2-0.3": (1.88, 25.25, 0.779),
        "0.3-0.4": (2.84, 22.89, 0.689),
    }
    reference = report["reference"]
    assert {r["group"]: (r["l1"], r["psnr"], r["ssim"]) for r in reference["rows"]} == paper
    assert "Places2" in reference["label"] and "NVIDIA" in reference["label"]
    assert "differs: images samples, 64 px, generated masks" in reference["label"]
    with open(out / "report.csv") as file:
        lines = [r for r in csv.DictReader(file) if r["method"] == "paper (reference)"]
    assert [(r["row"], float(r["psnr"])) for r in lines] == [(g, v[1]) for g, v in paper.items()]
    console = Console(record=True, width=200)
    for table in Report(**report).tables():
        console.print(table)
    text = console.export_text()
    assert "paper*" in text and "28.32" in text and "0.870" in text
    assert "this run differs" in text


def test_pictures_are_written(run):
    _, out, _ = run
    plot = cv2.imread(str(out / "metrics_vs_hole_ratio.png"))
    examples = cv2.imread(str(out / "examples.png"))
    assert plot is not None and plot.shape[1] > plot.shape[0]  # three panels side by side
    assert examples is not None and examples.shape[0] > examples.shape[1]  # a row per cell


def test_mean_fill_scores_match_a_literal_computation(run):
    """Row 0 holds item 0 only: sample photo 0 with eval mask 0, scored independently."""
    _, _, report = run
    photo = sample_image(SAMPLE_NAMES[0])
    side = min(photo.shape[:2])
    scale = SIZE / side
    resized = cv2.resize(
        photo,
        (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
        interpolation=cv2.INTER_AREA,
    )
    top, left = (resized.shape[0] - SIZE) // 2, (resized.shape[1] - SIZE) // 2
    image = resized[top : top + SIZE, left : left + SIZE].astype(np.float64) / 255
    mask, bucket, border = eval_mask(0, 0, SIZE, SIZE, "paper")
    assert (bucket, border) == (0, False)
    valid = mask.astype(bool)
    filled = image.copy()
    filled[~valid] = np.round(image[valid].mean(axis=0) * 255) / 255
    row = next(
        r for r in report["rows"] if r["method"] == "mean" and r["row"] == "0.01-0.1_no_border"
    )
    mse = ((filled - image) ** 2).mean()
    ssim = structural_similarity(
        filled,
        image,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=2,
    )
    # The image goes through albumentations' resize (not cv2's) in the report: close, not equal.
    assert row["psnr"] == pytest.approx(10 * np.log10(1 / mse), abs=0.3)
    assert row["l1"] == pytest.approx(np.abs(filled - image).mean() * 100, rel=0.05)
    assert row["ssim"] == pytest.approx(ssim, abs=0.01)


def test_classical_baselines_beat_mean_fill_on_psnr(run):
    _, _, report = run
    psnr = {r["method"]: r["psnr"] for r in report["rows"] if r["row"] == "all"}
    assert psnr["telea"] > psnr["mean"] + 1
    assert psnr["ns"] > psnr["mean"] + 1


def test_missing_pretrained_weights_give_a_note_not_a_failure(run):
    _, _, report = run
    for metric in ("lpips", "fid"):
        notes = [n for n in report["notes"] if n.startswith(f"{metric.upper()} skipped")]
        assert metric in report["metrics"] or notes
        # A note about missing weights names the command that fetches them.
        for note in notes:
            assert "pip install" in note or f"`pconv weights {metric}`" in note, note


def test_lama_track_rows_are_the_presets():
    from pconv.data.samples import sample_source
    from pconv.evaluation.baselines import baseline_method

    report, examples = evaluate(
        {"mean": baseline_method("mean")},
        sample_source(),
        get_track("lama"),
        SIZE,
        2,
        progress=False,
    )
    assert [r["row"] for r in report.rows] == ["thin", "medium", "thick", "all"]
    assert [r["count"] for r in report.rows] == [2, 2, 2, 6]
    assert sorted(examples) == [0, 1, 2]
    assert all(len(pictures) == 3 for pictures in examples.values())  # input, mean, truth
    # presets are categories: grouped bars labelled with their measured mean hole ratio
    (panel, *_) = report.bars()
    ratios = [r["hole_ratio"] for r in report.rows[:3]]
    assert panel.categories == [
        f"{name}\nratio {ratio:.2f}" for name, ratio in zip(LAMA, ratios, strict=True)
    ]
    assert report.reference is None
    assert report.picture().size[0] == 3 * PANEL_SIZE[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ckpt", "missing.ckpt"], "missing.ckpt does not exist"),
        (["--baselines", "none"], "nothing to evaluate"),
        (["--baselines", "telea,magic"], "unknown baseline magic"),
        (["--images", "no/such/folder"], "no/such/folder is neither"),
        (["--per-bucket", "0"], "--per-bucket must be at least 1"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    assert main([*argv, "--size", str(SIZE), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_size_not_fitting_the_network_exits_2(tiny_checkpoint, tmp_path, capsys):
    assert main(["--ckpt", tiny_checkpoint, "--size", "72", "-o", str(tmp_path)]) == 2
    assert "multiples of 16" in capsys.readouterr().err


def test_wandb_goes_offline_without_login_and_writes_under_the_output(run, tmp_path, monkeypatch):
    from pconv.evaluation.report import log_to_wandb

    _, out, report = run
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: not logged in
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "out"
    target.mkdir()
    files = {"plot": out / "metrics_vs_hole_ratio.png", "examples": out / "examples.png"}
    note = log_to_wandb(Report(**report), files, "pconv-test", target)
    assert note.startswith(f"W&B run saved offline in {target / 'wandb'}")
    assert list(target.glob("wandb/offline-run-*/run-*.wandb"))
    assert not (tmp_path / "wandb").exists()  # nothing in the current folder


def test_compact_table_is_the_image_weighted_mean_of_both_border_splits(run):
    """One row per bucket: the mean over both splits' images, computed here from the rows."""
    from rich.console import Console

    from pconv.evaluation.report import Report

    _, _, data = run
    report = Report(**data)
    console = Console(width=200, record=True)
    console.print(report.compact_table())
    text = console.export_text()
    for group in ("0.01-0.1", "0.3-0.4", "0.5-0.6"):
        line = next(ln for ln in text.splitlines() if f" {group} " in ln)
        cells = [c.strip() for c in line.split("│") if c.strip()]
        for method, cell in zip(METHODS, cells[2:], strict=True):
            rows = [r for r in data["rows"] if r["method"] == method and r["group"] == group]
            mean = sum(r["psnr"] * r["count"] for r in rows) / sum(r["count"] for r in rows)
            assert cell == f"{mean:.2f}"
        assert cells[1] == str(2 * PER_ROW)


def test_compact_flag_prints_one_table_on_the_held_out_photos(tiny_checkpoint, tmp_path, capsys):
    argv = ["--ckpt", tiny_checkpoint, "--size", str(SIZE), "--per-bucket", "1", "--workers", "0"]
    argv += ["--images", "samples:heldout", "--optional-metrics", "none", "--compact"]
    assert main([*argv, "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("PSNR (dB) on samples:heldout") == 1 and "SSIM" not in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["config"]["images"] == "samples:heldout"


def test_unknown_sample_split_exits_2_with_one_line(tmp_path, capsys):
    assert main(["--images", "samples:holdout", "--baselines", "mean", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown split 'holdout' of the sample photos" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_tables_fit_80_columns_with_every_column_and_the_outside_row(run):
    """The widest paper-track report: four methods, the paper's column, mask files outside
    every bucket and NVIDIA-sized counts. Each line of each table fits a terminal of 80."""
    _, _, data = run
    data = json.loads(json.dumps(data))
    for row in data["rows"]:
        row["count"] *= 1000
    for method in METHODS:
        data["rows"].insert(
            -1,
            {
                "method": method,
                "row": "outside_buckets",
                "group": "outside buckets",
                "split": "",
                "count": 12000,
                "l1": 12.34,
                "psnr": 12.34,
                "ssim": 0.123,
                "hole_ratio": 0.7,
            },
        )
    report = Report(**data)
    console = Console(record=True, width=200)
    for table in [*report.tables(), report.compact_table()]:
        console.print(table)
    lines = console.export_text().splitlines()
    assert "outside buckets" in "\n".join(lines)
    assert max(len(line.rstrip()) for line in lines) <= 80, max(lines, key=len)
