"""Published PConv networks by name (``mmagic-places2``, ``mmagic-celeba``): fetched once,
converted once, cached as our safetensors.

``fetch_named(NAME)`` downloads the publisher's file into the torch cache under its own name,
checking the hash prefix in that name as torch.hub does, converts it
(:mod:`pconv.weights.mmagic`) and writes ``pconv-NAME-<prefix>.safetensors`` next to it (the
architecture in its metadata). Every weights spec accepts the name: ``--ckpt mmagic-places2``,
``Inpainter.from_pretrained("mmagic-places2")``, ``model.init_from: mmagic-places2``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from pconv.weights.download import fetch_hashed, torch_cache_dir
from pconv.weights.errors import CheckpointError

_MMAGIC = "https://download.openmmlab.com/mmediting/inpainting/pconv/"
_MMAGIC_README = "https://github.com/open-mmlab/mmagic/blob/main/configs/partial_conv/README.md"
_MMAGIC_EVAL = "256×256 images, mmagic's free-form masks (15-65% hole area), "


@dataclass(frozen=True)
class Published:
    """A network someone else trained and published, and what they report for it."""

    url: str
    #: What it is, in a few words.
    title: str
    #: Where it and its figures come from.
    source: str
    #: The training data and what its terms allow.
    terms: str
    #: The evaluation behind :attr:`figures`.
    evaluated_on: str
    #: The publisher's test figures: metric (our report's keys) -> value.
    figures: dict[str, float]

    @property
    def file_name(self) -> str:
        return Path(urlparse(self.url).path).name

    @property
    def reference_label(self) -> str:
        """How ``pconv evaluate`` labels the figures beside a run."""
        return f"{self.title} as published ({self.source}): {self.evaluated_on}"


NAMED = {
    "mmagic-places2": Published(
        url=_MMAGIC + "pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth",
        title="PConv, OpenMMLab mmagic, Places365, 256 px, stage 2 (500k iterations)",
        source=_MMAGIC_README,
        terms="trained on Places365-Standard, whose terms allow non-commercial research and "
        "education only; OpenMMLab publishes the file with mmagic (Apache-2.0) and states "
        "no other licence for it",
        evaluated_on=_MMAGIC_EVAL + "Places365 val",
        figures={"l1": 8.776, "psnr": 22.762, "ssim": 0.801},
    ),
    "mmagic-celeba": Published(
        url=_MMAGIC + "pconv_256x256_stage2_4x2_celeba_20200619-860f8b95.pth",
        title="PConv, OpenMMLab mmagic, CelebA-HQ, 256 px, stage 2 (500k iterations)",
        source=_MMAGIC_README,
        terms="trained on CelebA-HQ, whose CelebA agreement allows non-commercial research "
        "only (the faces are of identifiable people); OpenMMLab publishes the file with "
        "mmagic (Apache-2.0) and states no other licence for it",
        evaluated_on=_MMAGIC_EVAL + "CelebA-HQ val",
        figures={"l1": 5.990, "psnr": 25.404, "ssim": 0.853},
    ),
}


def reference_note(spec: str | os.PathLike | None) -> str | None:
    """The publisher's figures of a published network named by ``spec`` (None for any other
    spec), labelled as theirs: ``pconv evaluate`` shows them beside its own."""
    published = NAMED.get(str(spec))
    if published is None:
        return None
    figures = ", ".join(f"{metric} {value:g}" for metric, value in published.figures.items())
    return (
        f"reference for {spec}: {figures} ({published.reference_label}; the publisher's "
        "metric code and masks, not this run's)"
    )


def converted_path(name: str) -> Path:
    """Where the converted network of ``name`` is cached."""
    stem = Path(NAMED[name].file_name).stem
    return torch_cache_dir() / f"pconv-{name}-{stem.rsplit('-', 1)[-1]}.safetensors"


def fetch_named(
    name: str, check: Callable[[Path], object] | None = None, verify_cached: bool = False
) -> Path:
    """The converted safetensors of published network ``name``, fetched and converted on
    first use (``check`` vets a freshly converted file before it is cached; ``verify_cached``
    re-checks the downloaded file's hash prefix).

    Raises :class:`~pconv.weights.WeightsUnavailableError` offline (one line: which file to
    fetch, where to put it) and :class:`CheckpointError` for a file that is not the network.
    """
    import tempfile

    from pconv.weights.checkpoints import _torch_load_error
    from pconv.weights.mmagic import convert
    from pconv.weights.safetensors_pair import save_safetensors

    target = converted_path(name)
    published = NAMED[name]
    # A converted file stands on its own: its original is re-checked only where it is kept.
    if target.is_file() and not (verify_cached and (target.parent / published.file_name).is_file()):
        return target
    original = fetch_hashed(published.url, f"the {name} weights", name, verify_cached=verify_cached)
    if target.is_file():
        return target
    import torch

    try:
        checkpoint = torch.load(original, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and torch errors have no common base class
        raise CheckpointError(
            f"{original} is unreadable ({_torch_load_error(error)}); delete it and run "
            f"`pconv weights {name}` again"
        ) from None
    net = convert(checkpoint, original)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".convert-") as folder:
        staged = Path(folder) / target.name
        weights, _ = save_safetensors(net, staged)
        if check is not None:
            check(weights)
        os.replace(weights, target)
    return target
