"""LightningCLI for :class:`InpaintingModule` and :class:`InpaintingDataModule`.

``pconv fit|validate|test|predict --config configs/<name>.yaml`` (also the ``lightning``
console script and ``python -m pconv``). Configs are read in jsonargparse's omegaconf mode,
so they may interpolate (``${data.image_size}``) and read the environment
(``${oc.env:IMAGENET_ROOT,/data/imagenet}``).

Besides ``trainer``, ``model`` and ``data``, the config has one key per built-in callback:
``checkpoint`` (ModelCheckpoint: best ``val/psnr`` and ``last.ckpt``), ``interrupt`` (a
checkpoint on Ctrl-C or a crash; the ``--ckpt_path`` that resumes it is printed),
``finetune`` (the fine-tune switch), ``image_grid`` (validation images) and
``prediction_writer`` (``predict`` PNGs).

W&B: without ``WANDB_MODE`` set, a run with no W&B credentials (``WANDB_API_KEY`` or a netrc
entry) or no route to the server goes offline without prompting, and says at the end where
its files are and how to ``wandb sync`` them.
"""

from __future__ import annotations

import netrc
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

import pconv
from pconv.callbacks import (
    FinetuneSwitch,
    InterruptCheckpoint,
    PredictionWriter,
    ValidationImageGrid,
)
from pconv.callbacks.console import ModelSummary, ProgressBar
from pconv.data.datamodule import InpaintingDataModule
from pconv.data.images import DataSourceError
from pconv.losses.vgg import WeightsUnavailableError
from pconv.module import InpaintingModule, NonFiniteLossError
from pconv.notices import quiet_library_notices, quiet_wandb
from pconv.weights import CheckpointError

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


class LoggedConfigCallback(SaveConfigCallback):
    """Writes ``config.yaml`` to the log directory (overwriting: W&B runs share one) and
    logs the whole config, with the pconv version, to the logger (W&B run config)."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        config["pconv_version"] = pconv.__version__
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})


class PConvCLI(LightningCLI):
    """Our LightningCLI: built-in callbacks under their own keys, W&B offline reporting."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
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

    def _prepare_subcommand_parser(self, klass, subcommand: str, **kwargs):
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand in ("validate", "test"):
            # Lightning's per-key metric table (~80 rows); the module prints the bucket table.
            parser.set_defaults(verbose=False)
        return parser

    def before_instantiate_classes(self) -> None:
        # After parsing, so --help and --print_config say nothing about W&B.
        logger = self.config[self.subcommand].trainer.logger
        if "WandbLogger" in str(logger):
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

    def before_fit(self) -> None:
        config = self.config.fit
        if config.finetune.at_step == 0 and not config.model.init_from and not config.ckpt_path:
            raise CheckpointError(
                "finetune.at_step is 0 (fine-tuning from the first step) but model.init_from "
                "names no checkpoint; pass --model.init_from=<initial-phase checkpoint>"
            )

    def after_fit(self) -> None:
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
)


def bad_input_cause(error: BaseException) -> BaseException | None:
    """The first of BAD_INPUT_ERRORS in ``error``'s chain of causes, or None."""
    while error is not None:
        if isinstance(error, BAD_INPUT_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None


def run(args: list[str] | None = None) -> None:
    """Run the LightningCLI on ``args`` (``sys.argv[1:]`` when None).

    Bad input (missing checkpoint or data, unavailable VGG weights) exits with code 2 and one
    line; a NaN/Inf loss exits with code 1 naming the step and the loss term.
    """
    quiet_library_notices()
    try:
        PConvCLI(
            InpaintingModule,
            InpaintingDataModule,
            parser_kwargs={"parser_mode": "omegaconf"},
            save_config_callback=LoggedConfigCallback,
            save_config_kwargs={"overwrite": True},
            # Optimizers come from model.optimizer: configure_optimizers builds the groups.
            auto_configure_optimizers=False,
            # The console scripts pass sys.argv[1:] on; LightningCLI warns when given both.
            args=None if args == sys.argv[1:] else args,
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
