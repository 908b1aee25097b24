"""LightningCLI for :class:`InpaintingModule` and :class:`InpaintingDataModule`.

``pconv fit|validate|test|predict --config configs/<name>.yaml`` (also the ``lightning``
console script and ``python -m pconv``). Configs are read in jsonargparse's omegaconf mode,
so they may interpolate (``${data.image_size}``) and read the environment
(``${oc.env:IMAGENET_ROOT,/data/imagenet}``).

Besides ``trainer``, ``model`` and ``data``, the config has one key per built-in callback:
``checkpoint`` (BestAndLastCheckpoint: best ``val/psnr`` and ``last.ckpt``, the newest),
``interrupt`` (a checkpoint on Ctrl-C or a crash; the ``--ckpt_path`` that resumes it is printed),
``finetune`` (the fine-tune switch), ``image_grid`` (validation images),
``prediction_writer`` (``predict`` PNGs) and ``progress_log`` (plain progress lines every
``every_n_steps`` steps or ``every_s`` seconds when stdout is not a terminal).

Threads: torch uses the free cores less the loader workers (:mod:`pconv.utils.threads`);
``OMP_NUM_THREADS`` overrides.

W&B: ``fit --ckpt_path`` continues the W&B run of the checkpoint it resumes (each checkpoint
records its run id); a run started without one opens a new W&B run. Without ``WANDB_MODE``
set, a run with no W&B credentials (``WANDB_API_KEY`` or a netrc entry) or no route to the
server goes offline without prompting, and says at the end where its files are and how to
``wandb sync`` them.
"""

from __future__ import annotations

import importlib
import netrc
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import yaml
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

import pconv
from pconv.data.datamodule import InpaintingDataModule
from pconv.data.images import DataSourceError
from pconv.losses.vgg import WeightsUnavailableError
from pconv.training import preflight
from pconv.training.callbacks import (
    BestAndLastCheckpoint,
    FinetuneSwitch,
    InterruptCheckpoint,
    PredictionWriter,
    SkipReport,
    ValidationImageGrid,
)
from pconv.training.callbacks.console import ModelSummary, ProgressBar, ProgressLog
from pconv.training.checkpoint_io import AtomicCheckpointIO
from pconv.training.module import WANDB_RUN_ID_KEY, InpaintingModule, NonFiniteLossError
from pconv.utils.files import stray_temporaries
from pconv.utils.lock import FolderBusyError, lock_folder
from pconv.utils.notices import quiet_library_notices, quiet_wandb
from pconv.utils.threads import choose_threads
from pconv.weights.checkpoints import checkpoint_step, newest_checkpoint, read_checkpoint
from pconv.weights.errors import CheckpointError

WANDB_DEFAULT_URL = "https://api.wandb.ai"
#: Seconds to wait for the W&B server before going offline instead.
WANDB_CONNECT_TIMEOUT_S = 3.0
#: Exit codes: bad input (a path, a checkpoint, a data source) and a diverged run.
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 1


def wandb_offline_reason() -> str | None:
    """Why W&B cannot run online here (no credentials, server unreachable), or None."""
    url = urlparse(os.environ.get("WANDB_BASE_URL", WANDB_DEFAULT_URL))
    host = url.hostname or ""
    if not os.environ.get("WANDB_API_KEY"):
        try:
            credentials = netrc.netrc().authenticators(host)
        except (OSError, netrc.NetrcParseError):
            credentials = None
        if credentials is None:
            return "not logged in to W&B (no WANDB_API_KEY, no netrc entry)"
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
        socket.create_connection((host, port), timeout=WANDB_CONNECT_TIMEOUT_S).close()
    except OSError:
        return f"W&B server {host} is unreachable"
    return None


def configure_wandb_mode() -> None:
    """Set ``WANDB_MODE=offline`` when W&B cannot run online and the user chose no mode."""
    if os.environ.get("WANDB_MODE"):
        return
    reason = wandb_offline_reason()
    if reason:
        os.environ["WANDB_MODE"] = "offline"
        print(f"pconv: {reason}; W&B runs offline", file=sys.stderr)


