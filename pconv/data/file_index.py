"""Lists of image files held as arrays, and a cache of folder listings on disk.

A source of a million files must not hold a million Python objects: every DataLoader worker
forked from the main process would touch their reference counts (and its garbage collector
every object), copying page after page of its parent's memory (copy-on-read). A
:class:`FileIndex` holds the names as one ``uint8`` buffer with ``int64`` offsets: two
objects, whatever the count, about 40 bytes per ImageNet file.

Listing ImageNet's 1.28 M training files takes seconds to minutes (3 s on a quiet 2-core
machine, 20 s and more on a busy one), on every rank at every start, so :func:`scan_folder`
keeps each folder's listing in ``PCONV_CACHE_DIR`` (default ``~/.cache/pconv``) under
``file-index/``, with the modification time, inode and size of every folder it read. Adding,
removing or renaming a file changes its folder's, so a later scan stats the folders (a
thousand for ImageNet) instead of listing them, and lists again when any of them changed,
disappeared or is too recent to judge (a folder changed within ``RACY_SECONDS`` of the scan
that recorded it may have changed again within the same timestamp tick). A list file
(:func:`read_list`) is cached the same way, its own stat standing for the folders'.

The cache is written atomically; an unreadable or foreign cache file is ignored and
rewritten; files unused for ``UNUSED_DAYS`` are removed. Processes that find no current
cache at the same time (the ranks of a job) take turns on a lock beside it: the first lists,
the others read what it wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from pconv.utils.files import atomic_write
from pconv.utils.lock import waiting_lock

#: Environment variable naming pconv's cache folder.
CACHE_ENV = "PCONV_CACHE_DIR"
#: Folders changed this close to a scan are listed again: file systems with coarse
#: timestamps (1 s on some network file systems, 2 s on FAT) can hide a second change.
RACY_SECONDS = 2
#: Bumped when the cache format changes: older files are then ignored.
CACHE_VERSION = 2
#: Cache files unused for this long are removed when another one is written: trees that
#: moved or were deleted would otherwise keep tens of MB each in the cache for ever.
UNUSED_DAYS = 30
_NS = 1_000_000_000


class FileIndex:
    """Paths ``root/name`` for names stored in one buffer: ``len(index)``, ``index[i]`` (a
    ``str`` path).

    ``buffer`` is a 1-D ``uint8`` array of the names encoded with :func:`os.fsencode`,
    concatenated; ``offsets`` an ``int64`` array of ``len + 1`` positions, name ``i`` being
    ``buffer[offsets[i]:offsets[i + 1]]``.
    """

    def __init__(self, root: str | os.PathLike, buffer: np.ndarray, offsets: np.ndarray) -> None:
        self.root = os.fspath(root)
        self.buffer, self.offsets = buffer, offsets

    @classmethod
    def from_names(cls, root: str | os.PathLike, names: Iterable[str]) -> FileIndex:
        """The index of ``names`` (paths relative to ``root``, or absolute), in order."""
        encoded = [os.fsencode(name) for name in names]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(name) for name in encoded], out=offsets[1:])
        return cls(root, np.frombuffer(b"".join(encoded), np.uint8), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        if not -len(self) <= index < len(self):
            raise IndexError(f"file index {index} out of range for {len(self)} files")
        index %= len(self)
        start, end = self.offsets[index : index + 2].tolist()
        return os.path.join(self.root, os.fsdecode(self.buffer[start:end].tobytes()))

    def names(self) -> list[str]:
        """Every name, relative to ``root`` (a list of ``str``: for tests and small indexes)."""
        return [os.path.relpath(self[i], self.root) for i in range(len(self))]


def cache_folder() -> Path:
    """Where pconv keeps its caches: ``$PCONV_CACHE_DIR`` or ``~/.cache/pconv``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "pconv"


def walk_files(folder: str | os.PathLike, extensions: tuple[str, ...]) -> tuple[list, list, list]:
    """Files under ``folder`` whose lower-cased names end with one of ``extensions``, in the
    order of their sorted path components; symbolic links to folders are followed (each
    folder once). Returns ``(files, folders, stats)``: file and folder names relative to
    ``folder`` (``""`` is ``folder`` itself) and each folder's ``os.stat_result``, read before
    listing it, so a change during the scan shows as a newer time later."""
    files, folders, stats = [], [], []
    seen = set()

    def visit(relative: str) -> None:
        path = os.path.join(folder, relative) if relative else os.fspath(folder)
        stat = os.stat(path)
        if (stat.st_dev, stat.st_ino) in seen:
            return
        seen.add((stat.st_dev, stat.st_ino))
        folders.append(relative)
        stats.append(stat)
        with os.scandir(path) as entries:
            listing = sorted((entry.name, entry.is_dir()) for entry in entries)
        for name, is_dir in listing:
            child = f"{relative}/{name}" if relative else name
            if is_dir:
                visit(child)
            elif name.lower().endswith(extensions):
                files.append(child)

    visit("")
    return files, folders, stats


