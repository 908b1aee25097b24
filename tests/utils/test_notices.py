"""A normal run prints what matters and none of the libraries' notices (pconv.utils.notices)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pconv.training.cli import run

ROOT = Path(__file__).resolve().parents[2]
#: Text of each notice a normal run must not print.
NOTICES = (
    "litlogger",
    "anonymous setting has no effect",
    "git root",
    "LeafSpec",
    "FLOPs",
    "/-2",
    "weights_only",
    "The dirpath has changed",
    "__len__",
    "Trainer already configured",
    "\x1b[",  # raw colour codes (W&B's own sync lines)
)

#: How every line of a normal run starts: the summary table's box drawing, its parameter
#: counts, the progress bar and pconv's own lines.
OURS = ("┏", "┃", "┡", "│", "└", "Trainable params", "Epoch ", "Validation", "pconv:")
#: Our plain progress lines (stdout is not a terminal here) and the result of a validation.
PROGRESS = re.compile(r"step \d+/\d+  epoch \d+  |validation at step \d+: ")
RESULT = re.compile(r"\s+(all|[\d.]+-[\d.]+): PSNR |\s+outside buckets: ")


def test_demo_config_prints_none_of_the_notices(tmp_path):
    out = tmp_path / "demo"
    args = [
        *("fit", "--config", str(ROOT / "configs" / "demo.yaml")),
        *("--trainer.max_steps=2", "--trainer.val_check_interval=2", "--data.image_size=64"),
        *("--trainer.log_every_n_steps=1", "--data.train_samples_per_epoch=8"),
        *(f"--trainer.default_root_dir={out}", f"--trainer.logger.init_args.save_dir={out}"),
        f"--prediction_writer.output_dir={out / 'predictions'}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    env.pop("WANDB_SILENT", None)
    code = "import sys; from pconv.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for notice in NOTICES:
        assert notice not in output, f"{notice!r} in:\n{output}"
    # Any other line (a new library warning or notice) fails too: a normal run prints only
    # its summary table, parameter counts, progress and pconv's own lines.
    strange = [
        line
        for line in output.splitlines()
        if line.strip()
        and not line.startswith(OURS)
        and not PROGRESS.match(line)
        and not RESULT.match(line)
    ]
    assert not strange, "\n".join(strange)
    assert "Trainable params" in output and "Epoch 0" in output  # summary and progress bar
    assert output.count("wandb sync") == 1 and f"W&B run saved offline in {out}" in output


def test_print_config_says_nothing_about_wandb(capsys, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setattr(sys, "argv", ["pconv"])
    with pytest.raises(SystemExit) as info:
        run(["fit", "--config", str(ROOT / "configs" / "demo.yaml"), "--print_config"])
    captured = capsys.readouterr()
    assert info.value.code == 0 and "seed_everything" in captured.out
    assert "W&B" not in captured.err and "wandb" not in captured.err.lower()
