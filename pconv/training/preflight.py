"""Checks of a parsed ``pconv fit|validate|test|predict`` config, run before anything exists.

:func:`check_config` looks at what the config alone can tell, before a logger, a W&B run, a
checkpoint, a ``config.yaml`` or a loader worker exists: the data source and its splits
(reading a few images of each), the image size against the network's depth, the mask preset
or mask folder (reading a few masks), the learning rates and loss weights (finite, in
range), the folders the run writes to (writable), and ``model.init_from`` and
``--ckpt_path`` (readable checkpoints holding the configured architecture). The first
problem found raises :class:`PreflightError`, one line naming the key, the value and what
to do; the CLI prints it and exits with status 2 having written nothing.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from pconv.data.datamodule import FLAT_SOURCES
from pconv.data.images import (
    DataSourceError,
    UnreadableImageError,
    scan_images,
)
from pconv.data.mask_files import MaskFileError, load_mask
from pconv.data.masks import MASK_PRESETS
from pconv.data.sources import open_image_source
from pconv.utils.files import check_writable
from pconv.weights.checkpoints import check_architecture, read_checkpoint
from pconv.weights.errors import CheckpointError, WeightsUnavailableError
from pconv.weights.load import read_architecture

#: Images (and masks) read per split: enough to tell a broken folder from a stray file.
SAMPLES_READ = 8
#: Sources whose ``root`` must be a folder, and those whose ``root`` is a file.
_FOLDER_SOURCES = ("imagefolder", "folder")
_SPLITS = {"fit": ("train_split", "val_split"), "validate": ("val_split",)}
#: The largest learning rate accepted: far above any that trains (the paper's is 2e-4), far
#: below what overflows float32 in an optimizer's step (Adam scales it by up to 1/(1-beta1)).
MAX_LR = 10.0
#: The largest loss weight accepted: far above the paper's (style: 120), far below what
#: overflows float32 once multiplied by a loss term.
MAX_LOSS_WEIGHT = 1e6
LR_ADVICE = "the paper uses 2e-4 (initial phase) and 5e-5 (fine-tuning)"
WEIGHT_ADVICE = "the paper's weights are valid 1, hole 6, perceptual 0.05, style 120, tv 0.1"
_LOSS_WEIGHTS = ("valid_weight", "hole_weight", "perceptual_weight", "style_weight", "tv_weight")


class PreflightError(ValueError):
    """A config value that cannot work; the message names the key and the value."""


def _get(config: Any, dotted: str, default: Any = None) -> Any:
    for key in dotted.split("."):
        if config is None:
            return default
        config = config.get(key) if hasattr(config, "get") else getattr(config, key, None)
    return default if config is None else config


def _check_path(key: str, value: str, want_dir: bool, what: str) -> None:
    path = Path(value).expanduser()
    if not path.exists():
        raise PreflightError(f"{key}={value} does not exist; set {key} to {what}")
    if want_dir and not path.is_dir():
        raise PreflightError(f"{key}={value} is a file, not a folder; set {key} to {what}")
    if not want_dir and path.is_dir():
        raise PreflightError(f"{key}={value} is a folder, not a file; set {key} to {what}")


def _read_some(source: Any, what: str) -> None:
    """Raise unless one of the first SAMPLES_READ images of ``source`` decodes."""
    reasons = []
    for index in range(min(len(source), SAMPLES_READ)):
        try:
            source.load(index)
            return
        except UnreadableImageError as error:
            reasons.append(f"{error.path}: {error.reason}")
    raise PreflightError(
        f"none of the first {len(reasons)} images of {what} can be read (e.g. {reasons[0]}); "
        "replace the files or point the data keys at readable images"
    )


def check_data(data: Any, stage: str) -> None:
    """The source, its root and its splits for ``stage``, the image size and the masks."""
    source, root = _get(data, "source"), _get(data, "root")
    if source in _FOLDER_SOURCES and root is not None:
        _check_path("data.root", root, True, "a folder of images")
    if source == "filelist" and root is not None:
        _check_path("data.root", root, False, "a text file with one image path per line")
    if source == "shards" and root is not None and "://" not in root:
        _check_path("data.root", root, True, "a folder of LitData shards (`pconv prepare`)")
    split_keys = _SPLITS.get(stage, ("test_split",))
    splits = {_get(data, key) or _get(data, "val_split") for key in split_keys}
    for split in sorted(splits):
        what = f"data.source={source} split {split!r}" if source != "samples" else "the samples"
        try:
            images = open_image_source(source, root, split)
        except DataSourceError as error:
            raise PreflightError(f"data: {error}") from None
        if source != "shards":  # shards were decoded once when prepared
            _read_some(images, what)
        # Shards stream with drop_last: fewer images than a batch would train on nothing.
        batch_size = _get(data, "batch_size") or 1
        is_train = stage == "fit" and split == _get(data, "train_split")
        if source == "shards" and is_train and len(images) < batch_size:
            raise PreflightError(
                f"data.batch_size={batch_size} is more than the {len(images)} images of "
                f"{what}; lower data.batch_size or prepare more images"
            )
    check_val_root(data, stage)
    low, high = _get(data, "train_crop_scale", (0, 1))
    if low > high:
        raise PreflightError(
            f"data.train_crop_scale=[{low}, {high}] runs from high to low; give the smaller "
            "area fraction first, e.g. [0.25, 1.0]"
        )
    check_masks(data)


def check_val_root(data: Any, stage: str) -> None:
    """A flat source (``folder``, ``filelist``) has no splits: training on one needs
    ``data.val_root``, or validation would score the very images it trains on. Refused (not
    split off silently) so that the held-out set is the user's choice; ``pconv prepare``
    splits a folder into seeded, disjoint train and val shards."""
    source, val_root = _get(data, "source"), _get(data, "val_root")
    if source not in FLAT_SOURCES:
        return
    if val_root is not None:
        if source == "folder":
            _check_path("data.val_root", val_root, True, "a folder of images")
        else:
            _check_path("data.val_root", val_root, False, "a text file of image paths")
        return
    if stage == "fit":
        root = _get(data, "root")
        raise PreflightError(
            f"data.source={source} has no data.val_root, so validation would score the "
            "training images; pass --data.val_root=<held-out images>, or split the images "
            f"once with `pconv prepare {source} {root} -o SHARDS` (seeded, disjoint train and "
            "val) and train with --data.source=shards --data.root=SHARDS"
        )


def check_masks(data: Any) -> None:
    preset, mask_dir = _get(data, "mask_preset"), _get(data, "mask_dir")
    if preset not in MASK_PRESETS:
        raise PreflightError(
            f"data.mask_preset={preset} is not a mask preset; use one of "
            f"{', '.join(sorted(MASK_PRESETS))}"
        )
    if mask_dir is None:
        return
    _check_path("data.mask_dir", mask_dir, True, "a folder of mask images (black = hole)")
    paths = scan_images(mask_dir)
    if not paths:
        raise PreflightError(
            f"data.mask_dir={mask_dir} holds no image files; put mask PNGs (black = hole) there"
        )
    reasons = []
    for path in paths[:SAMPLES_READ]:
        try:
            load_mask(path)
            return
        except MaskFileError as error:
            reasons.append(str(error))
    example = f" (e.g. {reasons[0]})" if reasons else ""
    raise PreflightError(
        f"data.mask_dir={mask_dir} holds no readable mask among its first {len(reasons)} "
        f"files{example}; put mask PNGs (black = hole) there"
    )


def check_model(model: Any, image_size: int | None) -> None:
    """The image size against the network's depth and the learning rate."""
    levels = _get(model, "net.init_args.levels")
    if levels is not None and image_size is not None and image_size % 2**levels:
        multiple = 2**levels
        raise PreflightError(
            f"data.image_size={image_size} is not a multiple of 2**model.net.levels = {multiple} "
            f"(levels={levels}); use e.g. {max(multiple, image_size // multiple * multiple)} or "
            "fewer levels"
        )
    lr = _get(model, "optimizer.init_args.lr")
    if isinstance(lr, (int, float)) and not (math.isfinite(lr) and lr > 0):
        raise PreflightError(
            f"model.optimizer.init_args.lr={lr} is not a positive finite number; {LR_ADVICE}"
        )
    for part in ("optimizer", "scheduler"):
        for name, value in (_get(model, f"{part}.init_args") or {}).items():
            if "lr" in name:
                _check_number(f"model.{part}.init_args.{name}", value, MAX_LR, LR_ADVICE)
    for name in _LOSS_WEIGHTS:
        key = f"model.loss.init_args.{name}"
        _check_number(key, _get(model, f"loss.init_args.{name}"), MAX_LOSS_WEIGHT, WEIGHT_ADVICE)


