"""mmagic's published PConv: converted exactly, fetched by name, loaded everywhere.

The reference is their network written out literally from its equations (their
``PartialConv2d``, ``PConvEncoder``, ``PConvDecoder`` and inpaintor's normalisation; see
pconv.weights.mmagic), in float64, on their state-dict layout with random weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import partial

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from servers import serving

import pconv.weights.named
from pconv.inference import Inpainter
from pconv.inference import main as inpaint_main
from pconv.nn.partial_conv import PartialConv2d
from pconv.nn.unet import PConvUNet
from pconv.training.preflight import check_init_from
from pconv.weights import CheckpointError
from pconv.weights.mmagic import convert, convert_state, their_state
from pconv.weights.named import converted_path
from pconv.weights.pretrained import main as weights_main

#: Their encoder: (in, out, kernel) of enc1…enc4; deeper levels are 512 → 512, 3×3.
THEIR_ENCODER = [(3, 64, 7), (64, 128, 5), (128, 256, 5), (256, 512, 3)]
THEIR_EPS, BN_EPS, SLOPE = 1e-8, 1e-5, 0.2
#: The fewest levels their network has (enc1…enc4 and dec1…dec4 are always built).
LEVELS = 4
SIZE = 32


def their_widths(levels: int) -> list[int]:
    """Channels of h0 (the image) … h_levels in their encoder."""
    return [3] + [out for _, out, _ in THEIR_ENCODER] + [512] * (levels - len(THEIR_ENCODER))


def their_state_dict(levels: int, seed: int = 0, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """Random weights in the layout of their ``PConvEncoderDecoder.state_dict()``."""
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=dtype)

    widths = their_widths(levels)
    kernels = [k for _, _, k in THEIR_ENCODER] + [3] * (levels - len(THEIR_ENCODER))
    layers = [(f"encoder.enc{i}", widths[i - 1], widths[i], kernels[i - 1], i > 1)
              for i in range(1, levels + 1)]  # fmt: skip
    layers += [(f"decoder.dec{i}", widths[i] + widths[i - 1], widths[i - 1], 3, i > 1)
               for i in range(1, levels + 1)]  # fmt: skip
    state = {}
    for name, cin, cout, k, bn in layers:
        state[f"{name}.conv.weight"] = randn(cout, cin, k, k) * (2 / (cin * k * k)) ** 0.5
        state[f"{name}.conv.weight_mask_updater"] = torch.ones(cout, cin, k, k, dtype=dtype)
        if bn:
            state[f"{name}.bn.weight"] = 1 + 0.1 * randn(cout)
            state[f"{name}.bn.bias"] = 0.1 * randn(cout)
            state[f"{name}.bn.running_mean"] = 0.1 * randn(cout)
            state[f"{name}.bn.running_var"] = 0.5 + torch.rand(
                cout, generator=generator, dtype=dtype
            )
            state[f"{name}.bn.num_batches_tracked"] = torch.tensor(1000)
        else:
            state[f"{name}.conv.bias"] = 0.1 * randn(cout)
    # Outputs of a trained network's scale (|y| ~ 1 rather than ~ 10), so that float32's
    # rounding is compared on the scale the 1e-5 bound is meant for.
    state["decoder.dec1.conv.weight"] *= 0.1
    return state


def their_partial_conv(x, mask, weight, bias, stride, eps=THEIR_EPS):
    """Their partial convolution, multi-channel mask: counts per output channel, the ratio
    sum(1) / (sum(M) + eps), the bias taken out of the rescale, the mask clamped to 1."""
    k = weight.shape[-1]
    count = F.conv2d(mask, torch.ones_like(weight), stride=stride, padding=k // 2)
    updated = count.clamp(0, 1)
    ratio = weight.shape[1] * k * k / (count + eps) * updated
    raw = F.conv2d(x * mask, weight, bias, stride=stride, padding=k // 2)
    if bias is None:
        return raw * ratio, updated
    b = bias.view(1, -1, 1, 1)
    return ((raw - b) * ratio + b) * updated, updated


def their_network(state, levels, image, valid):
    """Their inpaintor's generator on a [0, 1] image and a 1 = valid mask, back on [0, 1]."""

    def layer(name, x, mask, stride, act):
        x, mask = their_partial_conv(
            x, mask, state[f"{name}.conv.weight"], state.get(f"{name}.conv.bias"), stride
        )
        if f"{name}.bn.weight" in state:
            x = F.batch_norm(x, state[f"{name}.bn.running_mean"], state[f"{name}.bn.running_var"],
                             state[f"{name}.bn.weight"], state[f"{name}.bn.bias"], False, 0.0,
                             BN_EPS)  # fmt: skip
        return act(x), mask

    feats, masks = [image * 2 - 1], [valid.repeat(1, 3, 1, 1)]
    for i in range(1, levels + 1):
        h, m = layer(f"encoder.enc{i}", feats[-1], masks[-1], 2, F.relu)
        feats.append(h)
        masks.append(m)
    h, m = feats[-1], masks[-1]
    for i in range(levels, 0, -1):
        h = torch.cat([F.interpolate(h, scale_factor=2.0, mode="nearest"), feats[i - 1]], 1)
        m = torch.cat([F.interpolate(m, scale_factor=2.0, mode="nearest"), masks[i - 1]], 1)
        act = (lambda t: t) if i == 1 else partial(F.leaky_relu, negative_slope=SLOPE)
        h, m = layer(f"decoder.dec{i}", h, m, 1, act)
    return (h + 1) / 2


