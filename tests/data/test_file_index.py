"""pconv.data.file_index: folder listings held as arrays and cached on disk, rescanned
whenever the tree changed."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from pconv.data import file_index
from pconv.data.file_index import FileIndex, cache_folder, scan_folder
from pconv.data.images import IMAGE_EXTENSIONS, file_list, image_folder

#: Far enough in the past for the racy-folder rule: a tree older than this is trusted.
OLD = time.time() - 3600


def literal_listing(root: Path) -> list[str]:
    """The listing as the pre-index code built it: os.walk, then sorted Path objects."""
    found = [
        Path(folder, name)
        for folder, _, names in os.walk(root, followlinks=True)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    return [str(path) for path in sorted(found)]


def make_tree(root: Path, files: list[str]) -> None:
    """Empty files at ``files`` (relative names), every folder dated an hour back."""
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    age_folders(root)


def age_folders(root: Path) -> None:
    for folder, _, _ in os.walk(root):
        os.utime(folder, (OLD, OLD))


def listing(index: FileIndex) -> list[str]:
    return [index[i] for i in range(len(index))]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(file_index.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "file-index"


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "tree"
    make_tree(
        root,
        ["b/2.JPEG", "b/10.JPEG", "a-c/x.png", "a/z.jpg", "a/sub/y.JPG", "a.jpg", "notes.txt"],
    )
    return root


@pytest.fixture
def count_scans(monkeypatch, tmp_path) -> list[str]:
    """Every folder of the tree os.scandir lists from now on (not the cache's own folder)."""
    listed = []
    real = os.scandir

    def spy(path="."):
        if not os.fspath(path).startswith(str(tmp_path / "cache")):
            listed.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(file_index.os, "scandir", spy)
    return listed


def test_listing_matches_the_sorted_paths_of_os_walk(tree, cache):
    index = scan_folder(tree, IMAGE_EXTENSIONS)
    assert listing(index) == literal_listing(tree)
    # Path order compares components: "a" < "a-c" < "a.jpg", and "10" < "2".
    expected = ["a/sub/y.JPG", "a/z.jpg", "a-c/x.png", "a.jpg", "b/10.JPEG", "b/2.JPEG"]
    assert listing(index) == [str(tree / name) for name in expected]


def test_index_is_two_arrays_not_an_object_per_file(tree, cache):
    """What forked DataLoader workers inherit: a buffer and offsets, no per-file objects."""
    source = image_folder(tree)
    assert isinstance(source.paths, FileIndex)
    assert source.paths.buffer.dtype == np.uint8 and source.paths.offsets.dtype == np.int64
    names = [os.path.relpath(p, tree) for p in literal_listing(tree)]
    assert source.paths.buffer.tobytes() == "".join(names).encode()
    assert source.paths.offsets.tolist() == [0, *np.cumsum([len(n) for n in names]).tolist()]


def test_second_scan_reads_the_cache_without_listing_folders(tree, cache, count_scans):
    first = listing(scan_folder(tree, IMAGE_EXTENSIONS))
    assert len(count_scans) == 5  # tree, a, a/sub, a-c, b
    (cached,) = cache.glob("*.npz")
    count_scans.clear()
    assert listing(scan_folder(tree, IMAGE_EXTENSIONS)) == first
    assert count_scans == []
    # No temporary file left; the lock beside the cache is empty.
    assert sorted(p.name for p in cache.iterdir()) == [f"{cached.stem}.lock", cached.name]


def _scan_at_once(tree: Path, barrier, walks: Path, results) -> None:
    """One of the ranks of a job: wait for the others, then scan ``tree``, each listing it
    does recorded in ``walks`` and slowed down so the ranks overlap."""
    real = file_index.walk_files

    def slow_walk(*args):
        with walks.open("a") as record:
            record.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        return real(*args)

    file_index.walk_files = slow_walk
    barrier.wait()
    results.put(listing(scan_folder(tree, IMAGE_EXTENSIONS)))


def test_ranks_starting_together_list_the_tree_once(tree, cache, tmp_path):
    """Two processes with no cache: one lists, the other waits and reads its cache."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    walks = tmp_path / "walks.txt"
    ranks = [
        context.Process(target=_scan_at_once, args=(tree, barrier, walks, results))
        for _ in range(2)
    ]
    for rank in ranks:
        rank.start()
    listings = [results.get(timeout=60) for _ in ranks]
    for rank in ranks:
        rank.join(timeout=60)
        assert rank.exitcode == 0
    assert listings == [literal_listing(tree)] * 2
    assert len(walks.read_text().splitlines()) == 1


@pytest.mark.parametrize(
    "change",
    ["add", "remove", "rename", "new folder", "folder removed"],
)
def test_changed_tree_is_rescanned(tree, cache, count_scans, change):
    scan_folder(tree, IMAGE_EXTENSIONS)
    if change == "add":
        (tree / "a" / "sub" / "new.jpg").touch()
    elif change == "remove":
        (tree / "b" / "10.JPEG").unlink()
    elif change == "rename":
        (tree / "a" / "z.jpg").rename(tree / "a" / "w.jpg")
    elif change == "new folder":
        (tree / "b" / "deeper").mkdir()
        (tree / "b" / "deeper" / "1.jpg").touch()
    else:
        for path in (tree / "a" / "sub").iterdir():
            path.unlink()
        (tree / "a" / "sub").rmdir()
    count_scans.clear()
    assert listing(scan_folder(tree, IMAGE_EXTENSIONS)) == literal_listing(tree)
    assert count_scans  # listed again


def test_change_hidden_by_a_coarse_timestamp_is_caught_while_racy(tree, cache):
    """A folder changed twice within one timestamp tick keeps its mtime: the cache of a
    folder modified within RACY_SECONDS of its scan is therefore never trusted."""
    now = time.time()
    os.utime(tree / "b", (now, now))
    scan_folder(tree, IMAGE_EXTENSIONS)
    (tree / "b" / "3.jpg").touch()
    os.utime(tree / "b", (now, now))  # the same mtime as when it was scanned
    assert listing(scan_folder(tree, IMAGE_EXTENSIONS)) == literal_listing(tree)


@pytest.mark.parametrize("damage", [b"", b"not a zip file", None])
def test_unreadable_or_foreign_cache_is_ignored_and_rewritten(tree, cache, damage, tmp_path):
    scan_folder(tree, IMAGE_EXTENSIONS)
    (path,) = cache.glob("*.npz")
    if damage is None:  # a valid cache file, but of another folder
        other = tmp_path / "other"
        make_tree(other, ["1.jpg"])
        scan_folder(other, IMAGE_EXTENSIONS)
        (other_cache,) = set(cache.glob("*.npz")) - {path}
        other_cache.replace(path)
    else:
        path.write_bytes(damage)
    assert listing(scan_folder(tree, IMAGE_EXTENSIONS)) == literal_listing(tree)
    assert path.read_bytes() != damage and path.stat().st_size > 0


def test_read_only_cache_folder_still_scans(tree, tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv(file_index.CACHE_ENV, str(blocked))
    assert listing(scan_folder(tree, IMAGE_EXTENSIONS)) == literal_listing(tree)
    assert blocked.read_text() == "a file where the cache folder should be"


def test_cache_folder_defaults_to_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(file_index.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_folder() == tmp_path / ".cache" / "pconv"


def test_file_list_is_held_as_arrays_relative_to_the_list(tmp_path):
    listing_path = tmp_path / "list.txt"
    listing_path.write_text("# images\nb/1.jpg\n\n  a/2.png \n/abs/3.jpg\nnon-ascii-ü.jpg\n")
    source = file_list(listing_path)
    assert isinstance(source.paths, FileIndex)
    assert [source.name(i) for i in range(len(source))] == [
        str(tmp_path / "b/1.jpg"), str(tmp_path / "a/2.png"), "/abs/3.jpg",
        str(tmp_path / "non-ascii-ü.jpg"),
    ]  # fmt: skip
    with pytest.raises(IndexError):
        source.name(4)


@pytest.mark.parametrize("change", ["rewritten", "replaced"])
def test_file_list_is_parsed_once_until_it_changes(tmp_path, cache, monkeypatch, change):
    """A run opens its lists several times: a list is parsed once and then read from the
    cache, and a list that changed is parsed again, even one replaced by another file of the
    same time (``mv`` keeps a file's time)."""
    listing_path = tmp_path / "list.txt"
    listing_path.write_text("a.jpg\nb.jpg\n")
    os.utime(listing_path, (OLD, OLD))
    reads = []
    real = Path.read_text

    def counted(path, *args, **kwargs):
        reads.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counted)
    assert file_list(listing_path).paths.names() == ["a.jpg", "b.jpg"]
    assert file_list(listing_path).paths.names() == ["a.jpg", "b.jpg"]
    assert reads == [listing_path]
    if change == "rewritten":
        listing_path.write_text("c.jpg\n")
        os.utime(listing_path, (OLD, OLD))  # same time, another size
    else:
        other = tmp_path / "other.txt"
        other.write_text("c.jpg\nd.jpg\n")
        os.utime(other, (OLD, OLD))
        other.replace(listing_path)
    expected = {"rewritten": ["c.jpg"], "replaced": ["c.jpg", "d.jpg"]}[change]
    assert file_list(listing_path).paths.names() == expected
    assert len(reads) == 2


def test_caches_unused_for_a_month_are_removed_when_another_is_written(tree, cache, tmp_path):
    """A tree read yesterday keeps its cache; one unused for longer than UNUSED_DAYS goes
    (with its lock) the next time any cache is written."""
    in_use = tmp_path / "in-use"
    make_tree(in_use, ["x.jpg"])
    scan_folder(in_use, IMAGE_EXTENSIONS)
    (kept,) = cache.glob("*.npz")
    long_ago = time.time() - (file_index.UNUSED_DAYS + 1) * 86400
    os.utime(kept, (long_ago, long_ago))
    assert listing(scan_folder(in_use, IMAGE_EXTENSIONS)) == [str(in_use / "x.jpg")]  # read
    stale = [cache / "0123.npz", cache / "0123.lock"]
    for path in stale:
        path.write_bytes(b"old")
        os.utime(path, (long_ago, long_ago))
    scan_folder(tree, IMAGE_EXTENSIONS)  # writes a second cache
    assert not any(path.exists() for path in stale)
    assert kept.exists() and len(list(cache.glob("*.npz"))) == 2