def _check_number(key: str, value: Any, largest: float, advice: str) -> None:
    """A number (or each number of a list, e.g. per-group lrs) is finite, >= 0 and at most
    ``largest``; anything else (None, a string) is left to the parser."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for number in values:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            continue
        if not (math.isfinite(number) and 0 <= number <= largest):
            raise PreflightError(
                f"{key}={value} is not a finite number from 0 to {largest:g}; {advice}"
            )


def check_checkpoint(key: str, path: str, model: Any) -> dict[str, Any]:
    """The checkpoint at ``path`` (for ``key``), read, holding the configured network."""
    try:
        checkpoint = read_checkpoint(path)
    except (FileNotFoundError, CheckpointError) as error:
        raise PreflightError(f"{key}: {' '.join(str(error).split())}") from None
    check_architecture(checkpoint.get("hyper_parameters", {}).get("net"), _get(model, "net"), path)
    return checkpoint


def check_resume_data(checkpoint: dict[str, Any], data: Any) -> None:
    """A checkpoint's shard-loader position resumes exactly with the configured
    ``data.num_workers`` (:func:`pconv.data.shards.check_stream_state`)."""
    if _get(data, "source") != "shards":
        return
    from pconv.data.shards import check_stream_state  # litdata: shard runs only

    fit_loop = (checkpoint.get("loops") or {}).get("fit_loop") or {}
    for state in (fit_loop.get("state_dict") or {}).get("combined_loader", []):
        try:
            check_stream_state(state, _get(data, "num_workers"))
        except DataSourceError as error:
            raise PreflightError(f"--ckpt_path: {error}") from None


def check_init_from(spec: str, model: Any) -> None:
    """``model.init_from`` (any weights spec: checkpoint, safetensors, ``hf://``, URL) is
    readable and holds the configured network."""
    try:
        saved = read_architecture(spec)
    except (FileNotFoundError, CheckpointError, WeightsUnavailableError) as error:
        raise PreflightError(f"model.init_from: {' '.join(str(error).split())}") from None
    check_architecture(saved, _get(model, "net"), spec)


def check_accelerator(trainer: Any) -> None:
    """``trainer.accelerator``: a name Lightning knows, of a device this machine has."""
    accelerator = _get(trainer, "accelerator", "auto")
    if not isinstance(accelerator, str) or accelerator == "auto":
        return
    from lightning.pytorch.accelerators import AcceleratorRegistry

    known = ("auto", "gpu", *AcceleratorRegistry.available_accelerators())
    if accelerator not in known:
        raise PreflightError(
            f"trainer.accelerator={accelerator} is not an accelerator; use one of "
            f"{', '.join(sorted(set(known)))}"
        )
    name = "cuda" if accelerator == "gpu" else accelerator
    try:
        available = AcceleratorRegistry.get(name).is_available()
    except ImportError:  # e.g. tpu without torch_xla
        available = False
    if not available:
        raise PreflightError(
            f"trainer.accelerator={accelerator}: this machine has no such device; use "
            "trainer.accelerator=cpu (or auto)"
        )


def check_trainer(trainer: Any) -> None:
    """The accelerator, and callbacks that need a logger when ``trainer.logger`` is off."""
    check_accelerator(trainer)
    if _get(trainer, "logger") not in (False, []):
        return
    for callback in _get(trainer, "callbacks", []):
        name = str(_get(callback, "class_path", type(callback).__name__)).rsplit(".", 1)[-1]
        if name == "LearningRateMonitor":
            raise PreflightError(
                "trainer.callbacks has a LearningRateMonitor but trainer.logger is false; "
                "set a logger (e.g. WANDB_MODE=disabled keeps W&B quiet) or remove the callback"
            )


def check_predictions(writer: Any) -> None:
    """``pconv predict`` writes ``NNNNNN.png`` into ``prediction_writer.output_dir``: refuse
    a folder that holds such files already unless ``prediction_writer.overwrite``."""
    folder = Path(_get(writer, "output_dir", "predictions")).expanduser()
    if folder.exists() and not folder.is_dir():
        raise PreflightError(f"prediction_writer.output_dir={folder} is a file; set it to a folder")
    if _get(writer, "overwrite", False) or not folder.is_dir():
        return
    existing = sorted(p.name for p in folder.glob("[0-9]" * 6 + ".png"))
    if existing:
        raise PreflightError(
            f"prediction_writer.output_dir={folder} already holds {len(existing)} "
            f"prediction(s) ({', '.join(existing[:2])}{', ...' * (len(existing) > 2)}); pass "
            "--prediction_writer.overwrite=true to replace them, or another "
            "--prediction_writer.output_dir"
        )


def _logger_dirs(logger: Any) -> list[tuple[str, Any]]:
    """``(key, folder)`` of each configured logger's ``save_dir``."""
    loggers = logger if isinstance(logger, list) else [logger]
    dirs = []
    for index, each in enumerate(loggers):
        key = "trainer.logger" if len(loggers) == 1 else f"trainer.logger[{index}]"
        folder = _get(each, "init_args.save_dir") if hasattr(each, "get") else None
        if folder is not None:
            dirs.append((f"{key}.init_args.save_dir", folder))
    return dirs


def check_output_folder(key: str, folder: str) -> None:
    """``folder`` exists and can take new files, or can be made where the nearest existing
    folder above it is writable (probed with :func:`pconv.utils.files.check_writable`: what
    the run would meet, permissions, a read-only file system, a root-squashed share)."""
    path = Path(folder).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise PreflightError(
            f"{key}={folder} cannot be a folder: {existing} is a file; choose another folder"
        )
    try:
        check_writable(existing)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else type(error).__name__
        raise PreflightError(
            f"{key}={folder} is not writable ({existing}: {reason}); choose a folder you can "
            "write to, or change its permissions"
        ) from None


def check_output_folders(config: Any, stage: str) -> None:
    """Every folder the run writes to is writable: the trainer's root, the loggers', the
    checkpoints' (fit) and the predictions' (predict)."""
    # Not the working folder when no root is given: outputs may all be configured elsewhere.
    folders = [("trainer.default_root_dir", _get(config, "trainer.default_root_dir"))]
    folders += _logger_dirs(_get(config, "trainer.logger"))
    if stage == "fit":
        folders += [
            (f"{k}.dirpath", _get(config, f"{k}.dirpath")) for k in ("checkpoint", "interrupt")
        ]
    if stage == "predict":
        folders.append(
            ("prediction_writer.output_dir", _get(config, "prediction_writer.output_dir"))
        )
    for key, folder in folders:
        if folder is not None:
            check_output_folder(key, str(folder))


def check_config(config: Any, stage: str) -> None:
    """Every check above on the ``stage`` sub-config; raises :class:`PreflightError`.

    ``--ckpt_path`` is checked by the CLI with :func:`check_checkpoint` when it reads the
    checkpoint's hyper-parameters, before this runs."""
    data, model = _get(config, "data"), _get(config, "model")
    check_trainer(_get(config, "trainer"))
    if stage == "predict":
        check_predictions(_get(config, "prediction_writer"))
    check_model(model, _get(data, "image_size"))
    _check_number("finetune.lr", _get(config, "finetune.lr"), MAX_LR, LR_ADVICE)
    check_output_folders(config, stage)
    check_data(data, stage)
    if _get(model, "init_from"):
        check_init_from(_get(model, "init_from"), model)
