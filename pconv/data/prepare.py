"""``pconv prepare``: write LitData shards (:mod:`pconv.data.shards`) from an image source.

JPEG sources are stored byte for byte (no re-encoding loss); other images are encoded as JPEG.
Every image is decoded once while preparing, so unreadable files are skipped there (warned
per file by the worker that meets it, and counted) and never reach training.

Preparing never leaves a half shard set, nor destroys a good one: every split is checked
before anything is written; on a local disk each split is written to a hidden temporary
sibling (``.<split>.*.partial``, :func:`pconv.utils.files.staging_folder`; those left by a
killed run are removed by the next) and the finished splits are swapped in only when all of
them are complete and hold at least one image (the old shards are kept until then). A cloud
URL is written in place.

A flat source (``folder``, ``filelist``, ``samples``) has no splits of its own: asked for
several splits, :func:`split_indices` divides its images at random (seeded), each split after
the first getting ``val_fraction`` of them, so train and val never share an image.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from pconv.data.images import (
    DataSourceError,
    FileImageSource,
    ImageSource,
    UnreadableImageError,
    UnreadableImageWarning,
    decode_image,
)
from pconv.data.object_store import check_s3_folder
from pconv.data.shards import INDEX_FILE, is_url, split_dir
from pconv.data.sources import open_image_source
from pconv.utils.files import staging_folder, swap_in
from pconv.utils.progress import progress_bar

#: Quality of JPEG encoding for images that are not JPEG files already.
JPEG_QUALITY = 95
#: Target size of one shard file.
CHUNK_BYTES = "64MB"
_JPEG_MAGIC = b"\xff\xd8"
#: Sources without splits of their own, whose images :func:`split_indices` divides.
FLAT_SOURCES = ("folder", "filelist", "samples")
#: Seconds between progress-bar updates.
_PROGRESS_POLL_S = 0.2


def _encode_item(
    source: ImageSource, max_side: int | None, index: int, tally: _Tally | None = None
):
    """Generator for ``litdata.optimize``: yields the shard item of image ``index``, or
    nothing when the image is unreadable (warned here, or through ``tally`` when a progress
    bar shows it)."""
    name = source.name(index)
    try:
        data = Path(name).read_bytes() if isinstance(source, FileImageSource) else None
        image = decode_image(data, name) if data is not None else source.load(index)
    except (UnreadableImageError, OSError) as error:
        message = f"skipping unreadable image {name}: {getattr(error, 'reason', error)}"
        if tally is None:
            warnings.warn(message, UnreadableImageWarning, stacklevel=2)
        else:
            tally.skipped.put(message)
        return
    finally:
        if tally is not None:
            with tally.done.get_lock():
                tally.done.value += 1
    too_big = max_side is not None and max(image.shape[:2]) > max_side
    if data is None or too_big or not data.startswith(_JPEG_MAGIC):
        if too_big:
            scale = max_side / max(image.shape[:2])
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()
    yield {"image": data, "name": name.encode()}


def prepare(
    source: str,
    root: str | None,
    output_dir: str,
    split: str = "train",
    num_workers: int | None = None,
    max_side: int | None = None,
    chunk_bytes: str = CHUNK_BYTES,
) -> str:
    """Convert one split of an image source into LitData shards; returns the shard folder.

    Args:
        source: ``samples``, ``imagefolder``, ``folder`` or ``filelist`` (as in the DataModule).
        root: the source's root (folder, file list); unused for ``samples``.
        output_dir: shards root, local or a cloud URL; this split goes to ``output_dir/split``.
        split: sub-folder read from ``imagefolder`` roots and written under ``output_dir``.
        num_workers: parallel processes (default: all CPU cores).
        max_side: if set, larger images are downscaled so their longer side is ``max_side``.
        chunk_bytes: target size of a shard file.

    Existing shards of the split are replaced only once the new ones are complete; raises
    :class:`DataSourceError` (keeping them) when no image of the source is readable.
    """
    images = open_image_source(source, root, split)
    plan = {split: (images, range(len(images)))}
    prepare_splits(plan, output_dir, num_workers, max_side, chunk_bytes)
    return split_dir(output_dir, split)


def split_indices(
    count: int, splits: Sequence[str], val_fraction: float, seed: int
) -> dict[str, list[int]]:
    """Divide ``count`` images of a flat source among ``splits`` at random (seeded): each split
    after the first gets ``round(val_fraction * count)`` images (at least one), the first the
    rest. Indices are sorted within a split. A single split gets every image."""
    if len(splits) == 1:
        return {splits[0]: list(range(count))}
    share = max(1, round(val_fraction * count))
    first = count - share * (len(splits) - 1)
    if first < 1:
        raise DataSourceError(
            f"{count} image(s) are too few to split into {', '.join(splits)} with "
            f"--val-fraction {val_fraction}; add images or ask for fewer splits"
        )
    order = np.random.default_rng(seed).permutation(count)
    bounds = [0, first, *(first + share * (i + 1) for i in range(len(splits) - 1))]
    return {
        split: sorted(order[start:stop].tolist())
        for split, start, stop in zip(splits, bounds[:-1], bounds[1:], strict=True)
    }


def check_destination(destination: str, overwrite: bool) -> None:
    """Refuse a split folder that must not be replaced: a file, a folder holding other things
    than shards, or existing shards without ``overwrite``; of URLs, ``s3://`` ones are
    checked (bucket, credentials, endpoint, existing shards), others left to LitData."""
    if is_url(destination):
        check_s3_folder(destination, INDEX_FILE, want_index=False, overwrite=overwrite)
        return
    path = Path(destination)
    for folder in (path.parent, path):
        if folder.exists() and not folder.is_dir():
            raise DataSourceError(f"{folder} is a file; give -o a folder for the shards")
    if Path(destination, INDEX_FILE).exists():
        if not overwrite:
            raise DataSourceError(
                f"{destination} already holds shards; pass --overwrite to replace them"
            )
    elif path.is_dir() and any(path.iterdir()):
        raise DataSourceError(
            f"{destination} holds files that are not LitData shards ({INDEX_FILE} missing); "
            "choose another -o"
        )


def prepare_splits(
    plan: dict[str, tuple[ImageSource, Sequence[int]]],
    output_dir: str,
    num_workers: int | None = None,
    max_side: int | None = None,
    chunk_bytes: str = CHUNK_BYTES,
) -> dict[str, int]:
    """Write the shards of every split of ``plan`` (split → images and the indices to take);
    returns the number of images written per split (-1 where unknown: cloud URLs).

    Local splits are written to temporary siblings and swapped in together once all are
    complete and non-empty (:class:`DataSourceError` otherwise, old shards kept).
    """
    staged: dict[str, Path] = {}
    written: dict[str, int] = {}
    total = sum(len(indices) for _, indices in plan.values())
    with ExitStack() as stack:
        with _progress(total, f"preparing {', '.join(plan)}") as tally:
            write = partial(
                _optimize, num_workers=num_workers, max_side=max_side, chunk_bytes=chunk_bytes,
                tally=tally,
            )  # fmt: skip
            for split, (images, indices) in plan.items():
                destination = split_dir(output_dir, split)
                if is_url(destination):  # object stores cannot rename: written in place
                    write(images, indices, destination)
                    written[split] = -1
                    continue
                staging = staged[destination] = stack.enter_context(staging_folder(destination))
                write(images, indices, str(staging))
                if tally is not None:
                    tally.warn_skipped()  # the files first, then their count
                written[split] = _count_written(staging, destination, len(indices))
        for destination, staging in staged.items():
            swap_in(staging, Path(destination))
    return written


def _optimize(
    images: ImageSource,
    indices: Sequence[int],
    output_dir: str,
    num_workers: int | None,
    max_side: int | None,
    chunk_bytes: str,
    tally: _Tally | None,
) -> None:
    from litdata import optimize

    optimize(
        fn=partial(_encode_item, images, max_side, tally=tally),
        inputs=list(indices),
        output_dir=output_dir,
        num_workers=min(num_workers or os.cpu_count() or 1, len(indices)),
        chunk_bytes=chunk_bytes,
        mode="overwrite",
        # Forked workers skip re-importing torch & co. (seconds each); spawn where no fork.
        start_method="fork" if "fork" in multiprocessing.get_all_start_methods() else None,
        # Our own progress bar instead of litdata's notices, log lines and tqdm bar.
        verbose=False,
    )


def _count_written(staging: Path, destination: str, total: int) -> int:
    """Images in the shards at ``staging``; warns about skipped ones, refuses none."""
    index = json.loads(Path(staging, INDEX_FILE).read_text())
    written = sum(chunk["chunk_size"] for chunk in index["chunks"])
    if not written:
        raise DataSourceError(
            f"none of the {total} images for {destination} could be read (see the warnings "
            "above); nothing was written and existing shards are kept"
        )
    if written < total:
        warnings.warn(
            f"{total - written} of {total} images were unreadable and left out of {destination}",
            UnreadableImageWarning,
            stacklevel=3,
        )
    return written


class _Tally:
    """What litdata's worker processes report to the progress bar: ``done``, the number of
    images handled (a shared counter), and ``skipped``, messages about unreadable ones, which
    the main process warns about so that they print above the bar, not through it."""

    def __init__(self) -> None:
        self.done = multiprocessing.Value("l", 0)
        self.skipped = multiprocessing.SimpleQueue()

    def count(self) -> int:
        # Without the counter's lock: a worker forked now must never inherit it held.
        return self.done.get_obj().value

    def warn_skipped(self) -> None:
        while not self.skipped.empty():
            warnings.warn(self.skipped.get(), UnreadableImageWarning, stacklevel=1)


@contextmanager
def _progress(total: int, description: str) -> Iterator[_Tally | None]:
    """One progress bar for the images that litdata's worker processes handle; yields the
    tally they report to (None when no bar is shown: off a terminal)."""
    bar = progress_bar()
    if bar.disable:
        yield None
        return
    tally = _Tally()
    stop = threading.Event()
    with bar:
        task = bar.add_task(description, total=total)

        def poll() -> None:
            while not stop.wait(_PROGRESS_POLL_S):
                tally.warn_skipped()
                bar.update(task, completed=tally.count())

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield tally
        finally:
            stop.set()
            thread.join()
            tally.warn_skipped()


def main(argv: list[str] | None = None) -> int:
    """``pconv prepare``: write LitData shards for each requested split of an image source."""
    from pconv.utils.tool_args import prepare

    args = prepare().parse_args(argv)

    def fail(message: str) -> int:
        print(f"pconv prepare: {message}", file=sys.stderr)
        return 2

    if args.workers is not None and args.workers < 1:
        return fail(f"--workers must be at least 1, got {args.workers}")
    if args.max_side is not None and args.max_side < 1:
        return fail(f"--max-side must be at least 1, got {args.max_side}")
    if not 0 < args.val_fraction < 1:
        return fail(f"--val-fraction must lie between 0 and 1, got {args.val_fraction}")
    if len(set(args.splits)) < len(args.splits):
        return fail(f"--splits names a split twice: {' '.join(args.splits)}")
    if args.source == "samples" and args.root is not None:
        return fail(
            f"samples takes no root (the sample photos ship with pconv), got {args.root}; "
            "leave it out, or use `folder` for a folder of your own"
        )
    if args.root is not None and _inside(args.output, args.root):
        return fail(
            f"-o {args.output} lies inside the source {args.root}, so the shards would mix "
            "with the images (and be read as images by the next run); choose -o outside it"
        )
    flat = args.source in FLAT_SOURCES
    try:
        # Every split is checked before anything is written.
        for split in args.splits:
            check_destination(split_dir(args.output, split), args.overwrite)
        if flat:
            images = open_image_source(args.source, args.root)
            parts = split_indices(len(images), args.splits, args.val_fraction, args.seed)
            plan = {split: (images, indices) for split, indices in parts.items()}
        else:
            plan = {}
            for split in args.splits:
                images = open_image_source(args.source, args.root, split)
                plan[split] = (images, range(len(images)))
        if flat and len(args.splits) > 1:
            counts = " and ".join(f"{split} {len(i)}" for split, (_, i) in plan.items())
            print(
                f"pconv prepare: {args.source} has no splits of its own: its {len(images)} "
                f"images are split at random (--seed {args.seed}, --val-fraction "
                f"{args.val_fraction}) into {counts}"
            )
        with warnings.catch_warnings():
            warnings.showwarning = _print_warning  # inherited by litdata's forked workers
            written = prepare_splits(plan, args.output, args.workers, args.max_side)
    except (DataSourceError, OSError) as error:  # OSError: an output that cannot be written
        return fail(str(error))
    for split, count in written.items():
        images = f": {count} image{'s' * (count != 1)}" if count >= 0 else ""
        print(f"pconv prepare: wrote {split_dir(args.output, split)}{images}")
    return 0


def _inside(output: str, root: str) -> bool:
    """Whether the local ``output`` is the folder ``root`` or lies under it (beside a file
    list is fine: its images are elsewhere)."""
    if is_url(output) or not Path(root).is_dir():
        return False
    return Path(output).resolve().is_relative_to(Path(root).resolve())


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings of ``pconv prepare`` (unreadable images) as one plain line each."""
    print(f"pconv prepare: {message}", file=sys.stderr)
