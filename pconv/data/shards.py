"""LitData streaming shards: :func:`prepare` writes them, the DataModule streams them.

A shard item is ``{"image": encoded JPEG bytes, "name": UTF-8 bytes of the source file name}``
(bytes, because litdata would store a string naming an existing image file as that file).
JPEG sources are stored byte for byte (no re-encoding loss); other images are encoded as JPEG.
Every image is decoded once while preparing, so unreadable files are skipped there (warned
per file by the worker that meets it, and counted) and never reach training.

Shards live in ``output_dir/<split>`` on a local disk or a cloud URL (``s3://``, ``gs://``…;
litdata handles the transfer). Only shard code paths import this module (and so litdata).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
from litdata import StreamingDataLoader, StreamingDataset
from litdata.streaming.sampler import ChunkedIndex

from pconv.data.datasets import MaskFn, make_sample, random_sample, sample_rng
from pconv.data.images import (
    DataSourceError,
    FileImageSource,
    ImageSource,
    UnreadableImageError,
    UnreadableImageWarning,
    decode_image,
    open_image_source,
)

#: Quality of JPEG encoding for images that are not JPEG files already.
JPEG_QUALITY = 95
#: Target size of one shard file.
CHUNK_BYTES = "64MB"
_JPEG_MAGIC = b"\xff\xd8"
_INDEX_FILE = "index.json"


def split_dir(root: str, split: str | None) -> str:
    """``root/split`` for local paths and URLs alike (``split=None``: ``root``)."""
    return f"{root.rstrip('/')}/{split}" if split else root


def _is_url(path: str) -> bool:
    return "://" in path


def _encode_item(source: ImageSource, max_side: int | None, index: int):
    """Generator for ``litdata.optimize``: yields the shard item of image ``index``, or
    nothing when the image is unreadable."""
    name = source.name(index)
    data = Path(name).read_bytes() if isinstance(source, FileImageSource) else None
    try:
        image = decode_image(data, name) if data is not None else source.load(index)
    except (UnreadableImageError, OSError) as error:
        warnings.warn(
            f"skipping unreadable image {name}: {error}", UnreadableImageWarning, stacklevel=2
        )
        return
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
        num_workers: parallel processes (default: all CPU cores). litdata shows a progress bar.
        max_side: if set, larger images are downscaled so their longer side is ``max_side``.
        chunk_bytes: target size of a shard file.
    """
    from litdata import optimize

    images = open_image_source(source, root, split)
    destination = split_dir(output_dir, split)
    optimize(
        fn=partial(_encode_item, images, max_side),
        inputs=list(range(len(images))),
        output_dir=destination,
        num_workers=num_workers or os.cpu_count(),
        chunk_bytes=chunk_bytes,
        mode="overwrite",
        # Forked workers skip re-importing torch & co. (seconds each); spawn where no fork.
        start_method="fork" if "fork" in multiprocessing.get_all_start_methods() else None,
    )
    if not _is_url(destination):
        _report_skipped(destination, len(images))
    return destination


def _report_skipped(destination: str, total: int) -> None:
    index = json.loads(Path(destination, _INDEX_FILE).read_text())
    written = sum(chunk["chunk_size"] for chunk in index["chunks"])
    if written < total:
        warnings.warn(
            f"{total - written} of {total} images were unreadable and left out of {destination}",
            UnreadableImageWarning,
            stacklevel=3,
        )


def item_name(item: dict) -> str:
    """The source file name stored in a shard item."""
    return bytes(item["name"]).decode()


def _check_shards(input_dir: str) -> None:
    if not _is_url(input_dir) and not Path(input_dir, _INDEX_FILE).is_file():
        raise DataSourceError(
            f"no LitData shards at {input_dir} ({_INDEX_FILE} missing); create them with "
            "`pconv prepare` (pconv.data.shards.prepare) or point `root` at the shards folder"
        )


class ShardImageSource:
    """Random access to the images of a shard folder, as an image source.

    Indices are global (the whole split), so a DistributedSampler can split them over ranks.
    """

    def __init__(self, root: str, split: str | None = None) -> None:
        from litdata import StreamingDataset

        self.input_dir = split_dir(root, split)
        _check_shards(self.input_dir)
        self.dataset = StreamingDataset(self.input_dir)
        # ``len(dataset)`` is this rank's share; the regions cover the whole split.
        self.total = sum(end - start for start, end in self.dataset.region_of_interest)

    def __len__(self) -> int:
        return self.total

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.input_dir}, {len(self)} images)"

    def name(self, index: int) -> str:
        return item_name(self.dataset[index])

    def load(self, index: int, min_size: int | None = None) -> np.ndarray:
        item = self.dataset[index]
        return decode_image(item["image"], item_name(item), min_size)


