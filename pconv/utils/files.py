"""Atomic file writes: a file is either its old self or complete, never half-written.

The files pconv writes itself (reports, masks, exports, results) go through
:func:`atomic_path` or :func:`atomic_write`, so a crash or Ctrl-C mid-write leaves no torn file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path in ``path``'s folder, renamed onto ``path`` when the block succeeds
    (and deleted when it fails), so ``path`` never holds a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are 0600, and the result must get the user's umask like any new
    # file (shared cluster folders). The suffix stays last: writers pick the format from it.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}{path.suffix}")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)
