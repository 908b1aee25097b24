"""A weights file from a stranger: its architecture is checked before anything is imported,
allocated or cached (pconv.weights.architecture, the safetensors header, the URL cache)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from networks import net_outputs
from refusals import assert_refused
from safetensors.torch import save_file
from servers import serving

from pconv.inference import main as inpaint_main
from pconv.nn.unet import PConvUNet
from pconv.weights import load_network
from pconv.weights.checkpoints import net_config
from pconv.weights.safetensors_pair import METADATA_KEY, save_safetensors

#: A module that leaves a mark when imported: a hostile class_path names it.
HOSTILE = "pconv_i24_hostile"


def tiny_net(levels: int = 2) -> PConvUNet:
    torch.manual_seed(levels)
    return PConvUNet(levels=levels, width_mult=1 / 64).eval()


def write_safetensors(path: Path, net: PConvUNet, record: object) -> Path:
    """``net``'s weights with ``record`` as the architecture in the file's metadata."""
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, path, metadata={METADATA_KEY: json.dumps({"net": record})})
    return path


@pytest.fixture
def hostile_module(tmp_path, monkeypatch) -> Path:
    """An importable module that writes ``imported.txt`` when imported; yields that path."""
    marker = tmp_path / "imported.txt"
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / f"{HOSTILE}.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass Net:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    yield marker
    sys.modules.pop(HOSTILE, None)


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A folder with photo.png and mask.png for `pconv inpaint`."""
    folder = tmp_path / "work"
    folder.mkdir()
    cv2.imwrite(str(folder / "photo.png"), np.full((16, 16, 3), 128, np.uint8))
    mask = np.full((16, 16), 255, np.uint8)
    mask[4:9, 4:9] = 0
    cv2.imwrite(str(folder / "mask.png"), mask)
    return folder


def refuse(ckpt: str | Path, message: str, capsys, workdir: Path) -> str:
    argv = [workdir / "photo.png", workdir / "mask.png", "-o", workdir / "out.png"]
    return assert_refused(inpaint_main, [*argv, "--ckpt", ckpt], message, capsys, workdir)


def test_a_hostile_class_path_is_refused_unimported(hostile_module, workdir, capsys):
    record = {"class_path": f"{HOSTILE}.Net", "init_args": {}}
    weights = write_safetensors(workdir / "model.safetensors", tiny_net(), record)
    refuse(weights, "class_path", capsys, workdir)
    # The same record in an older pair's JSON, and in a checkpoint's hyper-parameters.
    pair = workdir / "pair.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_net().state_dict().items()}, pair)
    pair.with_suffix(".json").write_text(json.dumps({"net": record}))
    refuse(pair, "class_path", capsys, workdir)
    checkpoint = workdir / "run.ckpt"
    state = {f"net.{k}": v for k, v in tiny_net().state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"net": record}}, checkpoint)
    refuse(checkpoint, "class_path", capsys, workdir)
    assert not hostile_module.exists() and HOSTILE not in sys.modules


@pytest.mark.parametrize(
    ("init_args", "message"),
    [
        ({"levels": 2, "width_mult": 64}, "width_mult: 64 is greater than the maximum of 2"),
        ({"levels": 2, "width_mult": 1e-9}, "width_mult: 1e-09 is less than the minimum"),
        ({"levels": 100}, "levels: 100 is greater than the maximum of 10"),
        ({"levels": True}, "levels: True is not of type 'integer'"),
        ({"levels": 2, "width_mult": "1"}, "width_mult: '1' is not of type 'number'"),
        ({"levels": 2, "normalization": "vgg"}, "normalization: 'vgg' is not one of"),
        ({"levels": 2, "hidden": 1}, "init_args: Additional properties are not allowed"),
    ],
)
def test_out_of_range_architectures_are_refused_before_building(
    init_args, message, workdir, capsys, monkeypatch
):
    built = []
    monkeypatch.setattr(PConvUNet, "__init__", lambda *a, **k: built.append(k))
    record = {"class_path": "pconv.nn.unet.PConvUNet", "init_args": init_args}
    weights = workdir / "model.safetensors"
    save_file({"x": torch.zeros(1)}, weights, metadata={METADATA_KEY: json.dumps({"net": record})})
    refuse(weights, message, capsys, workdir)
    assert built == []


