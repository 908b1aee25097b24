"""PConvUNet: the paper's table, skip-link masks, and size errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pconv.nn import PConvUNet
from pconv.nn.summary import layer_shapes

# The paper's table at 512: (kernel, out channels, stride, BN) per layer, with the decoder's
# input channels being the upsampled previous layer plus the skip it concatenates.
PAPER_TABLE = [
    (7, 64, 2, False),
    (5, 128, 2, True),
    (5, 256, 2, True),
    (3, 512, 2, True),
    (3, 512, 2, True),
    (3, 512, 2, True),
    (3, 512, 2, True),
    (3, 512, 2, True),
    (3, 512, 1, True),  # PConv9, concat PConv7
    (3, 512, 1, True),
    (3, 512, 1, True),
    (3, 512, 1, True),  # PConv12, concat PConv4
    (3, 256, 1, True),  # PConv13, concat PConv3
    (3, 128, 1, True),  # PConv14, concat PConv2
    (3, 64, 1, True),  # PConv15, concat PConv1
    (3, 3, 1, False),  # PConv16, concat the image
]


def paper_in_channels():
    outs = [c for _, c, _, _ in PAPER_TABLE]
    encoder_in = [3, *outs[:7]]
    skips = list(reversed([3, *outs[:7]]))  # PConv7 … PConv1, then the image
    decoder_in = [outs[7 + i] + skips[i] for i in range(8)]
    return encoder_in + decoder_in


def test_paper_model_parameter_count_matches_table():
    # Convolution weights, a bias on the layers without BN, and BN's scale and shift.
    expected = sum(
        k * k * c_in * c_out + (2 * c_out if bn else c_out)
        for (k, c_out, _, bn), c_in in zip(PAPER_TABLE, paper_in_channels(), strict=True)
    )
    net = PConvUNet(levels=8)
    assert sum(p.numel() for p in net.parameters()) == expected


def test_paper_model_layer_shapes_at_512():
    net = PConvUNet(levels=8)
    rows = layer_shapes(net, 512)
    side, sides = 512, []
    for _, _, stride, _ in PAPER_TABLE[:8]:
        side //= stride
        sides.append(side)
    sides += [sides[6 - i] if i < 7 else 512 for i in range(8)]
    assert [shape for _, shape, _ in rows] == [
        (1, c, s, s) for (_, c, _, _), s in zip(PAPER_TABLE, sides, strict=True)
    ]


def test_layers_follow_the_table():
    net = PConvUNet(levels=8)
    blocks = [*net.encoder, *net.decoder]
    for block, (k, c_out, stride, bn), c_in in zip(
        blocks, PAPER_TABLE, paper_in_channels(), strict=True
    ):
        assert block.conv.kernel_size == (k, k)
        assert (block.conv.in_channels, block.conv.out_channels) == (c_in, c_out)
        assert block.conv.stride == (stride, stride)
        assert isinstance(block.bn, nn.BatchNorm2d) == bn
    assert all(isinstance(b.act, nn.ReLU) for b in net.encoder)
    assert all(
        isinstance(b.act, nn.LeakyReLU) and b.act.negative_slope == 0.2 for b in net.decoder[:-1]
    )
    assert isinstance(net.decoder[-1].act, nn.Identity)


def test_seven_levels_at_256():
    net = PConvUNet(levels=7)
    out = net.eval()(torch.rand(1, 3, 256, 256), torch.ones(1, 1, 256, 256))
    assert out.shape == (1, 3, 256, 256)
    assert len(net.encoder) == len(net.decoder) == 7


def literal_unet(net, image, mask):
    """The U-Net written the way the paper draws it: per-channel masks concatenated."""
    x = (image - net.mean) / net.std
    m = mask.expand_as(x)
    features = [(x, m)]
    for block in net.encoder:
        out, new = block.conv(x, m)
        x = block.act(block.bn(out))
        m = new.expand_as(x)
        features.append((x, m))
    for block, (skip, skip_m) in zip(net.decoder, reversed(features[:-1]), strict=True):
        x = torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skip], 1)
        m = torch.cat([F.interpolate(m, scale_factor=2, mode="nearest"), skip_m], 1)
        out, new = block.conv(x, m)
        x = block.act(block.bn(out))
        m = new.expand_as(x)
    return x * net.std + net.mean


def test_skip_links_match_per_channel_mask_construction():
    torch.manual_seed(0)
    net = PConvUNet(levels=4, width_mult=0.125).double().eval()
    image = torch.rand(2, 3, 32, 48, dtype=torch.float64)
    mask = (torch.rand(2, 1, 32, 48) > 0.4).double()
    torch.testing.assert_close(net(image, mask), literal_unet(net, image, mask))


def test_hole_pixels_of_the_input_are_ignored():
    torch.manual_seed(1)
    net = PConvUNet(levels=4, width_mult=0.125).eval()
    image = torch.rand(1, 3, 32, 32)
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:20, 10:26] = 0
    scribbled = torch.where(mask.bool(), image, torch.rand_like(image) * 100)
    torch.testing.assert_close(net(image, mask), net(scribbled, mask))


def test_width_multiplier_scales_hidden_widths():
    net = PConvUNet(levels=4, width_mult=0.25)
    assert [b.conv.out_channels for b in net.encoder] == [16, 32, 64, 128]
    assert net.decoder[-1].conv.out_channels == 3


@pytest.mark.parametrize(("size", "hint"), [((300, 512), "256 or 512 × 512"), ((100, 50), "256")])
def test_bad_sizes_name_sizes_that_work(size, hint):
    net = PConvUNet(levels=8)
    with pytest.raises(ValueError, match=f"multiples of 256; got {size[0]}×{size[1]}") as info:
        net(torch.rand(1, 3, *size), torch.ones(1, 1, *size))
    assert hint in str(info.value)


def test_mask_must_be_single_channel_and_same_size():
    net = PConvUNet(levels=2, width_mult=0.125)
    with pytest.raises(ValueError, match="mask N×1×H×W"):
        net(torch.rand(1, 3, 8, 8), torch.ones(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ"):
        net(torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 12))
