"""Fixtures shared across test packages."""

from __future__ import annotations

import os
import signal

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from photos import PHOTO_HEIGHT, PHOTO_WIDTH

#: The tiny network of ``tiny_checkpoint``: inputs must be multiples of 2**4 = 16.
TINY_LEVELS = 4
TINY_WIDTH = 0.125


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> str:
    """A checkpoint of a tiny random PConvUNet in the format ``pconv fit`` writes
    (Lightning's ``state_dict`` + ``hyper_parameters``), loadable by ``load_network``."""
    from pconv.losses.inpainting import InpaintingLoss
    from pconv.nn.unet import PConvUNet
    from pconv.training.module import InpaintingModule

    torch.manual_seed(0)
    module = InpaintingModule(
        net=PConvUNet(levels=TINY_LEVELS, width_mult=TINY_WIDTH),
        loss=InpaintingLoss(vgg_weights=None),
    )
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.ckpt"
    # What Lightning's checkpoint connector writes for a module with plain hparams.
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return str(path)


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``cuda`` need a GPU: skip them (CI stays green) where none is visible."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def inpainter(tiny_checkpoint):
    """An ``Inpainter`` on the CPU of ``tiny_checkpoint``."""
    from pconv.inference import Inpainter

    return Inpainter.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """The astronaut, PHOTO_HEIGHT×PHOTO_WIDTH×3 uint8 RGB."""
    size = (PHOTO_WIDTH, PHOTO_HEIGHT)
    return cv2.resize(skimage.data.astronaut(), size, interpolation=cv2.INTER_AREA)


@pytest.fixture
def gram_dtypes(monkeypatch) -> set[torch.dtype]:
    """The dtypes of every Gram matrix the style loss computes during the test."""
    import pconv.losses.inpainting as inpainting

    seen: set[torch.dtype] = set()
    gram_matrix = inpainting.gram_matrix

    def spy_gram(features):
        gram = gram_matrix(features)
        seen.add(gram.dtype)
        return gram

    monkeypatch.setattr(inpainting, "gram_matrix", spy_gram)
    return seen


@pytest.fixture
def restore_sigint():
    # Lightning ignores SIGINT after a KeyboardInterrupt; give pytest its handlers back.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
