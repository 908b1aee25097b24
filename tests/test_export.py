"""ONNX and TorchScript exports give the PyTorch network's output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pconv.export import export_onnx, export_torchscript, main
from pconv.weights import load_network

HEIGHT, WIDTH = 32, 48


def inputs(batch: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs other than the ones traced at export (another batch size, other values)."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, HEIGHT, WIDTH, generator=generator)
    mask = (torch.rand(batch, 1, HEIGHT, WIDTH, generator=generator) > 0.4).float()
    return image, mask


@pytest.fixture(scope="module")
def net(tiny_checkpoint):
    return load_network(tiny_checkpoint)


def test_onnx_matches_pytorch(net, tmp_path):
    import onnxruntime

    path = export_onnx(net, tmp_path / "net.onnx", HEIGHT, WIDTH)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image, mask = inputs()
    (output,) = session.run(None, {"image": image.numpy(), "mask": mask.numpy()})
    with torch.no_grad():
        expected = net(image, mask).numpy()
    np.testing.assert_allclose(output, expected, atol=1e-5)


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
    assert main(["--ckpt", tiny_checkpoint, "--size", "40", "-o", str(out)]) == 2
    assert "multiples of 16" in capsys.readouterr().err
    assert main(["--ckpt", str(tmp_path / "none.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--format", "torchscript"]) == 2
    assert "checkpoint is needed" in capsys.readouterr().err
