"""Map-style datasets yielding inpainting samples (image + mask) from an image source.

A sample is a dict (DESIGN.md): ``image`` 3×H×W float32 [0, 1] RGB, ``mask`` 1×H×W float32
{0, 1} (1 valid, 0 hole), ``hole_ratio`` float32 scalar, ``bucket`` int64 scalar (-1 out of
range), ``border`` bool scalar (a hole touches the border), ``skipped`` str (the unreadable
files passed over to make it, one per line; "" almost always); evaluation samples add
``index``.

Training randomness (crop, flip, mask) is a pure function of (seed, epoch, index, rank):
:func:`sample_rng`. No generator carries history from one sample to the next, so a resumed
run, any number of loader workers and every DDP rank draw exactly what a straight run draws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from pconv.data.buckets import bucket_of
from pconv.data.images import ImageSource, SkippingReader, drain
from pconv.data.masks import hole_ratio, touches_border
from pconv.data.transforms import to_tensor

#: ``gen(rng, height, width) -> H×W uint8 mask``: a StrokeMaskGenerator or MaskFileSource.
MaskFn = Callable[[np.random.Generator, int, int], np.ndarray]
#: Seeds of albumentations' own random state are drawn below this bound.
_SEED_BOUND = 2**31


def make_sample(
    image: np.ndarray, mask: np.ndarray, skipped: list[str] | None = None
) -> dict[str, torch.Tensor | str]:
    """The sample dict of an H×W×3 uint8 RGB crop and an H×W uint8 mask (1 valid, 0 hole);
    ``skipped`` names the unreadable files passed over to make it."""
    ratio = hole_ratio(mask)
    return {
        "image": to_tensor(image),
        "mask": torch.from_numpy(mask).float().unsqueeze(0),
        "hole_ratio": torch.tensor(ratio, dtype=torch.float32),
        "bucket": torch.tensor(bucket_of(ratio), dtype=torch.long),
        "border": torch.tensor(touches_border(mask)),
        # One string per sample: the default collate makes a list of them.
        "skipped": "\n".join(skipped or ()),
    }


def sample_rng(seed: int, epoch: int, index: int, rank: int) -> np.random.Generator:
    """The generator of training sample ``index`` in ``epoch`` on ``rank``: a pure function
    of its arguments (numpy's SeedSequence mixes them into independent streams)."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index, rank]))


def random_sample(
    image: np.ndarray, transform: A.Compose, mask_fn: MaskFn, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The random crop of ``image`` and a ``size``×``size`` mask, both drawn from ``rng``."""
    # albumentations keeps its own random state: reseed it from this sample's generator.
    transform.set_random_seed(int(rng.integers(_SEED_BOUND)))
    return transform(image=image)["image"], mask_fn(rng, size, size)


class EpochSampler(DistributedSampler):
    """Training order as sample keys ``epoch * len(dataset) + index``, resumable exactly.

    Each epoch is a permutation drawn from (seed, epoch) alone, split over the ranks like
    Lightning's DistributedSampler (equal shares, the remainder left out), and cut into
    ``batch_size`` batches (a ragged last batch is left out unless it is the only one).
    Iteration starts at batch ``position()``, counted from the start of training over one
    continuous stream of epochs: the DataModule passes the trainer's batch count, which
    checkpoints hold, so a resumed run continues exactly where the checkpoint was taken, with
    no loader state and no prefetch off-by-one. Being a DistributedSampler, Lightning leaves
    it in place under DDP.

    ``epoch_batches()`` gives the batches of a Lightning epoch (fewer than a pass with
    ``limit_train_batches``; None: a pass). Such an epoch continues the pass where the last
    one stopped and runs on into the next pass, so every item trains once per pass and every
    Lightning epoch has the same length.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        seed: int,
        position: Callable[[], int] = lambda: 0,
        epoch_batches: Callable[[], int | None] = lambda: None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        super().__init__(range(length), num_replicas=num_replicas, rank=rank, drop_last=True)
        self.length = length
        self.batch_size = batch_size
        self.seed = seed
        self.position = position
        self.epoch_batches = epoch_batches
        self.share = length // num_replicas
        self.batches = max(self.share // batch_size, 1)

    def __len__(self) -> int:
        return min(self.share, self.batches * self.batch_size)

    def epoch_keys(self, epoch: int) -> np.ndarray:
        """This rank's sample keys of ``epoch``, in order."""
        order = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
        indices = order.permutation(self.length)[self.rank : self.share * self.num_replicas]
        return epoch * self.length + indices[:: self.num_replicas][: len(self)]

    def __iter__(self) -> Iterator[int]:
        batch = self.position()
        length = self.epoch_batches() or self.batches
        end = (batch // length + 1) * length  # where this (Lightning) epoch ends
        while batch < end:
            epoch, first = divmod(batch, self.batches)
            last = min(self.batches, first + end - batch)
            keys = self.epoch_keys(epoch)[first * self.batch_size : last * self.batch_size]
            yield from keys.tolist()
            batch += last - first


class TrainDataset(Dataset):
    """Random crops of a source's images with random masks.

    Item ``key`` is image ``key % length`` (cycling through the source) in epoch
    ``key // length`` (keys from :class:`EpochSampler`; a plain index is epoch 0); its crop,
    flip and mask come from :func:`sample_rng` of (seed, epoch, index, rank).

    Args:
        source: the images.
        transform: the training pipeline (:func:`pconv.data.transforms.train_transform`).
        mask_fn: makes the masks.
        size: crop side, pixels.
        length: items per epoch; defaults to the number of images, larger repeats them.
        rank: global rank of this process.
        seed: the run's seed.
    """

    def __init__(
        self,
        source: ImageSource,
        transform: A.Compose,
        mask_fn: MaskFn,
        size: int,
        length: int | None = None,
        rank: int = 0,
        seed: int = 0,
    ) -> None:
        self.reader = SkippingReader(source, min_size=size)
        self.transform = transform
        self.mask_fn = mask_fn
        self.size = size
        self.length = length or len(source)
        self.rank = rank
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int) -> dict[str, torch.Tensor | str]:
        epoch, index = divmod(int(key), self.length)
        rng = sample_rng(self.seed, epoch, index, self.rank)
        image, mask = random_sample(
            self.reader(index), self.transform, self.mask_fn, self.size, rng
        )
        return make_sample(image, mask, self.reader.drain() + drain(self.mask_fn))


#: ``masks(index) -> (mask, bucket, border)``: fixed evaluation mask ``index``, an H×W uint8
#: mask (1 valid, 0 hole); e.g. :class:`pconv.data.masks.GeneratedEvalMasks` or
#: :class:`pconv.data.nvidia_masks.FileEvalMasks`.
EvalMaskFn = Callable[[int], tuple[np.ndarray, int, bool]]


def spread_index(
    index: int, length: int, count: int, slot: int = 0, slots: int = 1, rows: int = 1
) -> int:
    """Image position of evaluation item ``index`` of ``length`` in a source of ``count``.

    The ``slots`` evaluation sets of one source (e.g. validation = slot 0, test = slot 1 of
    2) interleave: together they take ``length * slots`` positions at an even stride over
    the whole source, so a sorted ImageFolder contributes every class, and the sets share no
    image when ``length * slots <= count``.

    Smaller sources are cycled, within each row: when the items' rows cycle with the index
    with period ``rows`` (each row once per period, e.g. the 12 bucket × border cells of
    the paper track), the items of one row take consecutive images, so every image appears
    in every row that holds at least ``count`` items (with ``rows`` even and 2 images,
    plain cycling would give each row a single image, and the rows would compare the
    images instead of the holes).
    """
    total = length * slots
    if total <= count:
        return (index * slots + slot) * count // total
    row, within = index % rows, index // rows
    return ((row * -(-length // rows) + within) * slots + slot) % count


class EvalDataset(Dataset):
    """Fixed evaluation items: images spread evenly over the source (:func:`spread_index`),
    centre-cropped, with the fixed masks of ``masks``.

    Item ``index`` is the same in every run, rank and worker.

    Args:
        source, transform, size: the images, the evaluation pipeline and the crop side.
        length: number of items.
        masks: the fixed masks (:data:`EvalMaskFn`).
        slot, slots: which of the ``slots`` disjoint evaluation sets of ``source`` this is.
    """

    def __init__(
        self,
        source: ImageSource,
        transform: A.Compose,
        size: int,
        length: int,
        masks: EvalMaskFn,
        slot: int = 0,
        slots: int = 1,
    ) -> None:
        self.reader = SkippingReader(source, min_size=size)
        self.transform = transform
        self.size = size
        self.length = length
        self.masks = masks
        self.slot, self.slots = slot, slots

    def __len__(self) -> int:
        return self.length

    def image_positions(self) -> list[int]:
        """The source position of every item's image."""
        count = len(self.reader)
        return [
            spread_index(i, self.length, count, self.slot, self.slots) for i in range(len(self))
        ]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        position = spread_index(index, self.length, len(self.reader), self.slot, self.slots)
        image = self.transform(image=self.reader(position))["image"]
        mask, _, _ = self.masks(index)
        sample = make_sample(image, mask, self.reader.drain())
        return {**sample, "index": torch.tensor(index, dtype=torch.long)}
