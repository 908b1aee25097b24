"""InpaintingLoss term by term against literal computations."""

import itertools
import urllib.error

import numpy as np
import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers

from pconv.losses import InpaintingLoss, WeightsUnavailableError
from pconv.losses.inpainting import gram_matrix


def make_batch(seed, n=2, h=16, w=16):
    g = torch.Generator().manual_seed(seed)
    output = torch.rand(n, 3, h, w, generator=g, dtype=torch.float64)
    target = torch.rand(n, 3, h, w, generator=g, dtype=torch.float64)
    mask = torch.ones(n, 1, h, w, dtype=torch.float64)
    mask[0, :, 3:9, 4:12] = 0
    mask[1, :, 0:5, 10:16] = 0  # touches the border
    mask[1, :, 12, 2] = 0
    return output, target, mask


def literal_region(mask):
    """R: pixels with a hole pixel in their 3×3 neighbourhood, by explicit scan."""
    n, _, h, w = mask.shape
    region = np.zeros((n, h, w), dtype=bool)
    for b, i, j in itertools.product(range(n), range(h), range(w)):
        window = mask[b, 0, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
        region[b, i, j] = (window == 0).any()
    return region


def literal_tv(comp, mask):
    comp, mask = comp.numpy(), mask.numpy()
    region = literal_region(mask)
    n, c, h, w = comp.shape
    total = 0.0
    for b, ch, i, j in itertools.product(range(n), range(c), range(h), range(w)):
        if j + 1 < w and region[b, i, j] and region[b, i, j + 1]:
            total += abs(comp[b, ch, i, j + 1] - comp[b, ch, i, j])
        if i + 1 < h and region[b, i, j] and region[b, i + 1, j]:
            total += abs(comp[b, ch, i + 1, j] - comp[b, ch, i, j])
    return total / comp.size


def literal_gram(features):
    f = features.numpy()
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return np.stack([flat[b] @ flat[b].T for b in range(n)]) / (c * h * w)


def vgg_pools(loss, image):
    """pool1..3 through a separate torchvision vgg16 holding the same weights."""
    reference = make_layers(cfgs["D"])[:17].double()
    reference.load_state_dict(loss.vgg.features.state_dict())
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    x = (image - mean) / std
    return [reference[:end](x).detach() for end in (5, 10, 17)]


@pytest.fixture(scope="module")
def loss():
    torch.manual_seed(0)
    return InpaintingLoss(vgg_weights=None).double()


def test_every_term_matches_the_paper(loss):
    output, target, mask = make_batch(0)
    got = loss(output, target, mask)

    o, t, m = output.numpy(), target.numpy(), mask.numpy()
    n_elements = o.size
    valid = np.abs(m * (o - t)).sum() / n_elements
    hole = np.abs((1 - m) * (o - t)).sum() / n_elements
    comp = mask * target + (1 - mask) * output
    out_p, comp_p, gt_p = vgg_pools(loss, output), vgg_pools(loss, comp), vgg_pools(loss, target)
    perceptual = sum(
        np.abs(a.numpy() - g.numpy()).sum() / g.numel()
        + np.abs(c.numpy() - g.numpy()).sum() / g.numel()
        for a, c, g in zip(out_p, comp_p, gt_p, strict=True)
    )
    style_out = sum(
        np.abs(literal_gram(a) - literal_gram(g)).mean() for a, g in zip(out_p, gt_p, strict=True)
    )
    style_comp = sum(
        np.abs(literal_gram(c) - literal_gram(g)).mean() for c, g in zip(comp_p, gt_p, strict=True)
    )
    tv = literal_tv(comp, mask)
    want = {
        "valid": valid,
        "hole": hole,
        "perceptual": perceptual,
        "style_out": style_out,
        "style_comp": style_comp,
        "tv": tv,
    }
    want["total"] = valid + 6 * hole + 0.05 * perceptual + 120 * (style_out + style_comp) + 0.1 * tv
    for key, value in want.items():
        np.testing.assert_allclose(got[key].item(), value, rtol=1e-5, err_msg=key)
    assert set(got) == set(want)


def test_weights_are_constructor_arguments():
    torch.manual_seed(0)
    weights = dict(
        valid_weight=2.0, hole_weight=3.0, perceptual_weight=0.5, style_weight=7.0, tv_weight=1.5
    )
    custom = InpaintingLoss(vgg_weights=None, **weights).double()
    terms = custom(*make_batch(1))
    want = (
        2.0 * terms["valid"]
        + 3.0 * terms["hole"]
        + 0.5 * terms["perceptual"]
        + 7.0 * (terms["style_out"] + terms["style_comp"])
        + 1.5 * terms["tv"]
    )
    torch.testing.assert_close(terms["total"], want)


def test_hole_term_is_blind_to_valid_pixels_and_valid_term_to_holes(loss):
    output, target, mask = make_batch(2)
    base = loss(output, target, mask)
    edited_valid = torch.where(mask.bool(), output + 0.3, output)
    edited_hole = torch.where(mask.bool(), output, output + 0.3)
    assert loss(edited_valid, target, mask)["hole"].item() == pytest.approx(base["hole"].item())
    assert loss(edited_valid, target, mask)["valid"].item() != pytest.approx(base["valid"].item())
    assert loss(edited_hole, target, mask)["valid"].item() == pytest.approx(base["valid"].item())
    assert loss(edited_hole, target, mask)["hole"].item() != pytest.approx(base["hole"].item())


def test_tv_ignores_edits_outside_the_dilated_hole(loss):
    output, target, mask = make_batch(3)
    outside = torch.from_numpy(~literal_region(mask.numpy())).unsqueeze(1)
    base = loss(output, target, mask)["tv"]
    # comp takes the target outside the hole, so edit the target there.
    edited = torch.where(outside, torch.rand_like(target), target)
    assert loss(output, edited, mask)["tv"].item() == pytest.approx(base.item())
    # A pixel on the ring of R (valid, next to the hole) does count.
    ring = torch.from_numpy(literal_region(mask.numpy())).unsqueeze(1) & mask.bool()
    edited_ring = torch.where(ring, target + 0.5, target)
    assert loss(output, edited_ring, mask)["tv"].item() != pytest.approx(base.item())


def test_gram_normalisation_and_float32_under_autocast():
    g = torch.Generator().manual_seed(4)
    features = torch.randn(2, 4, 8, 6, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(gram_matrix(features).numpy(), literal_gram(features), rtol=1e-12)
    # Values whose products overflow fp16 (sum of 4096 products of ~1e4).
    big = (torch.rand(1, 4, 64, 64, generator=g) * 100 + 100).half()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(big)
    assert gram.dtype == torch.float32
    np.testing.assert_allclose(gram.numpy(), literal_gram(big.double()), rtol=1e-5)


def test_one_pass_for_output_and_comp_and_gt_without_grad(loss, monkeypatch):
    calls = []
    forward = type(loss.vgg).forward

    def spy(module, image):
        calls.append((image.shape[0], torch.is_grad_enabled()))
        return forward(module, image)

    monkeypatch.setattr(type(loss.vgg), "forward", spy)
    output, target, mask = make_batch(5)
    loss(output.requires_grad_(True), target, mask)
    assert calls == [(4, True), (2, False)]


def test_vgg_is_frozen_and_stays_in_eval(loss):
    loss.train()
    assert not loss.vgg.training
    assert not any(p.requires_grad for p in loss.vgg.parameters())
    output, target, mask = make_batch(6)
    output.requires_grad_(True)
    loss(output, target, mask)["total"].backward()
    assert all(p.grad is None for p in loss.vgg.parameters())
    assert output.grad is not None and output.grad.abs().sum() > 0


def test_vgg_weights_from_local_file(tmp_path):
    torch.manual_seed(8)
    # Saved the way torchvision's vgg16 names its layers (the classifier is left out for speed).
    full = {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}
    path = tmp_path / "vgg16.pth"
    torch.save(full, path)
    loaded = InpaintingLoss(vgg_weights=str(path))
    torch.testing.assert_close(loaded.vgg.features[0].weight, full["features.0.weight"])


def test_missing_vgg_file_is_one_clear_line(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="does not exist") as info:
        InpaintingLoss(vgg_weights=str(tmp_path / "nope.pth"))
    assert "\n" not in str(info.value)


def test_offline_imagenet_weights_fail_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*_args, **_kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        InpaintingLoss(vgg_weights="imagenet")
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "checkpoints" / "vgg16-397923af.pth") in message
    assert "vgg_weights" in message


def test_without_perceptual_and_style_weights_vgg_is_not_built(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *_: pytest.fail("download"))
    # imagenet weights, not cached: neither downloaded nor loaded, since no term uses them.
    pixel_only = InpaintingLoss(perceptual_weight=0, style_weight=0, vgg_weights="imagenet")
    assert pixel_only.vgg is None and not list(pixel_only.parameters())
    pixel_only = pixel_only.double()
    output, target, mask = make_batch(6)
    terms = pixel_only(output, target, mask)
    o, t, m = output.numpy(), target.numpy(), mask.numpy()
    valid = np.abs(m * (o - t)).mean()
    hole = np.abs((1 - m) * (o - t)).mean()
    tv = literal_tv(torch.from_numpy(m * t + (1 - m) * o), mask)
    assert terms["perceptual"] == terms["style_out"] == terms["style_comp"] == 0
    np.testing.assert_allclose(terms["total"].item(), valid + 6 * hole + 0.1 * tv, rtol=1e-9)