def inputs(dtype=torch.float64, seed=1):
    """Random images and masks with small holes and one large one (all-hole windows deep
    in the encoder)."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, SIZE, SIZE, generator=generator, dtype=dtype)
    valid = (torch.rand(2, 1, SIZE, SIZE, generator=generator) > 0.25).to(dtype)
    valid[0, :, 2:26, 4:30] = 0
    return image, valid


def test_the_converted_network_computes_theirs_in_float64():
    state = their_state_dict(LEVELS)
    checkpoint = {"state_dict": {f"generator.{k}": v for k, v in state.items()}}
    args, converted = convert_state(their_state(checkpoint, "theirs.pth"), "theirs.pth")
    net = PConvUNet(**args).double().eval()  # float64 weights stay float64
    net.load_state_dict(converted)
    image, valid = inputs()
    with torch.no_grad():
        ours = net(image, valid)
    reference = their_network(state, LEVELS, image, valid)
    assert (ours - reference).abs().max() <= 1e-12
    # The architecture keys matter: the paper's normalisation computes something else.
    paper = PConvUNet(levels=LEVELS, ratio_eps=1e-8).double().eval()
    paper.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert (paper(image, valid) - reference).abs().max() > 1e-3


def test_the_converted_network_computes_theirs_in_float32():
    state = their_state_dict(LEVELS, seed=2, dtype=torch.float32)
    net = convert(state, "theirs.pth")  # a bare PConvEncoderDecoder state dict
    image, valid = inputs(torch.float32, seed=3)
    with torch.no_grad():
        assert (net(image, valid) - their_network(state, LEVELS, image, valid)).abs().max() <= 1e-5


def test_ratio_eps_is_their_additive_eps():
    """With one valid pixel per window, eps = 1e-8 moves the ratio by 1e-8 relative."""
    torch.manual_seed(0)
    conv = PartialConv2d(2, 3, 3, padding=1, ratio_eps=THEIR_EPS).double()
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    mask = torch.zeros(1, 2, 6, 6, dtype=torch.float64)
    mask[..., ::3, ::3] = 1
    reference, _ = their_partial_conv(x, mask, conv.weight, conv.bias, 1)
    with torch.no_grad():
        assert (conv(x, mask)[0] - reference).abs().max() <= 1e-14
        conv.ratio_eps = 0.0
        assert (conv(x, mask)[0] - reference).abs().max() > 1e-9


def test_tensors_without_a_place_are_refused():
    state = their_state_dict(LEVELS, dtype=torch.float32)
    with pytest.raises(CheckpointError, match="theirs.pth is not an mmagic PConv checkpoint"):
        convert({"state_dict": {"x": torch.zeros(1)}}, "theirs.pth")
    with pytest.raises(CheckpointError, match="decoder.dec9.conv.weight has no counterpart"):
        convert({**state, "decoder.dec9.conv.weight": torch.zeros(1)}, "theirs.pth")
    state["encoder.enc2.conv.weight_mask_updater"] = torch.ones(1, 1, 5, 5)
    with pytest.raises(CheckpointError, match="enc2.conv.weight_mask_updater is not the all-ones"):
        convert(state, "theirs.pth")


@pytest.fixture
def published(tmp_path, monkeypatch):
    """mmagic-places2 served from 127.0.0.1: a synthetic checkpoint of their layout (as
    mmediting wrote it: meta, ``generator.`` state dict, optimizer) under a name carrying
    its hash prefix; yields their state dict. The torch cache is a fresh folder."""
    folder = tmp_path / "served"
    folder.mkdir()
    state = their_state_dict(LEVELS, seed=4, dtype=torch.float32)
    staged = folder / "staged.pth"
    torch.save({"meta": {"mmedit_version": "0.5.0", "iter": 500000},
                "state_dict": {f"generator.{k}": v for k, v in state.items()},
                "optimizer": {"generator": {"state": {}, "param_groups": []}}}, staged)  # fmt: skip
    prefix = hashlib.sha256(staged.read_bytes()).hexdigest()[:8]
    name = f"pconv_256x256_stage2_4x2_places_20200619-{prefix}.pth"
    staged.rename(folder / name)
    entry = pconv.weights.named.NAMED["mmagic-places2"]
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    with serving(folder) as base:
        monkeypatch.setitem(pconv.weights.named.NAMED, "mmagic-places2",
                            dataclasses.replace(entry, url=f"{base}/{name}"))  # fmt: skip
        yield state


def outputs(net, state):
    image, valid = inputs(torch.float32, seed=5)
    with torch.no_grad():
        return net(image, valid), their_network(state, LEVELS, image, valid)


def test_pconv_weights_fetches_converts_and_caches_by_name(published, tmp_path, capsys):
    assert weights_main(["mmagic-places2"]) == 0
    converted = converted_path("mmagic-places2")
    assert f"mmagic-places2: {converted}" in capsys.readouterr().out
    assert converted.name == f"pconv-mmagic-places2-{converted.name.split('-')[-1]}"
    ours, theirs = outputs(Inpainter.from_pretrained("mmagic-places2", device="cpu").net, published)
    assert (ours - theirs).abs().max() <= 1e-5
    # `pconv inpaint --ckpt NAME` takes the name like any weights spec.
    cv2.imwrite(str(tmp_path / "photo.png"), np.full((SIZE, SIZE, 3), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "mask.png"), np.pad(np.zeros((8, 8), np.uint8), 12, "constant",
                                                   constant_values=255))  # fmt: skip
    argv = [tmp_path / "photo.png", tmp_path / "mask.png", "-o", tmp_path / "out.png"]
    assert inpaint_main([*map(str, argv), "--ckpt", "mmagic-places2", "--device", "cpu"]) == 0
    assert cv2.imread(str(tmp_path / "out.png")).shape == (SIZE, SIZE, 3)
    # Converted once: the cached file serves every later load, even without the server.
    entry = pconv.weights.named.NAMED["mmagic-places2"]
    pconv.weights.named.NAMED["mmagic-places2"] = dataclasses.replace(
        entry, url=f"http://127.0.0.1:9/{entry.file_name}"
    )
    before = converted.stat().st_mtime_ns
    Inpainter.from_pretrained("mmagic-places2", device="cpu")
    assert converted.stat().st_mtime_ns == before


def test_fine_tuning_starts_from_a_published_name(published):
    from pconv.losses.inpainting import InpaintingLoss
    from pconv.training.module import InpaintingModule

    config = {"init_args": {"levels": LEVELS, "normalization": "symmetric", "ratio_eps": 1e-8}}
    check_init_from("mmagic-places2", {"net": config})
    module = InpaintingModule(
        net=PConvUNet(**config["init_args"]),
        loss=InpaintingLoss(vgg_weights=None),
        init_from="mmagic-places2",
    )
    module.setup("fit")
    ours, theirs = outputs(module.net.eval(), published)
    assert (ours - theirs).abs().max() <= 1e-5
    # A config of the paper's normalisation is told which key to set.
    config["init_args"]["normalization"] = "imagenet"
    with pytest.raises(CheckpointError, match="normalization=imagenet .checkpoint: symmetric"):
        check_init_from("mmagic-places2", {"net": config})


def test_offline_says_which_file_to_fetch_and_where(published, tmp_path, capsys):
    entry = pconv.weights.named.NAMED["mmagic-places2"]
    name = entry.file_name
    pconv.weights.named.NAMED["mmagic-places2"] = dataclasses.replace(
        entry,
        url=f"http://127.0.0.1:9/{name}",  # the discard port: refused
    )
    assert weights_main(["mmagic-places2"]) == 1
    message = capsys.readouterr().err
    target = tmp_path / "torch" / "checkpoints" / name
    assert message.count("\n") == 1 and f"copy {name} (from http://127.0.0.1:9/{name}) to " \
        f"{target}" in message  # fmt: skip
    assert not (tmp_path / "torch" / "checkpoints").exists() or not any(
        (tmp_path / "torch" / "checkpoints").iterdir()
    )
