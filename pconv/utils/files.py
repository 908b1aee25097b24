"""Atomic writes: a file or folder is either its old self or complete, never half-written.

The files pconv writes itself (reports, masks, exports, results) go through
:func:`atomic_path` or :func:`atomic_write`, so a crash or Ctrl-C mid-write leaves no torn file.
Folders of many files (shards, exported masks) are written into a :func:`staging_folder`
and put in place by :func:`swap_in` once complete.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pconv.utils.lock import try_lock

#: Staging folders are named ``.<destination name>.<8 hex digits>.partial``.
STAGING_SUFFIX = ".partial"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path in ``path``'s folder, renamed onto ``path`` when the block succeeds
    (and deleted when it fails), so ``path`` never holds a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are 0600, and the result must get the user's umask like any new
    # file (shared cluster folders). The suffix stays last: writers pick the format from it.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}{path.suffix}")
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        try:
            yield Path(temporary)
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)
    except OSError as error:
        if error.filename not in (str(temporary), temporary):
            raise
        # The user never named the temporary file: the error names their path instead.
        raise type(error)(error.errno, f"cannot write {path}: {error.strerror}") from None


def check_writable(folder: str | os.PathLike) -> None:
    """OSError naming ``folder`` unless a file can be created in it (tried, then removed):
    a read-only folder is refused before the work, not after."""
    probe = Path(folder, f".pconv-write-test.{uuid.uuid4().hex}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as error:
        raise type(error)(error.errno, f"cannot write into {folder}: {error.strerror}") from None


def stray_temporaries(folder: str | os.PathLike, suffix: str) -> list[Path]:
    """The temporaries :func:`atomic_path` left in ``folder`` for targets ending in ``suffix``
    (``.<name>.<32 hex digits><suffix>``): a process killed between creating and renaming one
    leaves it behind. Only a caller that holds the folder knows that none is still in use."""
    pattern = re.compile(rf"\..+{re.escape(suffix)}\.[0-9a-f]{{32}}{re.escape(suffix)}")
    return sorted(path for path in Path(folder).glob(f".*{suffix}") if pattern.fullmatch(path.name))


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def _staging_siblings(destination: Path) -> list[Path]:
    return [
        path
        for path in destination.parent.glob(f".{destination.name}.*{STAGING_SUFFIX}")
        if path.is_dir() and len(path.name) == len(destination.name) + 2 + 8 + len(STAGING_SUFFIX)
    ]


def remove_stale_staging(destination: str | os.PathLike) -> list[Path]:
    """Remove the staging folders of ``destination`` that no live process holds (left by a
    run that was killed); returns them. Those of a run still going are locked and kept."""
    removed = []
    for path in _staging_siblings(Path(os.path.abspath(destination))):
        try:
            descriptor = try_lock(path)
        except OSError:  # vanished meanwhile, or not ours to open
            continue
        if descriptor is None:
            continue
        try:
            shutil.rmtree(path)
            removed.append(path)
        finally:
            os.close(descriptor)
    return removed


@contextmanager
def staging_folder(destination: str | os.PathLike) -> Iterator[Path]:
    """A new hidden sibling folder of ``destination`` (same disk, so :func:`swap_in` is a
    rename), locked while the block runs and removed after it unless swapped in.

    Staging folders that killed runs left for ``destination`` are removed first, so none
    piles up (see :func:`remove_stale_staging`).
    """
    destination = Path(os.path.abspath(destination))  # "-o ." has a name too
    remove_stale_staging(destination)
    staging = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}{STAGING_SUFFIX}")
    try:
        staging.mkdir(parents=True)  # not mkdtemp: the files get the user's usual permissions
    except OSError as error:  # named by the user's folder, never by our hidden one
        raise type(error)(
            error.errno, f"cannot write into {destination.parent}: {error.strerror}"
        ) from None
    descriptor = try_lock(staging)
    try:
        yield staging
    finally:
        os.close(descriptor)
        shutil.rmtree(staging, ignore_errors=True)


def swap_in(staging: Path, destination: Path) -> None:
    """Replace ``destination`` (if any) by the complete folder ``staging``."""
    if destination.exists():
        old = staging.with_suffix(".old")
        os.replace(destination, old)
        os.replace(staging, destination)
        shutil.rmtree(old)
    else:
        os.replace(staging, destination)
