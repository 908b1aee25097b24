"""Weights from a Hugging Face Hub repo (``hf://user/name[@revision]``), through the hub's cache."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from pconv.weights.errors import CheckpointError, WeightsUnavailableError
from pconv.weights.safetensors_pair import CONFIG_FILE, SAFETENSORS_FILE

HUB_PREFIX = "hf://"
#: Seconds to wait for the hub's server to answer before reading the cache only: without
#: this, an unreachable hub costs about 25 s of retries, each printed by huggingface_hub.
HUB_PROBE_S = 5.0


#: ``user/name`` or ``user/name@revision`` (the hub's repo id rules, loosely).
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+(@[\w./-]+)?$")


def parse_repo(spec: str) -> tuple[str, str | None]:
    """``hf://user/name@rev`` or ``user/name@rev`` -> (``user/name``, ``rev`` or None)."""
    repo = spec.removeprefix(HUB_PREFIX)
    if not REPO_ID.match(repo):
        raise CheckpointError(f"{spec} is not a hub repo: expected hf://user/name[@revision]")
    repo_id, _, revision = repo.partition("@")
    return repo_id, revision or None


def hub_reachable(timeout: float = HUB_PROBE_S) -> bool:
    """Whether the hub's server (``HF_ENDPOINT``) accepts a connection within ``timeout``
    seconds; False at once with ``HF_HUB_OFFLINE=1``."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError:  # no route, refused, unknown host, timed out
        return False
    return True


def fetch_hub(spec: str) -> Path:
    """The local ``model.safetensors`` of a hub repo (and its ``config.json`` beside it),
    through the hub's cache (``HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` reads only the cache)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    repo_id, revision = parse_repo(spec)
    cache_only = not hub_reachable()
    try:
        hf_hub_download(repo_id, CONFIG_FILE, revision=revision, local_files_only=cache_only)
        weights = hf_hub_download(
            repo_id, SAFETENSORS_FILE, revision=revision, local_files_only=cache_only
        )
    except (LocalEntryNotFoundError, EntryNotFoundError) as error:
        # Reading the cache only, the hub's own words ("set local_files_only to False")
        # would mislead: the reason is that the hub cannot be reached.
        reason = "the hub cannot be reached" if cache_only else str(error).splitlines()[0]
        raise WeightsUnavailableError(
            f"hub repo {repo_id}{'@' + revision if revision else ''} is neither cached nor "
            f"reachable ({reason}); fetch it once with internet access (or set HF_HUB_CACHE "
            "to where it is cached)"
        ) from None
    except (HfHubHTTPError, OSError) as error:
        raise WeightsUnavailableError(
            f"cannot download hub repo {repo_id} ({str(error).splitlines()[0]})"
        ) from None
    return Path(weights)
