"""Checking that a command refused bad input as the project promises: exit code 2, one line
on stderr naming the problem, no traceback, and the user's files byte-identical."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

#: A folder no one may create files in, root included (a chmod-ed folder stops no root).
READ_ONLY = Path("/sys/kernel")


def digests(root: str | Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by relative path (new files show up as keys)."""
    root = Path(root)
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def assert_refused(
    main: Callable[[list[str]], int], argv: list[str], message: str, capsys, root: str | Path
) -> str:
    """Run ``main(argv)`` and assert the refusal; returns the message line."""
    before = digests(root)
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert digests(root) == before
    return err


def bucket_digests(bucket: str) -> dict[str, str]:
    """SHA-256 of every object of ``bucket``, by key (new objects show up as keys)."""
    import boto3

    client = boto3.client("s3")
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: hashlib.sha256(
            client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        ).hexdigest()
        for item in listed
    }
