"""torch's thread count: the free cores less the loader workers, at least 1; a user's
OMP_NUM_THREADS stands (pconv.utils.threads), applied by `pconv fit` and `pconv evaluate`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import pconv.utils.threads as threads
from pconv.utils.threads import choose_threads

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("cores", "busy", "workers", "want"),
    [
        (2, 0, 1, 1),  # a quiet 2-core laptop with the demo's loader worker
        (2, 5, 1, 1),  # the same, busy with other jobs: never below one thread
        (16, 2, 4, 10),  # a workstation: 16 - 2 - 4
        (64, 0, 0, 64),
    ],
)
def test_free_cores_less_workers(cores, busy, workers, want):
    assert choose_threads(workers, cores=cores, busy=busy, environ={}) == want


def test_a_users_omp_num_threads_stands():
    assert choose_threads(1, cores=8, busy=0, environ={"OMP_NUM_THREADS": "3"}) is None
    assert choose_threads(1, cores=8, busy=0, environ={"OMP_NUM_THREADS": ""}) == 7


@pytest.fixture
def machine(monkeypatch):
    """Six usable cores, one busy; torch's count restored afterwards."""
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 6)
    monkeypatch.setattr(threads, "busy_cores", lambda: 1)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_fit_sets_the_count_from_its_loader_workers(machine, monkeypatch, capsys):
    from pconv.training.cli import run

    monkeypatch.setattr(sys, "argv", ["pconv"])
    monkeypatch.setenv("WANDB_MODE", "disabled")
    config = str(ROOT / "configs" / "demo.yaml")
    with pytest.raises(SystemExit):  # stops at the data root, after choosing the threads
        run(
            [
                "fit",
                "--config",
                config,
                "--data.num_workers=2",
                "--data.source=folder",
                "--data.root=/no/such/folder",
            ]
        )
    assert torch.get_num_threads() == 6 - 1 - 2


def test_evaluate_sets_the_count_from_its_workers(machine, tmp_path, capsys):
    from pconv.evaluation.cli import main

    args = ["--baselines", "mean", "--size", "0", "--workers", "3", "-o", str(tmp_path / "r")]
    assert main(args) == 2  # --size 0 is refused after the threads are chosen
    assert torch.get_num_threads() == 6 - 1 - 3
