"""The paper's inpainting loss (Liu et al., ECCV 2018, section 3.4, with the authors' erratum).

With I_out the prediction, I_gt the ground truth, M the mask (1 = valid, 0 = hole) and
I_comp = M ⊙ I_gt + (1 − M) ⊙ I_out:

- valid = ‖M ⊙ (I_out − I_gt)‖₁ / N and hole = ‖(1 − M) ⊙ (I_out − I_gt)‖₁ / N, with N the
  number of elements of I_gt (size-averaged, erratum);
- perceptual = Σ_p ‖Ψp(I_out) − Ψp(I_gt)‖₁ / N_Ψp + Σ_p ‖Ψp(I_comp) − Ψp(I_gt)‖₁ / N_Ψp over
  VGG-16 pool1..3;
- style_out / style_comp = Σ_p mean |G(Ψp(I_out or I_comp)) − G(Ψp(I_gt))|, with
  G(Ψ) = Ψᵀ Ψ / (C_p·H_p·W_p), computed in float32;
- tv = Σ over horizontal and vertical neighbour pairs with both pixels in R of
  |I_comp(a) − I_comp(b)|, divided by the number of elements of I_comp; R is the hole
  dilated by one pixel (3×3 neighbourhood).

total = valid_weight·valid + hole_weight·hole + perceptual_weight·perceptual
        + style_weight·(style_out + style_comp) + tv_weight·tv.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jsonargparse.typing import NonNegativeFloat
from torch import nn

from pconv.losses.vgg import VGG16Features

TERMS = ("valid", "hole", "perceptual", "style_out", "style_comp", "tv")


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32, or float64 if it already is: losses never run in half precision."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """N×C×H×W features → N×C×C Gram matrices Ψᵀ Ψ / (C·H·W), at least in float32."""
    n, c, h, w = features.shape
    flat = at_least_float32(features).reshape(n, c, h * w)
    with torch.autocast(device_type=features.device.type, enabled=False):
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def dilated_hole(mask: torch.Tensor) -> torch.Tensor:
    """N×1×H×W region R: the hole (mask == 0) grown by one pixel in its 3×3 neighbourhood."""
    return F.max_pool2d(1.0 - mask.float(), kernel_size=3, stride=1, padding=1)


def total_variation(comp: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """L1 of neighbour differences of ``comp`` over pairs inside ``region``, size-averaged."""
    horizontal = region[..., :, 1:] * region[..., :, :-1]
    vertical = region[..., 1:, :] * region[..., :-1, :]
    tv_h = (horizontal * (comp[..., :, 1:] - comp[..., :, :-1]).abs()).sum()
    tv_v = (vertical * (comp[..., 1:, :] - comp[..., :-1, :]).abs()).sum()
    return (tv_h + tv_v) / comp.numel()


class InpaintingLoss(nn.Module):
    """Weighted sum of the six loss terms of the paper.

    Args:
        valid_weight, hole_weight, perceptual_weight, style_weight, tv_weight: the weights
            (paper defaults 1, 6, 0.05, 120, 0.1); ``style_weight`` multiplies
            style_out + style_comp.
        vgg_weights: passed to :class:`VGG16Features` (``"imagenet"``, a file, or ``None``).

    ``forward(output, target, mask) -> dict``: ``output`` and ``target`` N×3×H×W on the
    [0, 1] scale, ``mask`` N×1×H×W (1 = valid). Returns the unweighted terms under
    ``valid, hole, perceptual, style_out, style_comp, tv`` and the weighted sum under
    ``total``; all scalars in float32 (float64 for float64 inputs).
    """

    def __init__(
        self,
        valid_weight: NonNegativeFloat = 1.0,
        hole_weight: NonNegativeFloat = 6.0,
        perceptual_weight: NonNegativeFloat = 0.05,
        style_weight: NonNegativeFloat = 120.0,
        tv_weight: NonNegativeFloat = 0.1,
        vgg_weights: str | None = "imagenet",
    ) -> None:
        super().__init__()
        self.weights = {
            "valid": valid_weight,
            "hole": hole_weight,
            "perceptual": perceptual_weight,
            "style_out": style_weight,
            "style_comp": style_weight,
            "tv": tv_weight,
        }
        self.vgg_weights = vgg_weights  # kept so a checkpoint can record how to rebuild it
        # Without perceptual and style weights the VGG terms stay zero: no VGG is built (its
        # weights would be loaded, and counted in the model summary, for nothing), and its
        # passes, most of a small model's step, are skipped.
        uses_vgg = perceptual_weight != 0 or style_weight != 0
        self.vgg = VGG16Features(vgg_weights) if uses_vgg else None

    def forward(
        self, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        output, target = at_least_float32(output), at_least_float32(target)
        mask = mask.to(output.dtype)
        comp = mask * target + (1 - mask) * output
        terms = {
            "valid": (mask * (output - target)).abs().mean(),
            "hole": ((1 - mask) * (output - target)).abs().mean(),
            "tv": total_variation(comp, dilated_hole(mask)),
        }

        perceptual = output.new_zeros(())
        style_out = output.new_zeros(())
        style_comp = output.new_zeros(())
        uses_vgg = self.vgg is not None
        # One batched pass for the two images that need gradients; the target's features
        # take none, so computing them apart saves a third of VGG's backward and its memory.
        n = output.shape[0]
        feats = self.vgg(torch.cat([output, comp])) if uses_vgg else ()
        with torch.no_grad():
            feats_gt = self.vgg(target) if uses_vgg else ()
        for both, gt in zip(feats, feats_gt, strict=True):
            out_p, comp_p = at_least_float32(both[:n]), at_least_float32(both[n:])
            gt_p = at_least_float32(gt)
            perceptual = perceptual + F.l1_loss(out_p, gt_p) + F.l1_loss(comp_p, gt_p)
            gram_gt = gram_matrix(gt_p)
            style_out = style_out + F.l1_loss(gram_matrix(out_p), gram_gt)
            style_comp = style_comp + F.l1_loss(gram_matrix(comp_p), gram_gt)
        terms.update(perceptual=perceptual, style_out=style_out, style_comp=style_comp)

        terms["total"] = sum(self.weights[name] * terms[name] for name in TERMS)
        return terms
