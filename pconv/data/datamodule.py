"""``InpaintingDataModule``: every image source and mask generator behind one DataModule.

Batches are dicts (DESIGN.md): ``image`` N×3×H×W float [0, 1]; ``mask`` N×1×H×W float {0, 1}
(1 valid, 0 hole); ``hole_ratio`` N float; ``bucket`` N long (-1 out of range); ``border``
N bool. Validation, test and predict batches add ``index`` N long, the item's index in its
fixed evaluation set.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from pconv.data.buckets import NUM_BUCKETS
from pconv.data.datasets import EvalDataset, MaskFn, TrainDataset
from pconv.data.images import SOURCE_KINDS, DataSourceError, open_image_source
from pconv.data.mask_files import MaskFileSource
from pconv.data.masks import NUM_BORDER_SPLITS, make_mask_generator
from pconv.data.transforms import (
    NO_PHOTOMETRIC,
    TRAIN_CROP_SCALE,
    Photometric,
    eval_transform,
    train_transform,
)

_FLAT_SOURCES = ("folder", "filelist")


class InpaintingDataModule(L.LightningDataModule):
    """Images from ``source`` with irregular masks, for training and bucketed evaluation.

    Args:
        source: ``samples`` (the skimage.data photos), ``imagefolder`` (``root/<split>/...``,
            e.g. ImageNet), ``folder`` (every image under ``root``), ``filelist`` (a text
            file of paths) or ``shards`` (LitData shards at ``root/<split>``, path or URL).
        root: dataset root, file list or shards root; unused for ``samples``.
        train_split, val_split: sub-folders of ``imagefolder`` and ``shards`` roots; for
            ``samples``, ``train`` and ``val`` are disjoint photos (:mod:`pconv.data.samples`).
        image_size: side of the square training and evaluation crops, pixels.
        mask_preset: training and evaluation stroke masks (``paper``, ``thin``, ``medium``,
            ``thick``); evaluation always uses it.
        mask_dir: if set, training masks come from these files (black = hole).
        batch_size, num_workers, pin_memory: DataLoader settings (pinning only with CUDA).
        val_masks_per_bucket: N; validation and test sets hold 6 buckets × 2 border splits ×
            N items with fixed masks.
        eval_seed: seed of the fixed evaluation masks.
        train_samples_per_epoch: repeat small sources to this many items per epoch (map-style
            sources; a shard epoch is always one pass).
        val_root: validation images for the flat sources (default: ``root``).
        test_split: split of test and predict sets (default: ``val_split``).
        train_crop_scale: area range of the random training crop (random scales).
        train_photometric: random brightness, contrast, saturation and hue of training crops.
    """

    def __init__(
        self,
        source: str = "samples",
        root: str | None = None,
        train_split: str = "train",
        val_split: str = "val",
        image_size: int = 256,
        mask_preset: str = "paper",
        mask_dir: str | None = None,
        batch_size: int = 6,
        num_workers: int = 4,
        val_masks_per_bucket: int = 2,
        eval_seed: int = 0,
        pin_memory: bool = True,
        train_samples_per_epoch: int | None = None,
        val_root: str | None = None,
        test_split: str | None = None,
        train_crop_scale: tuple[float, float] = TRAIN_CROP_SCALE,
        train_photometric: Photometric = NO_PHOTOMETRIC,
    ) -> None:
        super().__init__()
        if source not in SOURCE_KINDS:
            raise DataSourceError(
                f"unknown image source {source!r}; valid: {', '.join(SOURCE_KINDS)}"
            )
        make_mask_generator(mask_preset)  # an unknown preset fails now, not in a worker
        self.save_hyperparameters()
        # Kept as given: under LightningCLI the hyper-parameters hold the config as dicts.
        self.train_photometric = train_photometric
        self.train_set: Dataset | None = None
        self.val_set: EvalDataset | None = None
        self.test_set: EvalDataset | None = None

    @property
    def eval_length(self) -> int:
        """Items in the validation and test sets."""
        return NUM_BUCKETS * NUM_BORDER_SPLITS * self.hparams.val_masks_per_bucket

    def _rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    def _mask_fn(self) -> MaskFn:
        if self.hparams.mask_dir:
            return MaskFileSource(self.hparams.mask_dir)
        return make_mask_generator(self.hparams.mask_preset)

    def _eval_set(self, split: str) -> EvalDataset:
        hp = self.hparams
        root = (hp.val_root or hp.root) if hp.source in _FLAT_SOURCES else hp.root
        size = hp.image_size
        return EvalDataset(
            open_image_source(hp.source, root, split),
            eval_transform(size),
            size,
            self.eval_length,
            hp.eval_seed,
            hp.mask_preset,
        )

    def setup(self, stage: str | None = None) -> None:
        """Open the sources (fails here, naming the path, if a root is missing or empty)."""
        hp = self.hparams
        if stage in ("fit", None):
            transform = train_transform(
                hp.image_size, tuple(hp.train_crop_scale), photometric=self.train_photometric
            )
            if hp.source == "shards":
                # Imported here: litdata is only needed for shards. Built in setup() because
                # StreamingDataset reads the distributed rank when it is constructed.
                from pconv.data.shards import streaming_train_dataset

                self.train_set = streaming_train_dataset(
                    hp.root, hp.train_split, transform, self._mask_fn(), hp.image_size, self._rank()
                )
            else:
                self.train_set = TrainDataset(
                    open_image_source(hp.source, hp.root, hp.train_split),
                    transform,
                    self._mask_fn(),
                    hp.image_size,
                    hp.train_samples_per_epoch,
                    self._rank(),
                )
        if stage in ("fit", "validate", None):
            self.val_set = self._eval_set(hp.val_split)
        if stage in ("test", "predict", None):
            self.test_set = self._eval_set(hp.test_split or hp.val_split)

    def _loader_kwargs(self) -> dict:
        workers = self.hparams.num_workers
        return dict(
            batch_size=self.hparams.batch_size,
            num_workers=workers,
            pin_memory=self.hparams.pin_memory and torch.cuda.is_available(),
            persistent_workers=workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        if self.hparams.source == "shards":
            from litdata import StreamingDataLoader

            # Lightning saves this loader's state in checkpoints, so a resumed run continues
            # the epoch where it stopped.
            return StreamingDataLoader(self.train_set, **self._loader_kwargs())
        # Dropping a ragged last batch keeps BatchNorm away from batches of one.
        drop_last = len(self.train_set) >= self.hparams.batch_size
        return DataLoader(
            self.train_set, shuffle=True, drop_last=drop_last, **self._loader_kwargs()
        )

    def _eval_loader(self, dataset: EvalDataset) -> DataLoader:
        # Under DDP Lightning would shard evaluation sets with a DistributedSampler, which pads
        # them to a multiple of the world size with repeated items (e.g. 600 items on 16 GPUs)
        # that the metrics would count twice. This sampler splits them without repeats;
        # evaluation has no per-step collective, so uneven shards are safe.
        sampler = None
        trainer = self.trainer
        kwargs = trainer.distributed_sampler_kwargs if trainer is not None else None
        if kwargs and kwargs["num_replicas"] > 1:
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False, **kwargs)
        return DataLoader(dataset, sampler=sampler, shuffle=False, **self._loader_kwargs())

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        """The test set: its images with their fixed masks (``index`` names each item)."""
        return self._eval_loader(self.test_set)