def continue_wandb_run(trainer, run_id: str | None) -> None:
    """Point every W&B logger of ``trainer`` at ``run_id``, the run of the checkpoint being
    resumed, before the logger starts it: the resumed run's history continues that run
    instead of opening a new one. A different configured id (a new SLURM job's) gives way,
    in one line."""
    if not run_id:
        return
    for logger in trainer.loggers:
        if not isinstance(logger, WandbLogger):
            continue
        # WandbLogger keeps wandb.init's arguments, read when its run starts (in setup).
        configured = logger._wandb_init.get("id")
        if configured and configured != run_id and trainer.is_global_zero:
            print(
                f"pconv: continuing the checkpoint's W&B run {run_id}, not the configured id "
                f"{configured}; to log to a new run, start from the weights with --model.init_from",
                file=sys.stderr,
            )
        logger._wandb_init.update(id=run_id, resume="allow")
        logger._id = run_id


def run_dir(trainer) -> Path:
    """The folder of this run: ``<save_dir>/<name>/<version>`` of the first logger (where
    ModelCheckpoint puts ``checkpoints/``), or ``default_root_dir`` without a logger."""
    if not trainer.loggers:
        return Path(trainer.default_root_dir)
    logger = trainer.loggers[0]
    version = logger.version
    version = version if isinstance(version, str) else f"version_{version}"
    return Path(logger.save_dir or trainer.default_root_dir, str(logger.name), version)


class LoggedConfigCallback(SaveConfigCallback):
    """Writes the resolved config into the run's own folder (:func:`run_dir`):
    ``config.yaml`` for ``fit``, ``<stage>-config.yaml`` for the others, never over an
    existing file (a resumed run adds ``-1``, ``-2``...), and logs it with the pconv version
    to the loggers (W&B run config)."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            folder = run_dir(trainer)
            stage = getattr(stage, "value", stage)  # Lightning passes its TrainerFn enum
            name = self.config_filename if stage == "fit" else f"{stage}-{self.config_filename}"
            path, n = folder / name, 0
            while path.exists():
                n += 1
                path = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
            folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            partial.write_text(self.parser.dump(self.config, skip_none=False))
            partial.replace(path)  # atomic: a reader never sees half a config
            self.save_config(trainer, pl_module, stage)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)

    def save_config(self, trainer, pl_module, stage: str) -> None:
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        config["pconv_version"] = pconv.__version__
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})


#: ``--ckpt_path`` values that name no file.
_CKPT_KEYWORDS = ("last", "best", "hpc", "registry")
#: Characters of a parser error kept in its one line (Union errors list every subtype).
_MAX_ERROR_CHARS = 400
#: jsonargparse's error for a bad init argument of a class key such as ``model.net``: it lists
#: every subtype of the key's Union; the line keeps the argument and what is wrong with it.
_CLASS_ARG_ERROR = re.compile(
    r'Parser key "(?P<key>[^"]+)": Does not validate against any of the Union subtypes.*?'
    r'Problem with given class_path [^:]*: (?:Parser key "(?P<arg>[^"]+)": )?(?P<why>.*?)'
    r"(?: - Expected a |$)"
)


#: A number the command line cannot give as a float: jsonargparse reads ``inf`` and ``nan`` as
#: words, and reports them against the last type it tried (a tensor's "path").
_NOT_A_NUMBER = re.compile(
    r'Parser key "(?P<key>[^"]+)": .*?Parser key "(?P<arg>[^"]+)": - Expected a path but '
    r"(?P<value>[-+]?(?:inf|infinity|nan)) either not accessible",
    re.IGNORECASE,
)


class OneLineParser(LightningArgumentParser):
    """Reports a bad key or value in one line (``pconv: ...``, exit 2), with no usage text."""

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:
            return super().error(message, ex)
        line = " ".join(message.split())
        if match := _NOT_A_NUMBER.search(line):
            line = (
                f"{match['key']}.init_args.{match['arg']}={match['value']} is not a usable "
                "number; give a finite positive value such as 1e-4"
            )
        elif match := _CLASS_ARG_ERROR.search(line):
            key = f"{match['key']}.init_args.{match['arg']}" if match["arg"] else match["key"]
            line = f'Parser key "{key}": {match["why"]}'
        if len(line) > _MAX_ERROR_CHARS:
            line = line[:_MAX_ERROR_CHARS] + " ..."
        print(f"pconv: {line}; see `pconv <subcommand> --help`", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _leaves(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted key: value}`` of a nested dict."""
    if not isinstance(config, dict):
        return {prefix: config}
    leaves = {}
    for key, value in config.items():
        leaves.update(_leaves(value, f"{prefix}.{key}" if prefix else key))
    return leaves


