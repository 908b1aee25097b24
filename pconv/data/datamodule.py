"""``InpaintingDataModule``: every image source and mask generator behind one DataModule.

Batches are dicts (DESIGN.md): ``image`` N×3×H×W float [0, 1]; ``mask`` N×1×H×W float {0, 1}
(1 valid, 0 hole); ``hole_ratio`` N float; ``bucket`` N long (-1 out of range); ``border``
N bool. Validation, test and predict batches add ``index`` N long, the item's index in its
fixed evaluation set.
"""

from __future__ import annotations

import os
import signal
from dataclasses import asdict
from typing import Literal

import lightning as L
import torch
from jsonargparse.typing import NonNegativeInt, PositiveInt
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.trainer.connectors.data_connector import _parse_num_batches
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from pconv.data.buckets import NUM_BUCKETS
from pconv.data.datasets import EpochSampler, EvalDataset, EvalMaskFn, MaskFn, TrainDataset
from pconv.data.images import DataSourceError
from pconv.data.mask_files import MaskFileSource
from pconv.data.masks import NUM_BORDER_SPLITS, GeneratedEvalMasks, make_mask_generator
from pconv.data.nvidia_masks import FileEvalMasks
from pconv.data.sources import SOURCE_KINDS, open_image_source
from pconv.data.transforms import (
    NO_PHOTOMETRIC,
    TRAIN_CROP_SCALE,
    AreaFraction,
    Photometric,
    eval_transform,
    train_transform,
)

#: Sources with no splits of their own: validation reads data.val_root.
FLAT_SOURCES = ("folder", "filelist")
#: Evaluation sets per source: validation (slot 0) and test (slot 1).
_EVAL_SLOTS = 2


