"""The paper's PConv U-Net (Liu et al., ECCV 2018, section 3.3 and the appendix table).

At 512×512 the network has 8 encoder levels (PConv1-8) and 8 decoder levels (PConv9-16):

- encoder level 1: 7×7, 64 channels, stride 2, no BN, ReLU
- encoder level 2: 5×5, 128, stride 2, BN, ReLU
- encoder level 3: 5×5, 256, stride 2, BN, ReLU
- encoder levels 4+: 3×3, 512, stride 2, BN, ReLU
- decoder: nearest ×2 upsampling, concatenation with the encoder output one level up
  (features and masks separately), 3×3 stride 1 partial conv to that level's width, BN,
  LeakyReLU(0.2); the last layer sees the input image and its mask and has no BN and no
  activation.

Layers followed by BN carry no convolution bias (BN's shift makes it redundant); PConv1 and
the last layer do.

Two architecture keys reproduce mmagic's PConv (open-mmlab/mmagic, ``PConvEncoderDecoder``),
whose published weights :mod:`pconv.weights.mmagic` converts: ``normalization="symmetric"``
(their network sees 2x - 1 and returns y with image = (y + 1) / 2) and ``ratio_eps=1e-8``
(their rescale ratio is sum(1) / (sum(M) + 1e-8)). Their other differences do not change the
function: their mask has one channel per feature channel, all equal (ours has one, broadcast:
the same products and the same window sums), and they fill the holes of the input with a
value that the first partial convolution multiplies by 0.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt
from torch import nn

from pconv.nn.partial_conv import PartialConv2d

#: (kernel, channels) of encoder levels 1, 2, 3; every deeper level uses DEEP_LEVEL.
FIRST_LEVELS = ((7, 64), (5, 128), (5, 256))
DEEP_LEVEL = (3, 512)
DECODER_KERNEL = 3
DECODER_SLOPE = 0.2
#: ImageNet statistics: the network standardises its [0, 1] input with them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: ``normalization`` -> (mean, std) that map the [0, 1] input to what the layers see:
#: ImageNet standardisation (the paper's VGG convention) or 2x - 1 (mmagic's).
NORMALIZATIONS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "symmetric": ((0.5,) * 3, (0.5,) * 3)}
#: Inclusive ranges of the architecture's numbers. They bound what a weights file from a
#: stranger may ask us to build (memory, and degenerate networks) and are checked by
#: :mod:`pconv.weights.architecture` before anything is allocated.
LEVELS_RANGE = (1, 10)
WIDTH_MULT_RANGE = (1 / 64, 2.0)
IN_CHANNELS_RANGE = (1, 4)
RATIO_EPS_RANGE = (0.0, 1e-3)


class PConvBlock(nn.Module):
    """PartialConv2d → optional BatchNorm → optional activation, with the mask passed along.

    ``forward(masked_x, mask_sum) -> (out, new_mask)`` takes features already zeroed in their
    holes and the channel-summed mask (see :meth:`PartialConv2d.forward_masked`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        batch_norm: bool,
        activation: nn.Module | None,
        ratio_eps: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv = PartialConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=not batch_norm,
            ratio_eps=ratio_eps,
        )
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.act = activation if activation is not None else nn.Identity()

    def forward(
        self, masked_x: torch.Tensor, mask_sum: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, new_mask = self.conv.forward_masked(masked_x, mask_sum)
        return self.act(self.bn(out)), new_mask


def encoder_spec(levels: int) -> list[tuple[int, int]]:
    """(kernel, channels) of each encoder level, at full width."""
    return [FIRST_LEVELS[i] if i < len(FIRST_LEVELS) else DEEP_LEVEL for i in range(levels)]


class PConvUNet(nn.Module):
    """Partial-convolution U-Net for inpainting.

    Args:
        levels: encoder depth; 8 at 512×512 (the paper), 7 is usual at 256×256.
        width_mult: scales every hidden width (not the RGB output); 1.0 is the paper; in
            [1/64, 2] (every level keeps at least one channel).
        in_channels: image channels.
        normalization: ``"imagenet"`` (the paper's: standardise with the ImageNet mean and
            std) or ``"symmetric"`` (mmagic's: 2x - 1); the output is mapped back alike.
        ratio_eps: added to the valid count of every rescale ratio; 0 is the paper's exact
            ratio, 1e-8 is mmagic's. At most 1e-3.

    ``forward(image, mask) -> output``:
        - ``image``: N×C×H×W in [0, 1]; values in the holes are ignored.
        - ``mask``: N×1×H×W, 1 = valid, 0 = hole.
        - ``output``: N×C×H×W, the raw prediction on the [0, 1] scale (not clamped, not
          composited).

    H and W must be multiples of 2**levels.
    """

    def __init__(
        self,
        levels: PositiveInt = 8,
        width_mult: PositiveFloat = 1.0,
        in_channels: PositiveInt = 3,
        normalization: Literal["imagenet", "symmetric"] = "imagenet",
        ratio_eps: NonNegativeFloat = 0.0,
    ) -> None:
        super().__init__()
        for name, value, (low, high) in (
            ("levels", levels, LEVELS_RANGE),
            ("width_mult", width_mult, WIDTH_MULT_RANGE),
            ("in_channels", in_channels, IN_CHANNELS_RANGE),
            ("ratio_eps", ratio_eps, RATIO_EPS_RANGE),
        ):
            if not low <= value <= high:
                raise ValueError(f"PConvUNet: {name} must be in [{low:g}, {high:g}], got {value}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"PConvUNet: normalization must be one of {', '.join(NORMALIZATIONS)}, "
                f"got {normalization!r}"
            )
        # Kept so a checkpoint can record how to rebuild the network.
        self.levels, self.width_mult, self.in_channels = levels, width_mult, in_channels
        self.normalization, self.ratio_eps = normalization, ratio_eps
        widths = [max(1, round(c * width_mult)) for _, c in encoder_spec(levels)]
        kernels = [k for k, _ in encoder_spec(levels)]

        self.encoder = nn.ModuleList()
        previous = in_channels
        for level, (kernel, width) in enumerate(zip(kernels, widths, strict=True)):
            self.encoder.append(
                PConvBlock(
                    previous,
                    width,
                    kernel,
                    2,
                    batch_norm=level > 0,
                    activation=nn.ReLU(),
                    ratio_eps=ratio_eps,
                )
            )
            previous = width

        # decoder[i] restores the resolution of encoder level i (level -1 being the image).
        skip_widths = [in_channels, *widths[:-1]]
        self.decoder = nn.ModuleList()
        for i in reversed(range(levels)):
            last = i == 0
            self.decoder.append(
                PConvBlock(
                    previous + skip_widths[i],
                    skip_widths[i],
                    DECODER_KERNEL,
                    1,
                    batch_norm=not last,
                    activation=None if last else nn.LeakyReLU(DECODER_SLOPE),
                    ratio_eps=ratio_eps,
                )
            )
            previous = skip_widths[i]

        mean, std = NORMALIZATIONS[normalization]
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this number."""
        return 2**self.levels

    def check_size(self, height: int, width: int) -> None:
        """Raise a ValueError naming usable sizes if H×W does not fit the network."""
        m = self.multiple
        if height % m or width % m or height == 0 or width == 0:

            def near(side: int) -> str:
                low = max(m, side // m * m)
                return str(low) if low >= side else f"{low} or {low + m}"

            raise ValueError(
                f"PConvUNet with {self.levels} levels needs sides that are multiples of {m}; "
                f"got {height}×{width}. Use {near(height)} × {near(width)}, or pad the input."
            )

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4 or mask.dim() != 4 or mask.shape[1] != 1:
            raise ValueError(
                f"PConvUNet expects image N×C×H×W and mask N×1×H×W, got {tuple(image.shape)} "
                f"and {tuple(mask.shape)}"
            )
        if image.shape[0] != mask.shape[0] or image.shape[2:] != mask.shape[2:]:
            raise ValueError(
                f"PConvUNet: image {tuple(image.shape)} and mask {tuple(mask.shape)} differ in "
                "batch or size"
            )
        self.check_size(*image.shape[2:])

        x = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        mask = mask.to(torch.float32)
        # Each level's masked input (X ⊙ M, M) is also the decoder's skip at that level, so
        # it is computed once.
        skips = []
        for block in self.encoder:
            masked = x * mask.to(x.dtype)
            skips.append((masked, mask))
            x, mask = block(masked, mask * x.shape[1])

        for block, (skip, skip_mask) in zip(self.decoder, reversed(skips), strict=True):
            # Nearest upsampling commutes with masking; masking first touches 4× fewer values.
            up = F.interpolate(x * mask.to(x.dtype), scale_factor=2, mode="nearest")
            up_mask = F.interpolate(mask, scale_factor=2, mode="nearest")
            # Each concatenated part keeps its own single-channel mask; their channel-weighted
            # sum is exactly what a per-channel mask of the concatenation would sum to.
            mask_sum = up_mask * up.shape[1] + skip_mask * skip.shape[1]
            x, mask = block(torch.cat([up, skip], dim=1), mask_sum)

        return x * self.std.to(x.dtype) + self.mean.to(x.dtype)
