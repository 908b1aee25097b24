"""Folder locks: one command at a time writes into a folder.

:func:`folder_lock` holds an exclusive ``fcntl.flock`` on the folder itself (no lock file is
left among the user's files), so a second command that wants the folder is refused at once,
and a process that dies, even by SIGKILL, releases it with its file descriptors.
:func:`lock_folder` holds a named lock file instead, which records the holder's process id
(``pconv fit`` keeps its checkpoint folder this way for the whole run). :func:`waiting_lock`
waits its turn instead of refusing: for work that several processes may need at once and one
should do (the ranks of a job listing the same folder).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class FolderBusyError(OSError):
    """Another process holds the folder; the message is the one line shown."""


def try_lock(folder: str | os.PathLike) -> int | None:
    """An open descriptor of ``folder`` holding its exclusive lock, or None when another
    process holds it. Closing the descriptor releases the lock."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "another pconv command") -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for the block; :class:`FolderBusyError` when
    ``what`` holds it already."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = try_lock(folder)
    if descriptor is None:
        raise FolderBusyError(
            f"{folder} is in use by {what} (still running); wait for it to finish or choose "
            "another folder"
        )
    try:
        yield folder
    finally:
        os.close(descriptor)


def lock_folder(folder: str | os.PathLike, name: str = ".lock") -> IO[str]:
    """Take ``folder/name`` as an exclusive lock for as long as the returned file stays open
    (close it to release). The lock is ``flock``'s: the kernel drops it when its process
    dies, so a killed run leaves no stale lock. The file holds the holder's process id.

    Raises :class:`FolderBusyError` naming the holder while another process holds it.
    """
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


@contextmanager
def waiting_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (created, with its folder, if missing)
    for the block, waiting while another process holds it. A process that dies releases it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        yield
