"""Fixtures shared across test packages."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import sys
import tempfile

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
# File-index caches of the tests' image folders go to a throw-away folder, not ~/.cache.
if "PCONV_CACHE_DIR" not in os.environ:
    os.environ["PCONV_CACHE_DIR"] = tempfile.mkdtemp(prefix="pconv-test-cache-")
    atexit.register(shutil.rmtree, os.environ["PCONV_CACHE_DIR"], ignore_errors=True)

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


def pytest_configure(config) -> None:
    """The tests filter the same library notices as the CLI (pconv.utils.notices), so that a
    new warning stands out in the summary."""
    from pconv.utils.notices import WARNINGS

    for pattern, _why in WARNINGS:
        config.addinivalue_line("filterwarnings", f"ignore:{pattern}")


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


@pytest.fixture(scope="module")
def s3_endpoint():
    """An S3-compatible server (moto) on a free loopback port, reached through the standard
    AWS variables for the whole module; yields its ``http://`` URL. Tests create their own
    buckets (names unique per test)."""
    server_module = pytest.importorskip(
        "moto.server", reason="moto[server] (the dev extra) runs the loopback object store"
    )
    # The server's request log (werkzeug) would land in whatever stderr a test captured.
    logging.getLogger("werkzeug").disabled = True
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", url)
        patch.setenv("AWS_ACCESS_KEY_ID", "pconv-test")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "pconv-test-secret")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        yield url
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, request) -> str:
    """A new empty bucket on ``s3_endpoint``; returns its name."""
    import boto3

    name = "pconv-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40]
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(autouse=True)
def no_wandb_run_left_open():
    """A test that stops a fit part-way (a refusal, an interrupt) can leave W&B's global run
    open, and the next WandbLogger would silently join it: finish it after every test."""
    yield
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


@pytest.fixture
def s3_wrong_keys(s3_endpoint, monkeypatch):
    """``s3_endpoint`` checks keys (moto against its IAM users) and ours are unknown to it."""
    import requests

    requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=b"0").raise_for_status()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    yield
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "pconv-test")
    requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=b"inf").raise_for_status()


@pytest.fixture
def s3_unreachable(monkeypatch) -> str:
    """AWS_ENDPOINT_URL names a loopback port nothing listens on; returns it."""
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "pconv-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "pconv-test-secret")
    return endpoint
