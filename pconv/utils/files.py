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
from typing import IO


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


class FolderBusyError(OSError):
    """Another live process holds the folder's lock."""


def lock_folder(folder: str | os.PathLike, name: str = ".lock") -> IO[str]:
    """Take ``folder/name`` as an exclusive lock for as long as the returned file stays open
    (close it to release). The lock is ``flock``'s: the kernel drops it when its process
    dies, so a killed run leaves no stale lock. The file holds the holder's process id.

    Raises :class:`FolderBusyError` naming the holder while another process holds it.
    """
    import fcntl

    path = Path(folder, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        holder = file.read().strip() or "unknown"
        file.close()
        raise FolderBusyError(f"{folder} is in use by process {holder}") from None
    file.seek(0)
    file.truncate()
    file.write(f"{os.getpid()}\n")
    file.flush()
    return file
