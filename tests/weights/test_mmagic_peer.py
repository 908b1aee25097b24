"""mmagic's own PConv code, random weights, converted: our network computes theirs.

Needs mmagic's files, mmengine and a CPU-only mmcv (the ``peer`` extra). mmagic's own
requirements would replace opencv and pull some 40 packages into the environment (pip
--dry-run), and ``import mmagic.models`` fails under numpy 2 (``np.bool8``), so install them
beside it, without their dependencies, and import only the PConv files::

    pip install --no-deps --target /tmp/peer mmagic==1.2.0 mmengine==0.10.7 \\
        mmcv-lite==2.1.0 addict yapf termcolor
    PYTHONPATH=$PWD:/tmp/peer pytest tests/weights/test_mmagic_peer.py
"""

from __future__ import annotations

import importlib
import sys
import types

import pytest
import torch

from pconv.nn.unet import PConvUNet
from pconv.weights.mmagic import convert, convert_state

mmagic = pytest.importorskip(
    "mmagic",
    reason="mmagic, mmengine and mmcv-lite are not installed (the peer extra; see this "
    "module's docstring for installing them without changing the environment)",
)

LEVELS = 4
SIZE = 32


@pytest.fixture(scope="module")
def their_class():
    """Their ``PConvEncoderDecoder``, imported from its own files: the packages above it are
    bare namespaces, so mmagic's other models (and their numpy-1 code) are not imported."""
    from mmengine.registry import init_default_scope

    root = mmagic.__path__[0]
    for name in ("mmagic.models", "mmagic.models.editors", "mmagic.models.editors.pconv"):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [f"{root}/{'/'.join(name.split('.')[1:])}"]
            sys.modules[name] = package
    for module in ("partial_conv", "pconv_encoder", "pconv_decoder", "pconv_encoder_decoder"):
        importlib.import_module(f"mmagic.models.editors.pconv.{module}")
    init_default_scope("mmagic")
    return sys.modules["mmagic.models.editors.pconv.pconv_encoder_decoder"].PConvEncoderDecoder


def randomised(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random BatchNorm statistics and affine parameters (theirs start at identity)."""
    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            shape = module.running_mean.shape
            module.running_mean.copy_(0.1 * torch.randn(shape, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(shape, generator=generator))
            module.weight.data.copy_(1 + 0.1 * torch.randn(shape, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(shape, generator=generator))
    return net.eval()


def their_inpaint(net, image, valid):
    """Their inpaintor's generator on a [0, 1] image: the data preprocessor's
    (255 x - 127.5) / 127.5, the mask 1 - hole repeated over 3 channels, output (y + 1) / 2."""
    y, _ = net(image * 2 - 1, valid.repeat(1, 3, 1, 1))
    return (y + 1) / 2


def inputs(dtype):
    generator = torch.Generator().manual_seed(7)
    image = torch.rand(2, 3, SIZE, SIZE, generator=generator, dtype=dtype)
    valid = (torch.rand(2, 1, SIZE, SIZE, generator=generator) > 0.25).to(dtype)
    valid[0, :, 2:26, 4:30] = 0
    return image, valid


@torch.no_grad()
def test_their_network_converted_computes_the_same_in_float32(their_class):
    torch.manual_seed(0)
    theirs = randomised(
        their_class(
            encoder=dict(type="PConvEncoder", num_layers=LEVELS, norm_cfg=dict(type="BN")),
            decoder=dict(type="PConvDecoder", num_layers=LEVELS),
        ),
        seed=1,
    )
    ours = convert({"state_dict": {f"generator.{k}": v for k, v in theirs.state_dict().items()}},
                   "theirs.pth")  # fmt: skip
    image, valid = inputs(torch.float32)
    assert (ours(image, valid) - their_inpaint(theirs, image, valid)).abs().max() <= 1e-5


@torch.no_grad()
def test_their_network_converted_computes_the_same_in_float64(their_class):
    torch.manual_seed(2)
    theirs = their_class(
        encoder=dict(type="PConvEncoder", num_layers=LEVELS, norm_cfg=dict(type="BN")),
        decoder=dict(type="PConvDecoder", num_layers=LEVELS),
    )
    theirs = randomised(theirs, seed=3).double()
    args, state = convert_state(theirs.state_dict(), "theirs.pth")
    ours = PConvUNet(**args).double().eval()
    ours.load_state_dict(state)
    image, valid = inputs(torch.float64)
    assert (ours(image, valid) - their_inpaint(theirs, image, valid)).abs().max() <= 1e-12