class ShardTrainItem:
    """Shard item → training sample (crop + random mask), drawn from :func:`sample_rng` of
    (seed, epoch, item index, rank): LitData's loader restores its position on resume, and
    this makes the samples at that position the same as in a straight run."""

    def __init__(
        self, transform: A.Compose, mask_fn: MaskFn, size: int, rank: int = 0, seed: int = 0
    ) -> None:
        self.transform = transform
        self.mask_fn = mask_fn
        self.size = size
        self.rank = rank
        self.seed = seed

    def __call__(self, item: dict, epoch: int, index: int) -> dict:
        rng = sample_rng(self.seed, epoch, index, self.rank)
        image = decode_image(item["image"], item_name(item), self.size)
        image, mask = random_sample(image, self.transform, self.mask_fn, self.size, rng)
        return make_sample(image, mask)


class TrainingStream(StreamingDataset):
    """A shuffled, drop-last StreamingDataset whose items become samples keyed by their
    index and the stream's epoch."""

    def __init__(self, input_dir: str, sample: ShardTrainItem) -> None:
        super().__init__(input_dir, shuffle=True, drop_last=True)
        self.sample = sample

    def __getitem__(self, index: ChunkedIndex | int) -> dict:
        key = index.index if isinstance(index, ChunkedIndex) else int(index)
        return self.sample(super().__getitem__(index), self.current_epoch, key)


class ResumableStreamingLoader(StreamingDataLoader):
    """LitData's loader, whose saved position is the batches training consumed.

    Lightning saves the loader's state in checkpoints, but the loader has by then yielded the
    batch being trained and one prefetched batch more; resumed from that, a run would skip
    them. ``batches_done()`` gives the batches the trainer consumed since the start of
    training (from its step count), and the state records exactly that position.
    """

    def __init__(self, dataset: StreamingDataset, batches_done: Callable[[], int], **kw) -> None:
        super().__init__(dataset, **kw)
        self.batches_done = batches_done

    def state_dict(self) -> dict:
        epoch, consumed = divmod(self.batches_done(), len(self))
        yielded = self._num_samples_yielded_streaming, self._latest_worker_idx
        self._num_samples_yielded_streaming = consumed * self.batch_size
        # The worker that produced the last consumed batch (workers take turns from 0).
        self._latest_worker_idx = (consumed - 1) % max(self.num_workers, 1)
        try:
            state = super().state_dict()
        finally:
            self._num_samples_yielded_streaming, self._latest_worker_idx = yielded
        # LitData counts epochs from 1, up when an iteration starts: in epoch ``epoch`` (from
        # 0) a loader holds ``epoch + 1``; at its start, before iterating, ``epoch``.
        state["current_epoch"] = state["dataset"]["current_epoch"] = epoch + (consumed > 0)
        return state


def streaming_train_dataset(
    root: str,
    split: str | None,
    transform: A.Compose,
    mask_fn: MaskFn,
    size: int,
    rank: int = 0,
    seed: int = 0,
) -> StreamingDataset:
    """Shuffled training stream of a shard folder (local or URL), seeded by ``seed``.

    Construct it in ``setup()``: ``StreamingDataset`` reads the distributed rank when built and
    gives every rank and worker a disjoint part of the shards. An epoch is one pass.
    """
    input_dir = split_dir(root, split)
    _check_shards(input_dir)
    return TrainingStream(input_dir, ShardTrainItem(transform, mask_fn, size, rank, seed))


def main(argv: list[str] | None = None) -> int:
    """``pconv prepare``: write LitData shards for each requested split of an image source."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="pconv prepare",
        description="Convert an image folder, file list or the sample photos into LitData "
        "shards that `data.source: shards` streams.",
    )
    parser.add_argument("source", choices=["samples", "imagefolder", "folder", "filelist"])
    parser.add_argument("root", nargs="?", help="image root or file list (not for samples)")
    parser.add_argument("-o", "--output", required=True, help="shards root (path or URL)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    parser.add_argument("--workers", type=int, default=None, help="default: all cores")
    parser.add_argument("--max-side", type=int, default=None, help="downscale larger images")
    parser.add_argument("--overwrite", action="store_true", help="replace existing shards")
    args = parser.parse_args(argv)
    for split in args.splits:
        destination = split_dir(args.output, split)
        if (
            not _is_url(destination)
            and Path(destination, _INDEX_FILE).exists()
            and not (args.overwrite)
        ):
            print(
                f"pconv prepare: {destination} already holds shards; pass --overwrite to "
                "replace them",
                file=sys.stderr,
            )
            return 2
        try:
            written = prepare(
                args.source, args.root, args.output, split, args.workers, args.max_side
            )
        except DataSourceError as error:
            print(f"pconv prepare: {error}", file=sys.stderr)
            return 2
        print(f"wrote {written}")
    return 0