def _resolve_class(path: str) -> Any:
    """The object a dotted class path names, or the path itself when it names none."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return path


def _same_value(key: str, before: Any, after: Any) -> bool:
    """Equal config values; class paths are equal when they name the same class
    (``pconv.nn.PConvUNet`` is ``pconv.nn.unet.PConvUNet``)."""
    if key.endswith("class_path") and isinstance(before, str) and isinstance(after, str):
        return _resolve_class(before) is _resolve_class(after)
    return before == after


class PConvCLI(LightningCLI):
    """Our LightningCLI: built-in callbacks under their own keys, W&B offline reporting,
    every config check before anything is created (:mod:`pconv.training.preflight`)."""

    #: The W&B run id of the checkpoint that ``fit`` resumes, if it has one.
    _resumed_wandb_id: str | None = None

    def _parse_ckpt_path(self) -> None:
        """Read ``--ckpt_path`` once, check it (a readable checkpoint of the configured
        architecture), and take the model's hyper-parameters from it as LightningCLI does,
        saying in one line which of the user's values it overrides."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        path = config.get("ckpt_path")
        if not path or path in _CKPT_KEYWORDS:
            return
        checkpoint = preflight.check_checkpoint("--ckpt_path", path, config.model)
        if subcommand == "fit":
            self._resumed_wandb_id = checkpoint.get(WANDB_RUN_ID_KEY)
            preflight.check_resume_data(checkpoint, config.data)
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        before = _leaves(config.model.as_dict())
        self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)
        after = _leaves(self.config[subcommand].model.as_dict())
        differ = [
            f"{key}={before[key]!r} -> {after[key]!r}"
            for key in sorted(before.keys() & after.keys())
            if not _same_value(key, before[key], after[key])
        ]
        if differ:
            print(
                f"pconv: --ckpt_path {path} resumes with the checkpoint's model values, not the "
                f"config's: model.{', model.'.join(differ)}; to train with other values, start a "
                "new run from its weights with --model.init_from",
                file=sys.stderr,
            )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(BestAndLastCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/psnr",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.auto_insert_metric_name": False,
                "checkpoint.filename": "best-step{step}-psnr{val/psnr:.2f}",
            }
        )
        parser.add_lightning_class_args(InterruptCheckpoint, "interrupt")
        parser.add_lightning_class_args(FinetuneSwitch, "finetune")
        parser.add_lightning_class_args(ValidationImageGrid, "image_grid")
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")
        parser.add_lightning_class_args(ModelSummary, "model_summary")
        parser.add_lightning_class_args(ProgressBar, "progress_bar")
        parser.add_lightning_class_args(ProgressLog, "progress_log")
        parser.add_lightning_class_args(SkipReport, "skip_report")

    def _prepare_subcommand_parser(self, klass, subcommand: str, **kwargs):
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand in ("validate", "test"):
            # Lightning's per-key metric table (~80 rows); the module prints the bucket table.
            parser.set_defaults(verbose=False)
        return parser

    def instantiate_trainer(self, **kwargs: Any):
        trainer = super().instantiate_trainer(**kwargs)
        # Every checkpoint written atomically, unless the config chose its own CheckpointIO.
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer

    def before_instantiate_classes(self) -> None:
        if self.subcommand is None:
            return
        # Every check before the logger, a checkpoint or a worker exists.
        config = self.config[self.subcommand]
        threads = choose_threads(config.data.num_workers)
        if threads is not None:
            torch.set_num_threads(threads)
        preflight.check_config(config, self.subcommand)
        # After parsing, so --help and --print_config say nothing about W&B.
        if "WandbLogger" in str(config.trainer.logger):
            configure_wandb_mode()
            quiet_wandb()

    def _report_wandb(self) -> None:
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and self.trainer.is_global_zero:
                run = logger.experiment
                if getattr(run, "offline", False):
                    run_dir = Path(run.dir).parent
                    print(
                        f"pconv: W&B run saved offline in {run_dir}; upload it with: "
                        f"wandb sync {run_dir}",
                        file=sys.stderr,
                    )

    def _checkpoint_folders(self) -> set[str]:
        """The folders ModelCheckpoint writes to (``<logger dir>/checkpoints``)."""
        trainer = self.trainer
        return {
            os.path.normpath(callback._ModelCheckpoint__resolve_ckpt_dir(trainer))
            for callback in trainer.checkpoint_callbacks
            if isinstance(callback, ModelCheckpoint)
        }

    def _newest_checkpoint(self) -> tuple[str | None, str]:
        """(the readable checkpoint with the highest global step among the ModelCheckpoint
        ``last`` files, the interrupt checkpoint and SLURM's ``hpc_ckpt_*`` in the run folder,
        or None; the folders searched). Lightning would take the newest file. An unreadable
        file (0 bytes, cut short) is skipped with one line naming it."""
        trainer = self.trainer
        # Lightning's requeue handler saves these in default_root_dir.
        candidates = {str(path) for path in Path(trainer.default_root_dir).glob("hpc_ckpt_*.ckpt")}
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint):
                candidates |= callback._find_last_checkpoints(trainer)
        folders = {str(Path(path).parent) for path in candidates} | self._checkpoint_folders()
        for callback in trainer.callbacks:
            if isinstance(callback, InterruptCheckpoint):
                folders |= {callback.dirpath} if callback.dirpath else set()
                candidates |= {str(Path(f, callback.filename + ".ckpt")) for f in folders}
        existing = sorted(path for path in candidates if Path(path).is_file())
        for path in existing:
            if checkpoint_step(path) < 0:
                try:
                    read_checkpoint(path)
                except (CheckpointError, FileNotFoundError) as error:
                    print(f"pconv: skipping {error}", file=sys.stderr)
        return newest_checkpoint(existing), ", ".join(sorted(folders)) or trainer.default_root_dir

    def _resume_from(self, subcommand: str, key: str, path: str) -> None:
        config = self.config[subcommand]
        checkpoint = preflight.check_checkpoint(key, path, config.model)
        if subcommand == "fit":
            preflight.check_resume_data(checkpoint, config.data)
            self._resumed_wandb_id = checkpoint.get(WANDB_RUN_ID_KEY)
        self.config_init[subcommand].ckpt_path = path

    def _resolve_last(self, subcommand: str) -> None:
        """``--ckpt_path last``: :meth:`_newest_checkpoint`, checked against the configured
        architecture. With no checkpoint at all, ``fit`` says in one line that it starts from
        step 0; the other subcommands refuse, rather than evaluate an untrained network."""
        path, where = self._newest_checkpoint()
        if path is not None:
            self._resume_from(subcommand, "--ckpt_path last", path)
            return
        self.config_init[subcommand].ckpt_path = None
        if subcommand != "fit":
            raise CheckpointError(
                f"--ckpt_path last: no readable checkpoint in {where}; pass --ckpt_path <file>"
            )
        print(
            f"pconv: --ckpt_path last: no readable checkpoint in {where}; training starts "
            "from step 0",
            file=sys.stderr,
        )

    def _resume_unasked(self) -> None:
        """A ``fit`` without ``--ckpt_path`` whose checkpoint folder already holds
        checkpoints (a requeued job, a command run again) resumes from the newest step and
        says so: a fresh start there would write over that work."""
        path, _ = self._newest_checkpoint()
        if path is None:
            return
        self._resume_from("fit", "checkpoint", path)
        print(
            f"pconv: {Path(path).parent} already holds this run's checkpoints; resuming from "
            f"{path} (step {checkpoint_step(path)}) with its weights, optimizer and learning "
            "rates, so model.optimizer values given now are not used; to train from scratch "
            "use another folder (trainer.default_root_dir or checkpoint.dirpath)",
            file=sys.stderr,
        )

    def _lock_checkpoint_folders(self) -> None:
        """Hold the checkpoint folders for this run: a second ``fit`` on them refuses."""
        if not self.trainer.is_global_zero:
            return
        for folder in sorted(self._checkpoint_folders()):
            try:
                self._locks.append(lock_folder(folder, ".pconv-fit.lock"))
            except FolderBusyError as error:
                raise CheckpointError(
                    f"checkpoint folder {error}, another `pconv fit` writing there; wait for "
                    "it to end, or give this run another folder (trainer.default_root_dir or "
                    "checkpoint.dirpath)"
                ) from None
            # Held: no save is under way there, so a temporary is a killed run's half file.
            stray = stray_temporaries(folder, ".ckpt")
            for path in stray:
                path.unlink(missing_ok=True)
            if stray:
                more = ", ..." if len(stray) > 1 else ""
                print(
                    f"pconv: removed {len(stray)} half-written checkpoint file(s) that a killed "
                    f"run left in {folder} ({stray[0].name}{more})",
                    file=sys.stderr,
                )

    def before_fit(self) -> None:
        self._locks: list = []
        self._lock_checkpoint_folders()
        ckpt_path = self.config_init.fit.get("ckpt_path")
        if ckpt_path == "last":
            self._resolve_last("fit")
        elif not ckpt_path:
            self._resume_unasked()
        continue_wandb_run(self.trainer, self._resumed_wandb_id)
        config = self.config.fit
        if (
            config.finetune.at_step == 0
            and not config.model.init_from
            and not self.config_init.fit.get("ckpt_path")
        ):
            raise CheckpointError(
                "finetune.at_step is 0 (fine-tuning from the first step) but model.init_from "
                "names no checkpoint; pass --model.init_from=<initial-phase checkpoint>"
            )

    def _before_evaluation(self, subcommand: str) -> None:
        if self.config_init[subcommand].get("ckpt_path") == "last":
            self._resolve_last(subcommand)

    def before_validate(self) -> None:
        self._before_evaluation("validate")

    def before_test(self) -> None:
        self._before_evaluation("test")

    def before_predict(self) -> None:
        self._before_evaluation("predict")

    def after_fit(self) -> None:
        for lock in self._locks:
            lock.close()
        self._report_wandb()

    def after_validate(self) -> None:
        self._report_wandb()

    def after_test(self) -> None:
        self._report_wandb()

    def after_predict(self) -> None:
        self._report_wandb()


