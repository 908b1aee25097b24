"""Weights from a Hugging Face Hub repo (``hf://user/name[@revision]``), through the hub's cache."""

from __future__ import annotations

import re
from pathlib import Path

from pconv.weights.errors import CheckpointError, WeightsUnavailableError
from pconv.weights.safetensors_pair import CONFIG_FILE, SAFETENSORS_FILE

HUB_PREFIX = "hf://"


#: ``user/name`` or ``user/name@revision`` (the hub's repo id rules, loosely).
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+(@[\w./-]+)?$")


def parse_repo(spec: str) -> tuple[str, str | None]:
    """``hf://user/name@rev`` or ``user/name@rev`` -> (``user/name``, ``rev`` or None)."""
    repo = spec.removeprefix(HUB_PREFIX)
    if not REPO_ID.match(repo):
        raise CheckpointError(f"{spec} is not a hub repo: expected hf://user/name[@revision]")
    repo_id, _, revision = repo.partition("@")
    return repo_id, revision or None


def fetch_hub(spec: str) -> Path:
    """The local ``model.safetensors`` of a hub repo (and its ``config.json`` beside it),
    through the hub's cache (``HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` reads only the cache)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    repo_id, revision = parse_repo(spec)
    try:
        hf_hub_download(repo_id, CONFIG_FILE, revision=revision)
        weights = hf_hub_download(repo_id, SAFETENSORS_FILE, revision=revision)
    except (LocalEntryNotFoundError, EntryNotFoundError) as error:
        raise WeightsUnavailableError(
            f"hub repo {repo_id}{'@' + revision if revision else ''} is neither cached nor "
            f"reachable ({str(error).splitlines()[0]}); fetch it once with internet access "
            "(or set HF_HUB_CACHE to where it is cached)"
        ) from None
    except (HfHubHTTPError, OSError) as error:
        raise WeightsUnavailableError(
            f"cannot download hub repo {repo_id} ({str(error).splitlines()[0]})"
        ) from None
    return Path(weights)