def test_nan_in_an_architecture_json_is_refused(workdir, capsys):
    pair = workdir / "pair.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_net().state_dict().items()}, pair)
    pair.with_suffix(".json").write_text(
        '{"net": {"class_path": "PConvUNet", "init_args": {"levels": 2, "width_mult": NaN}}}'
    )
    refuse(pair, "NaN is not a number", capsys, workdir)


def test_an_architecture_that_does_not_fit_the_tensors_is_refused(workdir, capsys):
    record = net_config(PConvUNet(levels=3, width_mult=1 / 64))
    weights = write_safetensors(workdir / "model.safetensors", tiny_net(levels=2), record)
    refuse(weights, "do not fit the network its architecture describes", capsys, workdir)
    record = net_config(PConvUNet(levels=2, width_mult=1 / 32))
    weights = write_safetensors(workdir / "wide.safetensors", tiny_net(levels=2), record)
    refuse(weights, "shape: decoder.0.bn.bias [1] (expected [2])", capsys, workdir)


def test_a_truncated_safetensors_file_is_refused(workdir, capsys):
    weights, _ = save_safetensors(tiny_net(), workdir / "model.safetensors")
    weights.write_bytes(weights.read_bytes()[:-100])
    refuse(weights, "is not a complete safetensors file", capsys, workdir)


def test_the_architecture_travels_inside_the_safetensors_file(tmp_path):
    net = tiny_net()
    weights, config = save_safetensors(net, tmp_path / "model.safetensors")
    config.unlink()  # one file, one hash
    assert torch.equal(net_outputs(load_network(weights)), net_outputs(net))


@pytest.fixture
def two_servers(tmp_path):
    """Two HTTP servers on 127.0.0.1, each serving its own folder; yields [(folder, url)]."""
    folders = [tmp_path / "a", tmp_path / "b"]
    with contextlib.ExitStack() as stack:
        sites = []
        for folder in folders:
            folder.mkdir()
            sites.append((folder, stack.enter_context(serving(folder))))
        yield sites


def test_two_urls_with_one_file_name_are_two_cache_entries(two_servers, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    nets = [tiny_net(levels=2), tiny_net(levels=3)]
    for (folder, _), net in zip(two_servers, nets, strict=True):
        save_safetensors(net, folder / "last.safetensors")
    for (_, url), net in zip(two_servers, nets, strict=True):
        assert torch.equal(net_outputs(load_network(f"{url}/last.safetensors")), net_outputs(net))
    cached = sorted(p.name for p in (tmp_path / "torch" / "checkpoints").iterdir())
    assert len(cached) == 2 and all(name.endswith("-last.safetensors") for name in cached)


def test_a_refused_download_leaves_nothing_cached(
    two_servers, hostile_module, workdir, tmp_path, monkeypatch, capsys
):
    cache = tmp_path / "torch"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(cache))
    (folder, url), (other, other_url) = two_servers
    write_safetensors(folder / "last.safetensors", tiny_net(), {"class_path": f"{HOSTILE}.Net"})
    message = refuse(f"{url}/last.safetensors", "class_path", capsys, workdir)
    assert f"{url}/last.safetensors describes no pconv network" in message
    save_safetensors(tiny_net(), other / "last.safetensors")
    (other / "last.safetensors").write_bytes((other / "last.safetensors").read_bytes()[:-100])
    refuse(f"{other_url}/last.safetensors", "not a complete safetensors", capsys, workdir)
    assert not hostile_module.exists() and HOSTILE not in sys.modules
    assert not any(path.is_file() for path in cache.rglob("*"))
