"""LPIPS and FID through torchmetrics, used only when their pretrained weights are at hand.

Nothing is downloaded: each metric checks for its weights in the torch hub cache
(``torch.hub.get_dir()/checkpoints``) and, when they are missing, is skipped with one note
saying how to get them.

- LPIPS (AlexNet, torchmetrics' linear layers) is a per-image score, averaged per row like
  PSNR; lower is better.
- FID (Inception-v3 pool features, 2048-d, via torch-fidelity) compares image sets, so it is
  reported per method over all images only; it is unreliable below a few thousand images.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

#: torch-fidelity's Inception weights, as its FID feature extractor caches them.
FID_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
FID_FEATURES = 2048


def _cached(file_name: str) -> bool:
    return (Path(torch.hub.get_dir()) / "checkpoints" / file_name).is_file()


class LpipsScorer:
    """``scorer(comp, target) -> N`` LPIPS of N×3×H×W images in [0, 1]."""

    def __init__(self, device: torch.device) -> None:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        self.net = LearnedPerceptualImagePatchSimilarity(net_type="alex").net.to(device).eval()
        self.device = device

    @torch.no_grad()
    def __call__(self, comp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        comp, target = comp.to(self.device), target.to(self.device)
        return self.net(comp, target, normalize=True).flatten().cpu()


def lpips_weights_note() -> str | None:
    """None when LPIPS can run offline, else a note saying what is missing."""
    from torchvision.models import AlexNet_Weights

    file_name = Path(AlexNet_Weights.DEFAULT.url).name
    if _cached(file_name):
        return None
    return (
        f"LPIPS skipped: torchvision's AlexNet weights ({file_name}) are not in "
        f"{torch.hub.get_dir()}/checkpoints; fetch them with `pconv weights lpips` where "
        "there is internet"
    )


def fid_weights_note() -> str | None:
    """None when FID can run offline, else a note saying what is missing."""
    if importlib.util.find_spec("torch_fidelity") is None:
        return "FID skipped: it needs the torch-fidelity package (pip install 'pconv[eval]')"
    if not _cached(FID_WEIGHTS_FILE):
        return (
            f"FID skipped: the Inception weights ({FID_WEIGHTS_FILE}) are not in "
            f"{torch.hub.get_dir()}/checkpoints; fetch them with `pconv weights fid` where "
            "there is internet"
        )
    return None


def new_fid(device: torch.device):
    """A torchmetrics FID over 2048-d Inception features of [0, 1] images."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=FID_FEATURES, normalize=True).to(device)
