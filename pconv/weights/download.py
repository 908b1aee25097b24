"""Weights at an ``https://`` URL, downloaded once into torch's cache with a hash check and a
time-out (offline is an error, never a hang).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from pconv.weights.errors import CheckpointError, WeightsUnavailableError
from pconv.weights.safetensors_pair import config_path

#: Seconds before an unreachable download server counts as offline instead of hanging.
DOWNLOAD_TIMEOUT_S = 20.0


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def torch_cache_dir() -> Path:
    """Where downloaded weights go: ``$TORCH_HOME/hub/checkpoints``, torch's own cache
    (``torch.hub.get_dir()`` is ``$TORCH_HOME/hub``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def download(url: str, target: str | os.PathLike, sha256_prefix: str | None = None) -> Path:
    """Download ``url`` to ``target`` (atomically; a progress bar on a terminal), checking
    that the file's SHA-256 starts with ``sha256_prefix`` when given.

    Raises :class:`WeightsUnavailableError` (no route, server error) or
    :class:`CheckpointError` (a hash mismatch; nothing is written) with one line.
    """
    import torch

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        # torch writes a temporary file next to target and moves it there when the hash holds.
        torch.hub.download_url_to_file(
            url, str(target), hash_prefix=sha256_prefix, progress=sys.stderr.isatty()
        )
    except OSError as error:  # URLError, HTTPError, timeouts and DNS failures
        raise WeightsUnavailableError(f"{url} cannot be downloaded ({error})") from None
    except RuntimeError as error:  # torch's "invalid hash value (expected ..., got ...)"
        raise CheckpointError(
            f"{url} does not have the expected SHA-256 ({error}); nothing was written"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return target


def fetch_url(spec: str) -> Path:
    """The local file of ``https://…/file[#sha256=HEX]``, downloaded into the torch cache
    on first use. A ``.safetensors`` URL brings its ``.json`` architecture file along."""
    url, _, fragment = spec.partition("#")
    sha256 = None
    if fragment:
        key, _, value = fragment.partition("=")
        if key != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise CheckpointError(
                f"URL fragment #{fragment} of {spec} is not #sha256=<64 hex digits>"
            )
        sha256 = value.lower()
    name = Path(urlparse(url).path).name
    if not name:
        raise CheckpointError(f"URL {url} names no file (expected …/name.ckpt)")
    target = torch_cache_dir() / name
    if target.is_file():
        if sha256 and sha256_of(target) != sha256:
            raise CheckpointError(
                f"cached {target} (from {url}) does not have SHA-256 {sha256}; delete it to "
                "download it again"
            )
    else:
        download(url, target, sha256)
    if target.suffix == ".safetensors" and not config_path(target).is_file():
        download(url.rsplit(".", 1)[0] + ".json", config_path(target))
    return target
