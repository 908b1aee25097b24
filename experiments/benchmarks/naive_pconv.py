"""The baseline we compare against: partial convolutions as the common ports write them.

This follows NVIDIA/partialconv's ``PartialConv2d(multi_channel=True)`` and naoto0804's
``PConvUNet``/``InpaintingLoss``, the designs most users start from:

- every layer counts the valid inputs of a window with a full C_out×C_in×k×k all-ones
  convolution of a C_in-channel mask, so the mask costs as much as the features;
- the updated mask has C_out channels and is carried through the network, concatenated on the
  skip links like the features;
- the loss runs VGG-16 three times, on the output, the composite and the ground truth.

The architecture and the loss math are the same as ``pconv``'s (same layer widths, kernels,
BN placement, ImageNet standardisation inside the network, sum(1)/sum(M) rescale with the bias
outside it, same six loss terms), and the parameter names match
:class:`pconv.nn.PConvUNet`, so ``naive.load_state_dict(ours.state_dict())`` gives the same
function; only the cost differs. Known bugs of the ports (missing sum(1), a cached ratio
going stale) are left out: the baseline is slow, not wrong.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pconv.losses.inpainting import TERMS, dilated_hole, gram_matrix, total_variation
from pconv.losses.vgg import VGG16Features
from pconv.nn.unet import DECODER_SLOPE, IMAGENET_MEAN, IMAGENET_STD, encoder_spec

#: NVIDIA's guard against an empty window ("for mixed precision training, change 1e-8 to 1e-6").
NAIVE_EPS = 1e-6


class NaivePartialConv2d(nn.Conv2d):
    """NVIDIA-style multi-channel partial convolution.

    ``forward(x, mask) -> (out, new_mask)`` with ``x`` and ``mask`` both N×C_in×H×W and
    ``out`` and ``new_mask`` both N×C_out×H'×W'.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, bias):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self.register_buffer(
            "weight_mask_updater",
            torch.ones(out_channels, in_channels, *self.kernel_size),
            persistent=False,
        )
        self.slide_winsize = in_channels * self.kernel_size[0] * self.kernel_size[1]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            update_mask = F.conv2d(
                mask, self.weight_mask_updater.to(mask), None, self.stride, self.padding
            )
            mask_ratio = self.slide_winsize / (update_mask + NAIVE_EPS)
            update_mask = torch.clamp(update_mask, 0, 1)
            mask_ratio = mask_ratio * update_mask
        raw_out = super().forward(x * mask)
        if self.bias is None:
            return raw_out * mask_ratio, update_mask
        bias_view = self.bias.view(1, -1, 1, 1)
        out = (raw_out - bias_view) * mask_ratio + bias_view
        return out * update_mask, update_mask


class NaiveBlock(nn.Module):
    """Partial conv → optional BN → optional activation (naoto0804's ``PCBActiv``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, batch_norm, activation):
        super().__init__()
        self.conv = NaivePartialConv2d(
            in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=not batch_norm
        )
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.act = activation if activation is not None else nn.Identity()

    def forward(self, x, mask):
        out, new_mask = self.conv(x, mask)
        return self.act(self.bn(out)), new_mask


class NaivePConvUNet(nn.Module):
    """The paper's U-Net with multi-channel masks; same call as :class:`pconv.nn.PConvUNet`.

    ``forward(image, mask)``: ``image`` N×3×H×W in [0, 1], ``mask`` N×1×H×W (1 = valid),
    repeated to the image channels as the ports' data loaders do. Returns N×3×H×W.
    """

    def __init__(self, levels: int = 8, width_mult: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        widths = [max(1, round(c * width_mult)) for _, c in encoder_spec(levels)]
        kernels = [k for k, _ in encoder_spec(levels)]
        self.encoder = nn.ModuleList()
        previous = in_channels
        for level, (kernel, width) in enumerate(zip(kernels, widths, strict=True)):
            self.encoder.append(NaiveBlock(previous, width, kernel, 2, level > 0, nn.ReLU()))
            previous = width
        skip_widths = [in_channels, *widths[:-1]]
        self.decoder = nn.ModuleList()
        for i in reversed(range(levels)):
            last = i == 0
            activation = None if last else nn.LeakyReLU(DECODER_SLOPE)
            self.decoder.append(
                NaiveBlock(previous + skip_widths[i], skip_widths[i], 3, 1, not last, activation)
            )
            previous = skip_widths[i]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, -1, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, -1, 1, 1), False)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = (image - self.mean) / self.std
        h_mask = mask.expand_as(image).contiguous()
        hs, h_masks = [h], [h_mask]
        for block in self.encoder:
            h, h_mask = block(h, h_mask)
            hs.append(h)
            h_masks.append(h_mask)
        for block, skip, skip_mask in zip(
            self.decoder, reversed(hs[:-1]), reversed(h_masks[:-1]), strict=True
        ):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h_mask = F.interpolate(h_mask, scale_factor=2, mode="nearest")
            h, h_mask = block(torch.cat([h, skip], dim=1), torch.cat([h_mask, skip_mask], dim=1))
        return h * self.std + self.mean


class NaiveInpaintingLoss(nn.Module):
    """The paper's loss with three separate VGG-16 passes (output, composite, ground truth).

    ``vgg`` is the feature extractor and ``weights`` the per-term weights, keyed like
    :attr:`pconv.losses.InpaintingLoss.weights`; returns the same dict of terms as that loss.
    """

    def __init__(self, vgg: VGG16Features, weights: dict[str, float]) -> None:
        super().__init__()
        self.vgg, self.weights = vgg, dict(weights)

    def forward(self, output, target, mask):
        comp = mask * target + (1 - mask) * output
        terms = {
            "valid": F.l1_loss(mask * output, mask * target),
            "hole": F.l1_loss((1 - mask) * output, (1 - mask) * target),
            "tv": total_variation(comp, dilated_hole(mask)),
        }
        feats_out, feats_comp, feats_gt = self.vgg(output), self.vgg(comp), self.vgg(target)
        terms["perceptual"] = sum(
            F.l1_loss(o, g) + F.l1_loss(c, g)
            for o, c, g in zip(feats_out, feats_comp, feats_gt, strict=True)
        )
        terms["style_out"] = sum(
            F.l1_loss(gram_matrix(o), gram_matrix(g))
            for o, g in zip(feats_out, feats_gt, strict=True)
        )
        terms["style_comp"] = sum(
            F.l1_loss(gram_matrix(c), gram_matrix(g))
            for c, g in zip(feats_comp, feats_gt, strict=True)
        )
        terms["total"] = sum(self.weights[name] * terms[name] for name in TERMS)
        return terms
