"""Weights at an ``https://`` URL, downloaded once into torch's cache with a hash check and a
time-out (offline is an error, never a hang), keyed by the whole URL and vetted before they
enter the cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from pconv.weights.errors import CheckpointError, WeightsUnavailableError
from pconv.weights.safetensors_pair import METADATA_KEY, config_path, read_safetensors_header

#: Seconds before an unreachable download server counts as offline instead of hanging.
DOWNLOAD_TIMEOUT_S = 20.0
#: Hex digits of the URL's SHA-256 that key its cache file.
URL_KEY_DIGITS = 16


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


def fetch_hashed(
    url: str,
    what: str,
    name: str,
    to: str | os.PathLike | None = None,
    verify_cached: bool = False,
) -> Path:
    """The local file of ``url`` (``what``, fetched by ``pconv weights NAME``), downloaded
    into the torch cache under its own name (or to the file ``to``) unless it is there. The
    file name's hash prefix (``vgg16-397923af.pth``) is checked as torch.hub does: always
    after a download, and for a file already there when ``verify_cached``.

    Offline, raises :class:`WeightsUnavailableError` saying which file to copy where.
    """
    import torch

    file_name = Path(urlparse(url).path).name
    target = Path(to).expanduser() if to is not None else torch_cache_dir() / file_name
    match = torch.hub.HASH_REGEX.search(file_name)
    prefix = match.group(1) if match else None
    if target.is_file():
        if verify_cached and prefix and not sha256_of(target).startswith(prefix):
            raise CheckpointError(
                f"{target} is not {file_name} (its SHA-256 does not start with {prefix}); "
                "delete it and fetch it again"
            )
        return target
    try:
        return download(url, target, prefix)
    except WeightsUnavailableError as error:
        raise WeightsUnavailableError(
            f"{what} are not cached at {target}, and {error}; run `pconv weights {name}` "
            f"where there is internet, or copy {file_name} (from {url}) to {target}"
        ) from None


def cache_name(url: str) -> str:
    """The cache file name of ``url``: a hash of the whole URL, then the file's own name
    (``http://a/last.ckpt`` and ``http://b/last.ckpt`` are different files)."""
    name = Path(urlparse(url).path).name
    return f"{hashlib.sha256(url.encode()).hexdigest()[:URL_KEY_DIGITS]}-{name}"


def fetch_url(spec: str, check: Callable[[Path], object] | None = None) -> Path:
    """The local file of ``https://…/file[#sha256=HEX]``, downloaded into the torch cache
    on first use under :func:`cache_name`. A ``.safetensors`` URL whose file does not carry
    its architecture brings its ``.json`` architecture file along.

    ``check(path)`` vets a download before it enters the cache (raising leaves nothing
    there), so a refused file is never picked up by a later run.
    """
    url, _, fragment = spec.partition("#")
    sha256 = None
    if fragment:
        key, _, value = fragment.partition("=")
        if key != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise CheckpointError(
                f"URL fragment #{fragment} of {spec} is not #sha256=<64 hex digits>"
            )
        sha256 = value.lower()
    if not Path(urlparse(url).path).name:
        raise CheckpointError(f"URL {url} names no file (expected …/name.ckpt)")
    target = torch_cache_dir() / cache_name(url)
    if target.is_file():
        if sha256 and sha256_of(target) != sha256:
            raise CheckpointError(
                f"cached {target} (from {url}) does not have SHA-256 {sha256}; delete it to "
                "download it again"
            )
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as folder:
        staged = Path(folder) / target.name
        download(url, staged, sha256)
        files = [staged]
        if (
            staged.suffix == ".safetensors"
            and METADATA_KEY not in read_safetensors_header(staged)[0]
        ):
            download(url.rsplit(".", 1)[0] + ".json", config_path(staged))
            files.append(config_path(staged))
        if check is not None:
            try:
                check(staged)
            except CheckpointError as error:  # name the URL, not the staged file
                raise CheckpointError(str(error).replace(str(staged), url)) from None
        # The architecture file first: the weights file's presence means the pair is whole.
        for file in reversed(files):
            os.replace(file, target.parent / file.name)
    return target
