"""LitData streaming shards: an image source and the shuffled training stream.

A shard item is ``{"image": encoded JPEG bytes, "name": UTF-8 bytes of the source file name}``
(bytes, because litdata would store a string naming an existing image file as that file);
:mod:`pconv.data.prepare` writes them. Shards live in ``output_dir/<split>`` on a local disk or
a cloud URL (``s3://``, ``gs://``…; litdata handles the transfer). Only shard code paths
import this module (and so litdata).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import albumentations as A
import numpy as np
from litdata import StreamingDataLoader, StreamingDataset
from litdata.streaming.sampler import ChunkedIndex

from pconv.data.datasets import MaskFn, make_sample, random_sample, sample_rng
from pconv.data.images import DataSourceError, decode_image
from pconv.data.object_store import check_s3_folder

#: LitData's index of a shard folder.
INDEX_FILE = "index.json"


def split_dir(root: str, split: str | None) -> str:
    """``root/split`` for local paths and URLs alike (``split=None``: ``root``)."""
    return f"{root.rstrip('/')}/{split}" if split else root


def is_url(path: str) -> bool:
    return "://" in path


def item_name(item: dict) -> str:
    """The source file name stored in a shard item."""
    return bytes(item["name"]).decode()


def _check_shards(input_dir: str) -> None:
    check_s3_folder(input_dir, INDEX_FILE, want_index=True)
    if not is_url(input_dir) and not Path(input_dir, INDEX_FILE).is_file():
        raise DataSourceError(
            f"no LitData shards at {input_dir} ({INDEX_FILE} missing); create them with "
            "`pconv prepare` (pconv.data.prepare.prepare) or point `root` at the shards folder"
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
        # The shuffle follows the run's seed too (LitData's default is a fixed 42).
        super().__init__(input_dir, shuffle=True, drop_last=True, seed=sample.seed)
        self.sample = sample

    def __getitem__(self, index: ChunkedIndex | int) -> dict:
        key = index.index if isinstance(index, ChunkedIndex) else int(index)
        return self.sample(super().__getitem__(index), self.current_epoch, key)


class ResumableStreamingLoader(StreamingDataLoader):
    """LitData's loader, positioned by the batches training consumed.

    ``batches_done()`` gives the batches the trainer consumed since the start of training
    (from its step count, which checkpoints hold). Each iteration starts at that position,
    like :class:`pconv.data.datasets.EpochSampler`, and the state Lightning saves in
    checkpoints records it too (LitData's own count would include the batch being trained
    and one prefetched batch more, which a resumed run would skip).
    """

    def __init__(self, dataset: StreamingDataset, batches_done: Callable[[], int], **kw) -> None:
        super().__init__(dataset, **kw)
        self.batches_done = batches_done

    def __iter__(self) -> Iterator:
        # The position comes from the step count at every epoch start, not from LitData's
        # own bookkeeping: Lightning may begin an epoch mid-way (an iteration-based run
        # resumed from an epoch-end checkpoint finishes the "old" epoch first) and stops after
        # ``len(self)`` batches without running LitData's iterator dry, which is how LitData
        # learns that a resumed epoch is over (it would replay that epoch next).
        epoch, consumed = self._position()
        if consumed:
            if self._iterator is not None:  # persistent workers hold the previous position
                self._iterator._shutdown_workers()
                self._iterator = None
            self.load_state_dict(self.state_dict())
        else:
            self.restore = False
            self.current_epoch = epoch  # LitData's __iter__ counts it up to ``epoch + 1``
        return super().__iter__()

    def _position(self) -> tuple[int, int]:
        """(epoch, batches consumed in it) of the batches training consumed."""
        return divmod(self.batches_done(), max(len(self), 1))

    def load_state_dict(self, obj: dict) -> None:
        check_stream_state(obj, self.num_workers)
        super().load_state_dict(obj)

    def state_dict(self) -> dict:
        epoch, consumed = self._position()
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


def check_stream_state(state: dict, num_workers: int) -> None:
    """Raise :class:`DataSourceError` unless a checkpoint's shard-loader ``state`` can resume
    exactly with ``num_workers`` loader workers: LitData deals the chunks out to the workers,
    so the order of the samples depends on their number."""
    saved = state.get("dataset", {}).get("num_workers")
    if saved is not None and saved != max(num_workers, 1):
        raise DataSourceError(
            f"the checkpoint's shard stream was read by {saved} loader worker(s) and this run "
            f"has data.num_workers={num_workers}: the sample order depends on it, so the run "
            f"would not resume exactly; resume with data.num_workers={saved}"
            + (" (or 0)" if saved == 1 else "")
        )


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
