"""ProgressLog: when its lines come, and what they say, driven step by step with a stand-in
trainer and clock."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from pconv.training.callbacks import console
from pconv.training.callbacks.console import ProgressLog

BATCH = 4
TOTAL = 1000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def drive(log: ProgressLog, clock: Clock, batches: int, accumulate: int = 1, s_per_batch=1.0):
    """``batches`` training batches of BATCH images, loss = the batch number, one optimizer
    step every ``accumulate`` batches; returns the trainer."""
    optimizer = SimpleNamespace(param_groups=[{"lr": 2e-4}])
    trainer = SimpleNamespace(
        global_step=0,
        is_global_zero=True,
        world_size=2,
        accumulate_grad_batches=accumulate,
        estimated_stepping_batches=TOTAL,
        current_epoch=0,
        optimizers=[optimizer],
        sanity_checking=False,
    )
    log.on_train_start(trainer, None)
    for index in range(batches):
        clock.now += s_per_batch
        if (index + 1) % accumulate == 0:
            trainer.global_step += 1
        # Lightning hands the loss over divided by the accumulation count.
        outputs = {"loss": torch.tensor(float(index + 1) / accumulate)}
        log.on_train_batch_end(trainer, None, outputs, {"image": torch.zeros(BATCH)}, index)
    return trainer


LINE = re.compile(
    r"step (\d+)/1000  epoch 0  ([\d.]+) img/s  loss ([\d.]+)  lr 2\.0e-04  ETA (\d+):(\d\d):(\d\d)"
)


def lines(capsys) -> list[re.Match]:
    out = capsys.readouterr().out.splitlines()
    matches = [LINE.fullmatch(line) for line in out]
    assert all(matches), out
    return matches


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(console.time, "monotonic", clock)
    return clock


def test_first_step_then_every_n_steps(clock, capsys):
    drive(ProgressLog(every_n_steps=50, every_s=1e9, when="always"), clock, 120)
    found = lines(capsys)
    assert [int(m[1]) for m in found] == [1, 51, 101]
    # Two ranks of BATCH images each second; the mean loss of the steps since the last line.
    assert [float(m[2]) for m in found] == [2 * BATCH] * 3
    assert [float(m[3]) for m in found] == [1.0, sum(range(2, 52)) / 50, sum(range(52, 102)) / 50]
    hours, minutes, seconds = (int(x) for x in found[-1].groups()[3:])
    assert hours * 3600 + minutes * 60 + seconds == TOTAL - 101


def test_every_s_when_steps_are_slow(clock, capsys):
    drive(ProgressLog(every_n_steps=50, every_s=25, when="always"), clock, 60, s_per_batch=10)
    assert [int(m[1]) for m in lines(capsys)] == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28] + list(
        range(31, 61, 3)
    )


def test_accumulation_counts_optimizer_steps_and_whole_losses(clock, capsys):
    drive(ProgressLog(every_n_steps=2, every_s=1e9, when="always"), clock, 8, accumulate=2)
    found = lines(capsys)
    assert [int(m[1]) for m in found] == [1, 3]
    assert [float(m[3]) for m in found] == [1.5, 4.5]  # batches 1-2, then batches 3-6


def test_auto_is_silent_on_a_terminal(clock, capsys, monkeypatch):
    monkeypatch.setattr(console.sys.stdout, "isatty", lambda: True)
    drive(ProgressLog(every_n_steps=1, when="auto"), clock, 5)
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(console.sys.stdout, "isatty", lambda: False)
    drive(ProgressLog(every_n_steps=1, when="auto"), clock, 5)
    assert len(lines(capsys)) == 5