#: Errors that mean the user's input (a path, a checkpoint, data, the config) is wrong.
BAD_INPUT_ERRORS = (
    FileNotFoundError,
    CheckpointError,
    WeightsUnavailableError,
    DataSourceError,
    MisconfigurationException,  # Lightning's word on an inconsistent config
    preflight.PreflightError,
)


def bad_input_cause(error: BaseException) -> BaseException | None:
    """The first of BAD_INPUT_ERRORS in ``error``'s chain of causes, or None."""
    while error is not None:
        if isinstance(error, BAD_INPUT_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None


def make_cli(args: list[str] | None, **kwargs: Any) -> PConvCLI:
    """:class:`PConvCLI` for our module and DataModule on ``args``, configs read in omegaconf
    mode; ``kwargs`` go to LightningCLI (e.g. ``run=False``)."""
    return PConvCLI(
        InpaintingModule,
        InpaintingDataModule,
        parser_kwargs={"parser_mode": "omegaconf"},
        # Optimizers come from model.optimizer: configure_optimizers builds the groups.
        auto_configure_optimizers=False,
        args=args,
        **kwargs,
    )


def run(args: list[str] | None = None) -> None:
    """Run the LightningCLI on ``args`` (``sys.argv[1:]`` when None).

    Bad input (missing checkpoint or data, unavailable VGG weights) exits with code 2 and one
    line; a NaN/Inf loss exits with code 1 naming the step and the loss term.
    """
    quiet_library_notices()
    try:
        make_cli(
            # The console scripts pass sys.argv[1:] on; LightningCLI warns when given both.
            None if args == sys.argv[1:] else args,
            save_config_callback=LoggedConfigCallback,
            parser_class=OneLineParser,
        )
    except NonFiniteLossError as error:
        print(f"pconv: {error}", file=sys.stderr)
        raise SystemExit(EXIT_DIVERGED) from None
    except BAD_INPUT_ERRORS as error:
        print(f"pconv: {error}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except ValueError as error:
        # jsonargparse wraps errors raised while it builds model.net/model.loss (e.g. VGG
        # weights that cannot be had offline) in a ValueError listing every Union subtype.
        cause = bad_input_cause(error)
        if cause is None:
            raise
        print(f"pconv: {cause}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
