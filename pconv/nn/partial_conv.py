"""Partial convolution (Liu et al., ECCV 2018, eq. 1-2).

For every sliding window with features X, mask M, weights W and bias b::

    x' = W^T (X * M) * sum(1) / sum(M) + b    if sum(M) > 0
    x' = 0                                    otherwise
    m' = 1 if sum(M) > 0 else 0

sum(1) = C_in * k_h * k_w is the window size and sum(M) counts the valid elements of the
window over all input channels. Zero padding counts as hole, so border windows are rescaled
too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Guards the division by the valid count; counts are integers, so any eps < 1 is exact.
COUNT_EPS = 1e-6


class PartialConv2d(nn.Conv2d):
    """A masked, renormalised 2-D convolution with mask update.

    Args mirror :class:`torch.nn.Conv2d` (zero padding only, no groups), plus
    ``ratio_eps``: added to the valid count in the rescale ratio, sum(1) / (sum(M) + eps).
    0 (the default) is the paper's ratio; mmagic's port adds 1e-8, which changes float64
    results in the 16th digit and float32 results not at all.

    ``forward(x, mask) -> (out, new_mask)``:
        - ``x``: N×C_in×H×W features, any float dtype.
        - ``mask``: N×1×H×W (broadcast over the channels) or N×C_in×H×W (per channel),
          1 = valid, 0 = hole.
        - ``out``: N×C_out×H'×W', exactly 0 wherever ``new_mask`` is 0.
        - ``new_mask``: N×1×H'×W' float32 in {0, 1}.

    The valid count is one single-channel convolution of the channel-summed mask, and the
    count and the rescale ratio are computed in float32 even under autocast. Nothing is
    cached between calls, so batch size and resolution can change freely.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        ratio_eps: float = 0.0,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias
        )
        self.ratio_eps = ratio_eps
        self.register_buffer("count_kernel", torch.ones(1, 1, *self.kernel_size), persistent=False)
        self.window_size = in_channels * self.kernel_size[0] * self.kernel_size[1]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if (
            mask.dim() != 4
            or mask.shape[1] not in (1, x.shape[1])
            or (mask.shape[0] != x.shape[0] or mask.shape[2:] != x.shape[2:])
        ):
            raise ValueError(
                f"PartialConv2d: mask of shape {tuple(mask.shape)} does not fit features of shape "
                f"{tuple(x.shape)}; expected N×1×H×W or N×{x.shape[1]}×H×W"
            )
        if mask.shape[1] == 1:
            mask_sum = mask.float() * x.shape[1]
        else:
            mask_sum = mask.float().sum(dim=1, keepdim=True)
        return self.forward_masked(x * mask.to(x.dtype), mask_sum)

    def forward_masked(
        self, masked_x: torch.Tensor, mask_sum: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Partial convolution of features that are already zero in their holes.

        ``masked_x`` is X ⊙ M (N×C_in×H×W) and ``mask_sum`` is M summed over the input
        channels (N×1×H×W, values in [0, C_in]). The U-Net uses this entry point on its skip
        links, where each concatenated part has its own single-channel mask, so no
        C_in-channel mask is ever built.
        """
        raw = F.conv2d(masked_x, self.weight, None, self.stride, self.padding, self.dilation)
        # float32 at least (float64 stays float64): the count, the ratio and the epilogue must
        # not lose precision or overflow under bf16/fp16 autocast.
        acc = torch.promote_types(raw.dtype, torch.float32)
        with torch.autocast(device_type=masked_x.device.type, enabled=False):
            count = F.conv2d(
                mask_sum.to(acc),
                self.count_kernel.to(acc),
                None,
                self.stride,
                self.padding,
                self.dilation,
            )
            new_mask = (count > 0).to(acc)
            valid = count.clamp_min(COUNT_EPS)
            if self.ratio_eps:  # mmagic's additive eps; the paper's ratio skips the extra pass
                valid = valid + self.ratio_eps
            ratio = self.window_size / valid * new_mask
            out = raw.to(acc) * ratio
            if self.bias is not None:
                out = (out + self.bias.to(acc).view(1, -1, 1, 1)) * new_mask
        return out.to(raw.dtype), new_mask.float()
