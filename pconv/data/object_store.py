"""S3 URLs of shard folders: checked before anything is written or trained.

Endpoint and credentials come from the standard AWS variables (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``…),
as boto3 reads them; LitData builds its clients the same way. A missing bucket, refused
credentials or an unreachable endpoint raise :class:`DataSourceError`, one line naming the
URL and what to do, so ``pconv prepare`` and the training pre-flight fail before a shard, a
W&B run or a checkpoint exists. Other URL schemes (``gs://``…) are left to LitData.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from pconv.data.images import DataSourceError

#: One quick retry: an unreachable endpoint is reported in seconds, not minutes.
_CLIENT_CONFIG = {"connect_timeout": 5, "read_timeout": 20, "retries": {"max_attempts": 2}}
_CREDENTIALS = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to keys this endpoint accepts"
)


def allow_plain_http() -> None:
    """Let LitData's obstore transfers use an ``http://`` endpoint (MinIO, a local server).

    boto3 follows ``AWS_ENDPOINT_URL=http://…``, but LitData 0.2 hands obstore explicit client
    options, which drop obstore's own ``AWS_ALLOW_HTTP``: without this every chunk upload and
    download to such an endpoint fails with "BadScheme".
    """
    from litdata.streaming import downloader

    options = getattr(downloader, "_OBSTORE_CLIENT_OPTIONS", None)  # absent in other releases
    if options is not None and os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        options["allow_http"] = "true"


def _describe(error: Exception, url: str, bucket: str) -> str:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "the AWS endpoint")
    if isinstance(error, NoCredentialsError):
        return f"{url}: no AWS credentials found; {_CREDENTIALS}"
    if isinstance(error, EndpointConnectionError):
        return (
            f"{url}: cannot reach {endpoint}; check AWS_ENDPOINT_URL and that the object "
            "store is up"
        )
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            return f"{url}: bucket {bucket!r} does not exist at {endpoint}; create it first"
        if code in ("403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
            return f"{url}: {endpoint} refused the credentials ({code}); {_CREDENTIALS}"
        return f"{url}: {endpoint} answered {code}: {error}"
    return f"{url}: {endpoint} failed: {' '.join(str(error).split())}"


def check_s3_folder(url: str, index_file: str, want_index: bool, overwrite: bool = False) -> bool:
    """Raise :class:`DataSourceError` unless the bucket of ``url`` answers with these
    credentials; returns whether ``url/index_file`` exists (``False`` for non-S3 URLs).

    ``want_index``: shards are to be read, so a missing index is an error too. Otherwise they
    are to be written, and existing shards are refused unless ``overwrite``.
    """
    parsed = urlparse(url)
    if parsed.scheme != "s3":
        return False
    allow_plain_http()
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parsed.netloc, f"{parsed.path.strip('/')}/{index_file}".lstrip("/")
    client = boto3.client("s3", config=Config(**_CLIENT_CONFIG))
    try:
        client.head_bucket(Bucket=bucket)
        listed = client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    except (BotoCoreError, ClientError) as error:
        raise DataSourceError(_describe(error, url, bucket)) from None
    found = any(item["Key"] == key for item in listed.get("Contents", []))
    if want_index and not found:
        raise DataSourceError(
            f"no LitData shards at {url} ({index_file} missing); create them with "
            "`pconv prepare -o` that URL or point `root` at the shards"
        )
    if not want_index and found and not overwrite:
        raise DataSourceError(f"{url} already holds shards; pass --overwrite to replace them")
    return found
