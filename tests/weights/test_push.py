"""`pconv push`: a model card a Hub user would accept, and failures that are one line."""

from __future__ import annotations

import json

import huggingface_hub.constants
import pytest
import torch
from huggingface_hub import ModelCard
from refusals import assert_refused

from pconv.weights.push import main as push_main

METHODS = ["pconv", "telea", "navier_stokes", "mean"]
METRICS = ["l1", "psnr", "ssim"]


@pytest.fixture
def run(tiny_checkpoint, tmp_path):
    """A checkpoint as `pconv fit` writes it (steps, data config, LightningCLI's internal
    keys) and the report.json of a paper-track `pconv evaluate` with three baselines."""
    folder = tmp_path / "run"
    folder.mkdir()
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint |= {"global_step": 1200, "epoch": 3}
    checkpoint["datamodule_hyper_parameters"] = {"source": "places2", "image_size": 256}
    assert "_instantiator" in checkpoint["hyper_parameters"]
    torch.save(checkpoint, folder / "last.ckpt")
    rows = [{"method": method, "row": row, "group": group, "split": split, "count": count,
             "hole_ratio": ratio} | {metric: 1.0 + i for i, metric in enumerate(METRICS)}
            for method in METHODS
            for row, group, split, count, ratio in [("0", "(0.01,0.1]", "border", 20, 0.05),
                                                    ("all", "all", "all", 120, 0.3)]]  # fmt: skip
    config = {"track": "paper", "size": 512, "images": "places2:val", "seed": 0}
    report = {"config": config, "metrics": METRICS, "methods": METHODS, "rows": rows}
    (folder / "report.json").write_text(json.dumps(report))
    return folder


def test_the_card_has_the_hubs_metadata_and_what_a_user_needs(run, tmp_path):
    out = tmp_path / "repo"
    argv = ["--ckpt", run / "last.ckpt", "--repo", "me/pconv", "--report", run / "report.json"]
    assert (
        push_main([str(a) for a in [*argv, "--local-dir", out, "--license", "cc-by-nc-4.0"]]) == 0
    )
    text = (out / "README.md").read_text()
    metadata = ModelCard(text).data.to_dict()
    assert metadata["license"] == "cc-by-nc-4.0" and metadata["library_name"] == "pconv"
    assert metadata["pipeline_tag"] == "image-to-image" and metadata["datasets"] == ["places2"]
    assert "image-inpainting" in metadata["tags"]
    results = metadata["model-index"][0]["results"][0]
    assert {m["type"]: m["value"] for m in results["metrics"]} == {
        "l1": 1.0,
        "psnr": 2.0,
        "ssim": 3.0,
    }
    assert "1200 optimizer steps (3 epochs)" in text and "image_size: `256`" in text
    assert "120 images from `places2:val` at 512×512 px, generated masks" in text
    assert "## Limitations" in text and 'Inpainter.from_pretrained("me/pconv")' in text
    assert "_instantiator" not in text
    # The table shows the network, one column per metric: it fits a page.
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == "| masks | split | images | hole ratio | l1 | psnr | ssim |"
    assert max(map(len, table)) <= 100


@pytest.fixture
def logged_out(monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no"))


def test_push_without_a_login_is_one_line(run, logged_out, capsys):
    argv = ["--ckpt", run / "last.ckpt", "--repo", "me/pconv"]
    assert_refused(push_main, argv, "not logged in to the Hugging Face Hub", capsys, run)


def test_push_without_a_network_is_one_line(run, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_notarealtoken")
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    argv = ["--ckpt", run / "last.ckpt", "--repo", "me/pconv"]
    assert_refused(push_main, argv, "cannot upload to me/pconv", capsys, run)
