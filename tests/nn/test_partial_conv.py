"""PartialConv2d against a literal, window-by-window evaluation of the paper's equation."""

import itertools

import numpy as np
import pytest
import torch

from pconv.nn import PartialConv2d


def literal_partial_conv(x, mask, weight, bias, stride, padding, dilation):
    """Eq. (1)-(2) of the paper, one output pixel at a time, in float64 numpy.

    ``mask`` has the same channels as ``x`` (a single-channel mask is expanded first);
    zero padding is hole.
    """
    x, mask, weight = (np.asarray(a, dtype=np.float64) for a in (x, mask, weight))
    n, c, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    mask = np.broadcast_to(mask, x.shape)
    pad = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    xp, mp = np.pad(x, pad), np.pad(mask, pad)
    span_h, span_w = dilation * (kh - 1) + 1, dilation * (kw - 1) + 1
    oh = (h + 2 * padding - span_h) // stride + 1
    ow = (w + 2 * padding - span_w) // stride + 1
    out = np.zeros((n, c_out, oh, ow))
    new_mask = np.zeros((n, 1, oh, ow))
    for b, i, j in itertools.product(range(n), range(oh), range(ow)):
        rows = slice(i * stride, i * stride + span_h, dilation)
        cols = slice(j * stride, j * stride + span_w, dilation)
        window_x, window_m = xp[b, :, rows, cols], mp[b, :, rows, cols]
        valid = window_m.sum()
        if valid > 0:
            for o in range(c_out):
                conv = (weight[o] * window_x * window_m).sum()
                out[b, o, i, j] = conv * window_m.size / valid + (0 if bias is None else bias[o])
            new_mask[b, 0, i, j] = 1
    return out, new_mask


def random_mask(shape, density, generator):
    return (torch.rand(shape, generator=generator, dtype=torch.float64) < density).double()


CASES = [
    # kernel, stride, padding, dilation
    (3, 1, 1, 1),
    (3, 2, 1, 1),
    (5, 2, 2, 1),
    (7, 2, 3, 1),
    (3, 1, 2, 2),
    (5, 1, 0, 1),
]


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation"), CASES)
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_matches_literal_formula(kernel, stride, padding, dilation, density):
    g = torch.Generator().manual_seed(kernel * 100 + stride * 10 + int(density * 10))
    layer = PartialConv2d(3, 4, kernel, stride, padding, dilation).double()
    with torch.no_grad():
        layer.bias.normal_(generator=g)
    x = torch.randn(2, 3, 9, 10, generator=g, dtype=torch.float64)
    mask = random_mask((2, 1, 9, 10), density, g)
    out, new_mask = layer(x, mask)
    want, want_mask = literal_partial_conv(
        x, mask, layer.weight.detach(), layer.bias.detach(), stride, padding, dilation
    )
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(new_mask.numpy(), want_mask)


def test_per_channel_mask_matches_literal_formula():
    g = torch.Generator().manual_seed(7)
    layer = PartialConv2d(4, 5, 3, stride=1, padding=1).double()
    x = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    mask = random_mask((2, 4, 8, 8), 0.4, g)
    out, new_mask = layer(x, mask)
    want, want_mask = literal_partial_conv(
        x, mask, layer.weight.detach(), layer.bias.detach(), 1, 1, 1
    )
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(new_mask.numpy(), want_mask)


def test_no_bias_and_exact_zero_in_holes():
    g = torch.Generator().manual_seed(3)
    layer = PartialConv2d(2, 3, 3, padding=1, bias=False).double()
    x = torch.randn(1, 2, 12, 12, generator=g, dtype=torch.float64)
    mask = torch.ones(1, 1, 12, 12, dtype=torch.float64)
    mask[..., 2:9, 2:9] = 0  # a 7×7 hole: its 5×5 core sees no valid pixel
    out, new_mask = layer(x, mask)
    want, want_mask = literal_partial_conv(x, mask, layer.weight.detach(), None, 1, 1, 1)
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-10, atol=1e-10)
    assert new_mask[..., 3:8, 3:8].sum() == 0
    assert torch.all(out[..., 3:8, 3:8] == 0)


def test_hole_outputs_are_exactly_zero_even_with_bias():
    layer = PartialConv2d(3, 2, 3, padding=1)
    with torch.no_grad():
        layer.bias.fill_(5.0)
    x = torch.randn(1, 3, 6, 6)
    out, new_mask = layer(x, torch.zeros(1, 1, 6, 6))
    assert torch.all(out == 0) and torch.all(new_mask == 0)


def test_batch_and_shape_changes_give_fresh_results():
    """No cached ratio: a second call with another batch size or size is computed anew."""
    g = torch.Generator().manual_seed(11)
    layer = PartialConv2d(3, 2, 3, padding=1).double()
    for n, h, w in [(2, 8, 8), (1, 8, 8), (3, 6, 10), (2, 8, 8)]:
        x = torch.randn(n, 3, h, w, generator=g, dtype=torch.float64)
        mask = random_mask((n, 1, h, w), 0.5, g)
        out, _ = layer(x, mask)
        want, _ = literal_partial_conv(x, mask, layer.weight.detach(), layer.bias.detach(), 1, 1, 1)
        np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-10, atol=1e-10)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(5)
    layer = PartialConv2d(2, 2, 3, stride=2, padding=1).double()
    x = torch.randn(1, 2, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    mask = random_mask((1, 1, 5, 5), 0.5, g)

    def run(inp, weight, bias):
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (inp, mask))[0]

    weight = layer.weight.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(run, (x, weight, bias))


def test_count_and_ratio_stay_float32_under_autocast():
    """bf16 autocast: features go through bf16, but the mask update is exact."""
    g = torch.Generator().manual_seed(2)
    layer = PartialConv2d(64, 8, 3, padding=1)
    x = torch.randn(2, 64, 16, 16, generator=g)
    mask = (torch.rand(2, 1, 16, 16, generator=g) < 0.3).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, new_mask = layer(x, mask)
    want, want_mask = literal_partial_conv(
        x, mask, layer.weight.detach(), layer.bias.detach(), 1, 1, 1
    )
    assert new_mask.dtype == torch.float32
    np.testing.assert_array_equal(new_mask.numpy(), want_mask)
    assert torch.isfinite(out).all()
    # bf16 carries ~3 significant digits; the rescale itself adds no further error.
    np.testing.assert_allclose(out.detach().float().numpy(), want, rtol=0.05, atol=0.05)


def test_wrong_mask_shape_is_a_clear_error():
    layer = PartialConv2d(3, 2, 3, padding=1)
    with pytest.raises(ValueError, match=r"mask of shape \(1, 2, 8, 8\)"):
        layer(torch.randn(1, 3, 8, 8), torch.ones(1, 2, 8, 8))
    with pytest.raises(ValueError, match="does not fit"):
        layer(torch.randn(1, 3, 8, 8), torch.ones(1, 1, 8, 9))