def scan_folder(folder: str | os.PathLike, extensions: tuple[str, ...]) -> FileIndex:
    """The :class:`FileIndex` of :func:`walk_files`, from the cache when it is current."""
    folder = os.path.abspath(folder)

    def scan() -> tuple[FileIndex, list[str], list[os.stat_result]]:
        files, folders, stats = walk_files(folder, extensions)
        return FileIndex.from_names(folder, files), folders, stats

    return _cached(f"{folder}\0{extensions}", folder, scan)


def read_list(list_path: str | os.PathLike, names: Callable[[], Iterable[str]]) -> FileIndex:
    """The :class:`FileIndex` of the ``names()`` a list file holds, relative to the list's
    folder, from the cache when it is current: the list file's own time stands for a
    folder's (parsing ImageNet's 1.28 M lines takes over a second, reading the cache a tenth,
    and a run opens its lists several times)."""
    list_path = os.path.abspath(list_path)
    root, name = os.path.split(list_path)

    def parse() -> tuple[FileIndex, list[str], list[os.stat_result]]:
        stat = os.stat(list_path)  # before reading: a later change shows
        return FileIndex.from_names(root, names()), [name], [stat]

    return _cached(f"list\0{list_path}", root, parse)


def _cached(
    what: str, root: str, build: Callable[[], tuple[FileIndex, list[str], list[os.stat_result]]]
) -> FileIndex:
    """The index ``build()`` makes for ``what`` under ``root``, or its cache while every path
    it recorded (relative to ``root``, with its stat) is unchanged (see :func:`_load`)."""
    key = hashlib.sha256(f"{CACHE_VERSION}\0{what}".encode()).hexdigest()[:32]
    cache = cache_folder() / "file-index" / f"{key}.npz"
    cached = _load(cache, root)
    if cached is not None:
        return cached
    with contextlib.ExitStack() as turn:
        # The ranks of a job start together: one lists, the others wait for its cache. A
        # cache folder that cannot be written (read-only home) has no lock: each process
        # then lists for itself.
        with contextlib.suppress(OSError):
            turn.enter_context(waiting_lock(cache.with_suffix(".lock")))
        cached = _load(cache, root)
        if cached is not None:
            return cached
        scanned_ns = time.time_ns()
        index, recorded, stats = build()
        _store(cache, root, index, FileIndex.from_names(root, recorded), stats, scanned_ns)
    return index


def _store(
    cache: Path,
    folder: str,
    index: FileIndex,
    folders: FileIndex,
    stats: list[os.stat_result],
    scanned_ns: int,
) -> None:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        root=np.frombuffer(os.fsencode(folder), np.uint8),
        names=index.buffer,
        offsets=index.offsets,
        folders=folders.buffer,
        folder_offsets=folders.offsets,
        # A file or folder replaced by another of the same time (mv keeps it) has another
        # inode; a file rewritten within one timestamp tick usually another size.
        stamps=np.array([(s.st_mtime_ns, s.st_ino, s.st_size) for s in stats], np.int64),
        scanned_ns=np.array(scanned_ns, np.int64),
    )
    with contextlib.suppress(OSError):  # a read-only home: the cache only saves time
        atomic_write(cache, buffer.getvalue())
        _remove_unused(cache.parent)


def _remove_unused(folder: Path) -> None:
    """Remove cache and lock files of ``folder`` not used for ``UNUSED_DAYS`` (a read
    refreshes a cache file's time; a lock is only held during a scan)."""
    oldest = time.time() - UNUSED_DAYS * 86400
    for path in [*folder.glob("*.npz"), *folder.glob("*.lock")]:
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < oldest:
                path.unlink()


def _load(cache: Path, folder: str) -> FileIndex | None:
    """The cached index under ``folder`` if the cache file is readable, is ``folder``'s and
    every path it recorded is unchanged and older than the scan by ``RACY_SECONDS``; else
    None."""
    try:
        with np.load(cache) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    try:
        if os.fsdecode(arrays["root"].tobytes()) != folder:
            return None
        recorded = FileIndex(folder, arrays["folders"], arrays["folder_offsets"])
        trusted_before = int(arrays["scanned_ns"]) - RACY_SECONDS * _NS
        for i, stamp in enumerate(arrays["stamps"].tolist()):  # [mtime, inode, size]
            now = os.stat(recorded[i])
            if stamp[0] >= trusted_before or stamp != [now.st_mtime_ns, now.st_ino, now.st_size]:
                return None
    except (KeyError, OSError, ValueError, IndexError):
        return None
    with contextlib.suppress(OSError):  # in use: not removed as unused
        os.utime(cache)
    return FileIndex(folder, arrays["names"], arrays["offsets"])
