"""Map-style datasets yielding inpainting samples (image + mask) from an image source.

A sample is a dict (DESIGN.md): ``image`` 3×H×W float32 [0, 1] RGB, ``mask`` 1×H×W float32
{0, 1} (1 valid, 0 hole), ``hole_ratio`` float32 scalar, ``bucket`` int64 scalar (-1 out of
range), ``border`` bool scalar (a hole touches the border); evaluation samples add ``index``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from pconv.data.buckets import bucket_of
from pconv.data.images import ImageSource, SkippingReader
from pconv.data.masks import hole_ratio, touches_border
from pconv.data.transforms import to_tensor

#: ``gen(rng, height, width) -> H×W uint8 mask``: a StrokeMaskGenerator or MaskFileSource.
MaskFn = Callable[[np.random.Generator, int, int], np.ndarray]
#: Seeds of albumentations' own random state are drawn below this bound.
_SEED_BOUND = 2**31


def make_sample(image: np.ndarray, mask: np.ndarray) -> dict[str, torch.Tensor]:
    """The sample dict of an H×W×3 uint8 RGB crop and an H×W uint8 mask (1 valid, 0 hole)."""
    ratio = hole_ratio(mask)
    return {
        "image": to_tensor(image),
        "mask": torch.from_numpy(mask).float().unsqueeze(0),
        "hole_ratio": torch.tensor(ratio, dtype=torch.float32),
        "bucket": torch.tensor(bucket_of(ratio), dtype=torch.long),
        "border": torch.tensor(touches_border(mask)),
    }


class ProcessRandom:
    """Random state owned by one process: a numpy Generator plus the transform's seed.

    Created on first use in each process (DataLoader worker, DDP rank) from
    ``torch.initial_seed()``, which PyTorch makes distinct per worker and derives from the
    seed Lightning's ``seed_everything(workers=True)`` sets, mixed with the rank so DDP ranks
    never draw identical masks. A copy inherited through ``fork`` is detected by the pid.
    """

    def __init__(self, transform: A.Compose | None = None, rank: int = 0) -> None:
        self.transform = transform
        self.rank = rank
        self._pid: int | None = None
        self._generator: np.random.Generator | None = None

    def generator(self) -> np.random.Generator:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._generator = np.random.default_rng([torch.initial_seed(), self.rank])
            if self.transform is not None:
                # albumentations keeps its own state, identical in every forked worker.
                self.transform.set_random_seed(int(self._generator.integers(_SEED_BOUND)))
        return self._generator


class TrainDataset(Dataset):
    """Random crops of a source's images with fresh random masks.

    Args:
        source: the images.
        transform: the training pipeline (:func:`pconv.data.transforms.train_transform`).
        mask_fn: makes the masks.
        size: crop side, pixels.
        length: items per epoch; defaults to the number of images, larger repeats them.
        rank: global rank of this process (seeds the masks).
    """

    def __init__(
        self,
        source: ImageSource,
        transform: A.Compose,
        mask_fn: MaskFn,
        size: int,
        length: int | None = None,
        rank: int = 0,
    ) -> None:
        self.reader = SkippingReader(source, min_size=size)
        self.transform = transform
        self.mask_fn = mask_fn
        self.size = size
        self.length = length or len(source)
        self.random = ProcessRandom(transform, rank)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self.random.generator()
        image = self.transform(image=self.reader(index))["image"]
        return make_sample(image, self.mask_fn(rng, self.size, self.size))


#: ``masks(index) -> (mask, bucket, border)``: fixed evaluation mask ``index``, an H×W uint8
#: mask (1 valid, 0 hole); e.g. :class:`pconv.data.masks.GeneratedEvalMasks` or
#: :class:`pconv.data.nvidia_masks.FileEvalMasks`.
EvalMaskFn = Callable[[int], tuple[np.ndarray, int, bool]]


def spread_index(index: int, length: int, count: int, slot: int = 0, slots: int = 1) -> int:
    """Image position of evaluation item ``index`` of ``length`` in a source of ``count``.

    The ``slots`` evaluation sets of one source (e.g. validation = slot 0, test = slot 1 of
    2) interleave: together they take ``length * slots`` positions at an even stride over
    the whole source, so a sorted ImageFolder contributes every class, and the sets share no
    image when ``length * slots <= count``. Smaller sources are cycled.
    """
    position = index * slots + slot
    total = length * slots
    return position * count // total if total <= count else position % count


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

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = spread_index(index, self.length, len(self.reader), self.slot, self.slots)
        image = self.transform(image=self.reader(position))["image"]
        mask, _, _ = self.masks(index)
        return {**make_sample(image, mask), "index": torch.tensor(index, dtype=torch.long)}
