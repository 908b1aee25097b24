"""ONNX and TorchScript exports give the PyTorch network's output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from refusals import READ_ONLY, assert_refused

from pconv.weights import load_network
from pconv.weights.export import export_onnx, export_torchscript, main

HEIGHT, WIDTH = 32, 48


def inputs(
    batch: int = 2, seed: int = 1, height: int = HEIGHT, width: int = WIDTH
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs other than the ones traced at export (another batch size, other values)."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=generator)
    mask = (torch.rand(batch, 1, height, width, generator=generator) > 0.4).float()
    return image, mask


@pytest.fixture(scope="module")
def net(tiny_checkpoint):
    return load_network(tiny_checkpoint)


@pytest.mark.parametrize("composite", [False, True])
def test_onnx_takes_any_multiple_of_the_size_and_composites(net, tmp_path, composite):
    import onnx
    import onnxruntime

    path = export_onnx(net, tmp_path / "net.onnx", HEIGHT, WIDTH, composite=composite)
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert metadata["levels"] == "4" and metadata["multiple"] == "16"
    assert "1 = valid, 0 = hole" in metadata["mask_convention"] and "pconv_version" in metadata
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for height, width in ((HEIGHT, WIDTH), (64, 16)):  # the traced size and another one
        image, mask = inputs(height=height, width=width)
        (output,) = session.run(None, {"image": image.numpy(), "mask": mask.numpy()})
        with torch.no_grad():
            raw = net(image, mask)
        if composite:
            valid = mask.expand_as(image).bool().numpy()
            np.testing.assert_array_equal(output[valid], image.numpy()[valid])  # exactly
            expected = raw.clamp(0, 1).numpy()
            np.testing.assert_allclose(output[~valid], expected[~valid], atol=1e-5)
        else:
            np.testing.assert_allclose(output, raw.numpy(), atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_matches_pytorch(net, tmp_path):
    path = export_torchscript(net, tmp_path / "net.pt", HEIGHT, WIDTH)
    loaded = torch.jit.load(str(path))
    image, mask = inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded(image, mask), net(image, mask), atol=1e-5, rtol=0)


def test_cli_writes_the_file_and_refuses_bad_input(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["--ckpt", tiny_checkpoint, "--size", "32", "-o", str(out)]) == 0
    assert out.stat().st_size > 0 and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    before = out.read_bytes()
    checkpoint_before = Path(tiny_checkpoint).read_bytes()
    bad = {
        ("--size", "40", "--overwrite"): "multiples of 16",
        ("--size", "-64"): "--size -64 is not a positive size",
        ("--size", "0"): "--size 0 is not a positive size",
        ("--size", "32", "--height", "-16"): "--height -16 is not a positive size",
        ("--size", "32"): "exists; pass --overwrite",
    }
    for args, message in bad.items():
        assert main(["--ckpt", tiny_checkpoint, *args, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert out.read_bytes() == before and Path(tiny_checkpoint).read_bytes() == checkpoint_before
    assert main(["--ckpt", str(tmp_path / "none.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--format", "torchscript"]) == 2
    assert "checkpoint is needed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda path: path.write_bytes(Path(path).with_name("c.ckpt").read_bytes()[:3000]),
         "is unreadable (not a complete PyTorch file: empty, truncated or corrupt)"),
        (lambda path: path.write_bytes(b"garbage bytes, not a checkpoint"),  # torch: no reason
         "is unreadable (not a complete PyTorch file: empty, truncated or corrupt)"),
        (lambda path: torch.save({"state_dict": {"net.x": torch.zeros(1)}}, path),
         "its tensors do not fit the network its architecture describes (PConvUNet with the "
         "defaults; missing: decoder.0.bn.bias"),
        (lambda path: torch.save({"payload": Payload(path.with_name("ran"))}, path),
         "it is not a plain checkpoint: it holds Python objects besides weights"),
    ],
    ids=["truncated", "garbage", "other-architecture", "pickle-payload"],
)  # fmt: skip
def test_a_bad_checkpoint_is_explained(user_folder, content, message, capsys):
    content(user_folder / "bad.ckpt")
    argv = ["--ckpt", user_folder / "bad.ckpt", "-o", user_folder / "bad.onnx"]
    err = assert_refused(main, argv, message, capsys, user_folder)
    assert "Re-running torch.load" not in err and not (user_folder / "ran").exists()


class Payload:
    """Unpickling this would run code: it would create the file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.fixture()
def user_folder(tiny_checkpoint, tmp_path):
    """c.ckpt and c2.json (a checkpoint under an odd name) and a folder named like a model."""
    import shutil

    shutil.copy(tiny_checkpoint, tmp_path / "c.ckpt")
    shutil.copy(tiny_checkpoint, tmp_path / "c2.json")
    (tmp_path / "folder.onnx").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # The output is the input: refused even with --overwrite, for every format.
        (["--ckpt", "c.ckpt", "--format", "safetensors", "-o", "c.ckpt", "--overwrite"],
         "c.ckpt is the input"),
        (["--ckpt", "c.ckpt", "--format", "onnx", "-o", "c.ckpt", "--overwrite"],
         "c.ckpt is the input"),
        (["--ckpt", "c.ckpt", "--format", "torchscript", "-o", "c.ckpt", "--overwrite"],
         "c.ckpt is the input"),
        (["--ckpt", "c.ckpt", "--format", "onnx", "-o", "c.ckpt"], "--overwrite never replaces"),
        # The safetensors' companion JSON would replace the input checkpoint c2.json.
        (["--ckpt", "c2.json", "--format", "safetensors", "-o", "c2.safetensors",
          "--overwrite"], "c2.json is the input"),
        (["--ckpt", "c.ckpt", "-o", "folder.onnx"], "folder.onnx is a folder; give a file"),
        (["--ckpt", "c.ckpt", "--format", "safetensors", "-o", "w.onnx"],
         "names a onnx file but --format is safetensors"),
        (["--ckpt", "c.ckpt", "--format", "torchscript", "--size", "100000"],
         "tracing at 100000×100000 needs about"),
    ],
)  # fmt: skip
def test_export_never_replaces_its_input_nor_allocates_the_impossible(
    user_folder, argv, message, capsys, monkeypatch
):
    monkeypatch.chdir(user_folder)
    assert_refused(main, argv, message, capsys, user_folder)


def test_a_read_only_output_is_named_not_the_temporary_file(user_folder, capsys):
    out = READ_ONLY / "m.onnx"
    assert main(["--ckpt", str(user_folder / "c.ckpt"), "--size", "32", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}: Permission denied" in err and ".m.onnx." not in err, err
    assert err.count("\n") == 1
