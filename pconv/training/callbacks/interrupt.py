"""A resumable checkpoint when training stops on Ctrl-C, SIGTERM or an exception, and SLURM's
requeue signal taken at an optimizer-step boundary."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from pconv.training.module import NonFiniteLossError
from pconv.weights.checkpoints import checkpoint_step

#: Signals that stop training after the current optimizer step (Ctrl-C, a scheduler's stop).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(SystemExit):
    """Training stopped on a signal at an optimizer-step boundary; the exit status is the
    shell's for that signal (130 for SIGINT, 143 for SIGTERM), so that a scheduler sees the
    job did not finish."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


class InterruptCheckpoint(OnExceptionCheckpoint):
    """Lightning's ``OnExceptionCheckpoint``, saving ``<dirpath>/<filename>.ckpt`` and
    printing the ``--ckpt_path`` that resumes from it.

    During training, Ctrl-C (SIGINT) or SIGTERM does not stop the run where it lands: the
    current optimizer step (the whole accumulation group) finishes, then the checkpoint is
    saved and training stops with exit status 128 + the signal number (130, 143). A half-done
    step would be saved with BatchNorm statistics of a batch the step never took, and resume
    differently from a straight run. A second signal stops at once, saving nothing. Under
    DDP every rank stops at the same step (one all-reduce of a flag per optimizer step).

    Under SLURM with auto-requeue, Lightning's handler of the requeue signal (SIGUSR1, sent
    before the time limit or a pre-emption) saves ``hpc_ckpt_<n>.ckpt`` and requeues the job
    wherever the signal lands, mid-step included. Here it is held back the same way: the
    step finishes, then Lightning's handler runs (every rank at the same step) and training
    goes on until the job ends, so the requeued job resumes exactly.

    ``dirpath`` defaults to the ModelCheckpoint's directory, known once training starts.
    Set it (and ``checkpoint.dirpath``) explicitly for ``--ckpt_path last`` to consider this
    file too (the newest of it and ``last.ckpt`` wins), e.g. for requeued cluster jobs.

    It saves only progress: optimizer steps taken since this run started or last saved a
    checkpoint. A failed start, or a stop right after a save, writes and advertises nothing,
    and an existing file holding as many steps or more is never replaced. It saves nothing
    when the loss became NaN/Inf: those weights are useless, and the last regular checkpoint
    is the one to resume from. It removes its file after a run that ends normally, unless
    the file holds a later step than the run reached.
    """

    def __init__(self, dirpath: str | None = None, filename: str = "interrupted") -> None:
        # The parent requires a directory; ours is resolved once the trainer knows it.
        super().__init__(dirpath or "", filename)
        self.dirpath = dirpath
        #: The step of the newest checkpoint of this run (its start step at first); None
        #: until training starts.
        self.saved_step: int | None = None
        #: The first stop signal received, None before; a second one aborts.
        self.stop_signal: int | None = None
        self._aborted = False
        self._previous_handlers: dict[int, object] = {}
        #: SLURM's requeue signal and Lightning's handler of it, when auto-requeue is on.
        self._requeue: tuple[int, object] | None = None
        self.requeue_pending = False

    @property
    def ckpt_path(self) -> str:
        # "" is skipped by Lightning's search for the last checkpoint.
        return super().ckpt_path if self.dirpath else ""

    def _resolve(self, trainer: L.Trainer) -> None:
        if self.dirpath is None:
            checkpoint = trainer.checkpoint_callback
            self.dirpath = (checkpoint and checkpoint.dirpath) or trainer.default_root_dir

    def _on_signal(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.stop_signal is None:
            self.stop_signal = signum
            # os.write, not print: a handler may run inside another write to stderr.
            line = (
                f"pconv: {name}: stopping after the current optimizer step, then saving "
                f"{self.filename}.ckpt; send {name} again to stop at once without saving\n"
            )
            os.write(2, line.encode())
            return
        self._aborted = True
        self._restore_handlers()
        raise KeyboardInterrupt

    def _on_requeue_signal(self, signum: int, frame) -> None:
        self.requeue_pending = True
        name = signal.Signals(signum).name
        os.write(2, f"pconv: {name}: requeueing after the current optimizer step\n".encode())

    def _install_handlers(self, trainer: L.Trainer) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal)
        environment = trainer._accelerator_connector.cluster_environment
        if isinstance(environment, SLURMEnvironment) and environment.auto_requeue:
            signum = environment.requeue_signal or signal.SIGUSR1
            handler = signal.getsignal(signum)  # Lightning's, set before training starts
            if callable(handler):
                self._previous_handlers[signum] = handler
                self._requeue = (signum, handler)
                signal.signal(signum, self._on_requeue_signal)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def on_train_start(self, trainer: L.Trainer, *_) -> None:
        self._resolve(trainer)
        self.saved_step = trainer.global_step
        self.stop_signal, self._aborted, self.requeue_pending = None, False, False
        self._install_handlers(trainer)

    def on_train_end(self, trainer: L.Trainer, *_) -> None:
        self._restore_handlers()

    def on_save_checkpoint(self, trainer: L.Trainer, *_) -> None:
        self.saved_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, *_) -> None:
        if trainer.fit_loop.epoch_loop._should_accumulate():
            return  # inside an accumulation group: its optimizer step is still to come
        stop, requeue = self.stop_signal is not None, self.requeue_pending
        if trainer.world_size > 1:  # one all-reduce for both flags: any rank's signal counts
            flags = torch.tensor(
                [stop, requeue], dtype=torch.int32, device=trainer.strategy.root_device
            )
            stop, requeue = (trainer.strategy.reduce(flags, reduce_op="sum") > 0).tolist()
        if requeue and self._requeue is not None:
            self.requeue_pending = False
            signum, handler = self._requeue
            handler(signum, None)  # Lightning saves hpc_ckpt_<n>.ckpt and requeues the job
        if not stop:
            return
        if not self._save(trainer):
            rank_zero_info(
                f"Stopped at step {trainer.global_step}, the step of the newest checkpoint; "
                "resume with --ckpt_path last"
            )
        self._restore_handlers()
        raise TrainingStopped(self.stop_signal or signal.SIGTERM)

    def _save(self, trainer: L.Trainer) -> bool:
        """Save the checkpoint if this run made progress since its last one, and say how
        to resume; whether it saved."""
        if self.saved_step is None or trainer.global_step <= self.saved_step:
            return False  # no progress to save
        self._resolve(trainer)
        existing = Path(self.ckpt_path)
        if existing.is_file() and checkpoint_step(existing) >= trainer.global_step:
            return False
        # The full state, said explicitly: Lightning logs a notice when weights_only is unset.
        trainer.save_checkpoint(self.ckpt_path, weights_only=False)
        rank_zero_info(
            f"Saved {self.ckpt_path} at step {trainer.global_step}; resume with "
            f"--ckpt_path {self.ckpt_path}"
        )
        return True

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, error: BaseException):
        self._restore_handlers()
        if isinstance(error, NonFiniteLossError | TrainingStopped) or self._aborted:
            return  # useless weights; already saved; a second signal: stop without saving
        self._save(trainer)

    def teardown(self, trainer: L.Trainer, *args, **kwargs) -> None:
        self._restore_handlers()
        # Only a file this run has overtaken: never one holding a later step (another run's).
        if self.dirpath and checkpoint_step(self.ckpt_path) <= trainer.global_step:
            super().teardown(trainer, *args, **kwargs)
