"""pconv.weights: checkpoints, the safetensors pair, URLs, the hub and `pconv weights`."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
import torch
from networks import net_outputs

from pconv.nn.unet import PConvUNet
from pconv.weights import CheckpointError, load_network, load_weights_into
from pconv.weights.export import main as export_main
from pconv.weights.pretrained import main as weights_main
from pconv.weights.push import main as push_main


def test_load_network_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_network(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt") as info:
        load_network(junk)
    # torch's advice to set weights_only=False would let a stranger's file run code.
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
    truncated = tmp_path / "truncated.ckpt"
    torch.save({"state_dict": {"net.w": torch.zeros(8)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated.ckpt is unreadable .*or corrupt"):
        load_network(truncated)


outputs = functools.partial(net_outputs, shape=(2, 32, 48), seed=3)


@pytest.fixture(scope="module")
def expected(tiny_checkpoint) -> torch.Tensor:
    return outputs(load_network(tiny_checkpoint))


@pytest.fixture(scope="module")
def safetensors_pair(tiny_checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pair") / "tiny.safetensors"
    assert export_main(["--ckpt", tiny_checkpoint, "--format", "safetensors", "-o", str(out)]) == 0
    return out


def test_safetensors_round_trip_gives_the_checkpoint_outputs(safetensors_pair, expected):
    record = json.loads(safetensors_pair.with_suffix(".json").read_text())
    assert record["net"]["init_args"] == {
        "levels": 4,
        "width_mult": 0.125,
        "in_channels": 3,
        "normalization": "imagenet",
        "ratio_eps": 0.0,
    }
    assert record["multiple"] == 16 and "pconv_version" in record
    # safetensors: an 8-byte little-endian header length, then a JSON header (no pickle).
    data = safetensors_pair.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    assert "encoder.0.conv.weight" in header
    assert torch.equal(outputs(load_network(safetensors_pair)), expected)
    # model.init_from takes the pair too: its weights go into a configured network.
    net = PConvUNet(levels=4, width_mult=0.125).eval()
    load_weights_into(net, safetensors_pair)
    assert torch.equal(outputs(net), expected)
    with pytest.raises(CheckpointError, match="another architecture"):
        load_weights_into(PConvUNet(levels=3, width_mult=0.125), safetensors_pair)


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_download_checks_the_hash(served, tiny_checkpoint, expected, tmp_path, monkeypatch):
    folder, base = served
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    shutil.copy(tiny_checkpoint, folder / "model.ckpt")
    sha = hashlib.sha256(Path(tiny_checkpoint).read_bytes()).hexdigest()
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_network(f"{base}/model.ckpt#sha256={'0' * 64}")
    assert not list((tmp_path / "torch" / "checkpoints").glob("*model.ckpt"))
    assert torch.equal(outputs(load_network(f"{base}/model.ckpt#sha256={sha}")), expected)
    (cached,) = (tmp_path / "torch" / "checkpoints").glob("*-model.ckpt")
    assert cached.read_bytes() == Path(tiny_checkpoint).read_bytes()


def test_push_to_a_folder_then_pull_through_the_offline_hub_cache(
    tiny_checkpoint, expected, tmp_path, monkeypatch, capsys
):
    import huggingface_hub.constants

    from pconv.inference import Inpainter

    report = tmp_path / "report.json"
    rows = [
        {"method": "pconv", "row": "0", "group": "(0.01,0.1]", "split": "no border",
         "count": 10, "hole_ratio": 0.05, "psnr": 31.234, "l1": 0.5},
        {"method": "pconv", "row": "all", "group": "all", "split": "",
         "count": 60, "hole_ratio": 0.3, "psnr": 25.0, "l1": 2.25},
    ]  # fmt: skip
    report.write_text(json.dumps({"config": {"track": "paper"}, "metrics": ["psnr", "l1"],
                                  "methods": ["pconv"], "rows": rows}))  # fmt: skip
    folder = tmp_path / "repo"
    argv = ["--ckpt", tiny_checkpoint, "--repo", "me/tiny", "--report", str(report)]
    assert push_main([*argv, "--local-dir", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    card = (folder / "README.md").read_text()
    assert "| (0.01,0.1] | no border | 10 | 0.050 | 31.234 | 0.500 |" in card
    assert "| all |  | 60 | 0.300 | 25.000 | 2.250 |" in card
    assert "1 = valid, 0 = hole" in card and 'Inpainter.from_pretrained("me/tiny")' in card
    # A non-empty folder is refused (nothing overwritten).
    assert push_main([*argv, "--local-dir", str(folder)]) == 2
    assert "not empty" in capsys.readouterr().err

    # The hub's cache layout: models--me--tiny/{refs/main, snapshots/<commit>/...}.
    cache = tmp_path / "hub"
    commit = "a" * 40
    snapshot = cache / "models--me--tiny" / "snapshots" / commit
    shutil.copytree(folder, snapshot)
    (cache / "models--me--tiny" / "refs").mkdir()
    (cache / "models--me--tiny" / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert torch.equal(outputs(load_network("hf://me/tiny")), expected)
    pinned = Inpainter.from_pretrained(f"me/tiny@{commit}", device="cpu")
    assert torch.equal(outputs(pinned.net), expected)
    with pytest.raises(Exception, match="neither cached nor reachable"):
        load_network("hf://me/other")


def test_pconv_weights_fetches_checks_and_explains_offline(served, tmp_path, monkeypatch, capsys):
    import pconv.weights.pretrained

    folder, base = served
    payload = b"pretend weights"
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    (folder / f"vgg16-{prefix}.pth").write_bytes(payload)
    (folder / "vgg16-00000000.pth").write_bytes(payload)
    urls = {"vgg16": f"{base}/vgg16-{prefix}.pth"}
    monkeypatch.setattr(pconv.weights.pretrained, "pretrained_urls", lambda: urls)
    target = tmp_path / "out" / "vgg16.pth"
    assert weights_main(["vgg16", "--to", str(target)]) == 0
    assert target.read_bytes() == payload and str(target) in capsys.readouterr().out

    urls["vgg16"] = f"{base}/vgg16-00000000.pth"  # the name's hash prefix is wrong
    assert weights_main(["vgg16", "--to", str(tmp_path / "bad.pth")]) == 2
    assert "SHA-256" in capsys.readouterr().err and not (tmp_path / "bad.pth").exists()

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    urls["vgg16"] = "http://127.0.0.1:9/vgg16-397923af.pth"  # the discard port: refused
    assert weights_main(["vgg16"]) == 1
    message = capsys.readouterr().err
    expected_path = tmp_path / "torch" / "checkpoints" / "vgg16-397923af.pth"
    assert message.count("\n") == 1 and "copy vgg16-397923af.pth" in message
    assert str(expected_path) in message