def ignore_stop_signals(worker_id: int) -> None:
    """A loader worker's init: ignore Ctrl-C and SIGTERM. A terminal or a scheduler sends
    them to every process of the job, and the main process finishes its optimizer step (which
    may need more batches) before it stops, and stops its workers itself."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


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
        eval_mask_dir: if set, validation and test masks come from these files, e.g.
            NVIDIA's 12,000 irregular test masks as in the paper: each is resized to
            ``image_size`` (nearest neighbour) and bucketed by its measured hole ratio and
            border contact; ``val_masks_per_bucket`` of each bucket × split are kept.
        eval_mask_hole_value: file value that means hole in ``eval_mask_dir``: 0 (black,
            NVIDIA's convention) or 255.
        batch_size, num_workers, pin_memory: DataLoader settings (pinning only with CUDA).
        val_masks_per_bucket: N; validation and test sets hold 6 buckets × 2 border splits ×
            N items with fixed masks (with ``eval_mask_dir``: up to N per cell, plus up to N
            per split of masks outside every bucket).
        eval_seed: seed of the fixed evaluation masks.
        train_samples_per_epoch: repeat small sources to this many items per epoch (map-style
            sources; a shard epoch is always one pass).
        val_root: validation images for the flat sources (default: ``root``).
        test_split: split of test and predict sets (default: ``val_split``). Validation and
            test take disjoint, interleaved items of their source when they share it, each
            spread evenly over the whole source (so every class of an ImageFolder is used);
            a source too small for that is shared, with one line saying so.
        train_crop_scale: area range of the random training crop (random scales).
        train_photometric: random brightness, contrast, saturation and hue of training crops.
        seed: seed of the training samples' order, crops and masks (default: the run's
            ``seed_everything``). Every training draw is a pure function of (seed, epoch,
            index, rank) and the loader resumes at the checkpoint's step, so an interrupted
            and resumed run trains on exactly the batches of a straight one.
    """

    def __init__(
        self,
        source: str = "samples",
        root: str | None = None,
        train_split: str = "train",
        val_split: str = "val",
        image_size: PositiveInt = 256,
        mask_preset: str = "paper",
        mask_dir: str | None = None,
        eval_mask_dir: str | None = None,
        eval_mask_hole_value: Literal[0, 255] = 0,
        batch_size: PositiveInt = 6,
        num_workers: NonNegativeInt = 4,
        val_masks_per_bucket: PositiveInt = 2,
        eval_seed: int = 0,
        pin_memory: bool = True,
        train_samples_per_epoch: PositiveInt | None = None,
        val_root: str | None = None,
        test_split: str | None = None,
        train_crop_scale: tuple[AreaFraction, AreaFraction] = TRAIN_CROP_SCALE,
        seed: int | None = None,
        train_photometric: Photometric = NO_PHOTOMETRIC,
    ) -> None:
        super().__init__()
        if source not in SOURCE_KINDS:
            raise DataSourceError(
                f"unknown image source {source!r}; valid: {', '.join(SOURCE_KINDS)}"
            )
        make_mask_generator(mask_preset)  # an unknown preset fails now, not in a worker
        self.save_hyperparameters(ignore=["train_photometric"])
        self.train_photometric = train_photometric
        # As plain numbers: checkpoints hold the hyper-parameters and must stay loadable with
        # torch.load(weights_only=True), which refuses pickled classes.
        self.hparams["train_photometric"] = asdict(train_photometric)
        self.train_set: Dataset | None = None
        self.val_set: EvalDataset | None = None
        self.test_set: EvalDataset | None = None
        self._file_masks: FileEvalMasks | None = None

    @property
    def eval_length(self) -> int:
        """Items in the validation and test sets."""
        if self.hparams.eval_mask_dir:
            return len(self._eval_masks())
        return NUM_BUCKETS * NUM_BORDER_SPLITS * self.hparams.val_masks_per_bucket

    def _eval_masks(self) -> EvalMaskFn:
        hp = self.hparams
        if not hp.eval_mask_dir:
            return GeneratedEvalMasks(hp.eval_seed, hp.image_size, hp.mask_preset)
        if self._file_masks is None:  # read once, for validation and test
            self._file_masks = FileEvalMasks(
                hp.eval_mask_dir, hp.image_size, hp.eval_mask_hole_value, hp.val_masks_per_bucket
            )
            rank_zero_info(f"evaluation masks: {self._file_masks.summary()}")
            if self._file_masks.polarity_warning:
                rank_zero_warn(f"{self._file_masks.polarity_warning} (data.eval_mask_hole_value)")
        return self._file_masks

    def _rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    @property
    def seed(self) -> int:
        """``seed``, else the seed ``seed_everything`` set, else 0."""
        if self.hparams.seed is not None:
            return self.hparams.seed
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def _batches_done(self) -> int:
        """Training batches this rank has trained on since the start of training:
        Lightning's own batch counter, which checkpoints hold. Not ``global_step ×
        accumulate_grad_batches``: a checkpoint may be taken inside an accumulation group
        (a crash), and an epoch whose length is not a multiple of the accumulation count
        ends with a shorter group (Lightning steps on an epoch's last batch)."""
        trainer = self.trainer
        if trainer is None:
            return 0
        return trainer.fit_loop.epoch_loop.batch_progress.total.processed

    def _epoch_batches(self, batches: int) -> int | None:
        """Batches of a training epoch of ``batches`` batches as Lightning runs it
        (``limit_train_batches`` applied); None outside a trainer."""
        if self.trainer is None:
            return None
        return _parse_num_batches(RunningStage.TRAINING, batches, self.trainer.limit_train_batches)

    def _mask_fn(self) -> MaskFn:
        if self.hparams.mask_dir:
            return MaskFileSource(self.hparams.mask_dir)
        return make_mask_generator(self.hparams.mask_preset)

    def _test_shares_val_source(self) -> bool:
        hp = self.hparams
        return hp.source in FLAT_SOURCES or (hp.test_split or hp.val_split) == hp.val_split

    def _eval_set(self, split: str, slot: int) -> EvalDataset:
        """Evaluation set ``slot`` of ``_EVAL_SLOTS`` of ``split``: validation is slot 0;
        test is slot 1 when it shares validation's source, so the two take disjoint images."""
        hp = self.hparams
        root = (hp.val_root or hp.root) if hp.source in FLAT_SOURCES else hp.root
        size = hp.image_size
        dataset = EvalDataset(
            open_image_source(hp.source, root, split),
            eval_transform(size),
            size,
            self.eval_length,
            self._eval_masks(),
            slot,
            _EVAL_SLOTS,
        )
        if slot == 1 and _EVAL_SLOTS * dataset.length > len(dataset.reader):
            rank_zero_info(
                f"test and validation share images: split {split!r} has "
                f"{len(dataset.reader)} images, fewer than the {_EVAL_SLOTS * dataset.length} two "
                "disjoint sets need; name another split with data.test_split"
            )
        return dataset

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
                    hp.root,
                    hp.train_split,
                    transform,
                    self._mask_fn(),
                    hp.image_size,
                    self._rank(),
                    self.seed,
                )
            else:
                self.train_set = TrainDataset(
                    open_image_source(hp.source, hp.root, hp.train_split),
                    transform,
                    self._mask_fn(),
                    hp.image_size,
                    hp.train_samples_per_epoch,
                    self._rank(),
                    self.seed,
                )
        if stage in ("fit", "validate", None):
            self.val_set = self._eval_set(hp.val_split, 0)
        if stage in ("test", "predict", None):
            slot = 1 if self._test_shares_val_source() else 0
            self.test_set = self._eval_set(hp.test_split or hp.val_split, slot)

    def _loader_kwargs(self) -> dict:
        workers = self.hparams.num_workers
        return dict(
            batch_size=self.hparams.batch_size,
            num_workers=workers,
            pin_memory=self.hparams.pin_memory and torch.cuda.is_available(),
            persistent_workers=workers > 0,
            worker_init_fn=ignore_stop_signals if workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        if self.hparams.source == "shards":
            from pconv.data.shards import ResumableStreamingLoader

            # Lightning saves this loader's state in checkpoints, so a resumed run continues
            # the epoch where it stopped.
            return ResumableStreamingLoader(
                self.train_set, self._batches_done, **self._loader_kwargs()
            )
        # The sampler drops a ragged last batch: it keeps BatchNorm away from batches of one.
        kwargs = (self.trainer and self.trainer.distributed_sampler_kwargs) or {}
        sampler = EpochSampler(
            len(self.train_set),
            self.hparams.batch_size,
            self.seed,
            self._batches_done,
            lambda: self._epoch_batches(sampler.batches),
            num_replicas=kwargs.get("num_replicas", 1),
            rank=kwargs.get("rank", 0),
        )
        return DataLoader(self.train_set, sampler=sampler, **self._loader_kwargs())

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
