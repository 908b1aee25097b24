"""The README's examples run as written: every Python block, and every shell line that needs
no network, GPU, cluster or dataset.

Stand-ins (the examples would otherwise need a trained model or minutes of work):

- ``last.ckpt`` and ``outputs/demo/checkpoints/last.ckpt`` (what ``make demo`` writes) are a
  tiny random checkpoint of the format ``pconv fit`` writes; the demo itself takes minutes;
- ``photo.jpg`` and ``mask.png`` are a small sample photo and a mask with a hole;
- sizes and counts are cut (:data:`SMALLER`): a 512 px report of 1,000 masks per bucket is
  the same code path as a 64 px one of 1.

Every shell line is either run or skipped for a stated reason (:data:`SKIPPED`), so a new
README line fails this test until it is classified.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from pconv.cli import lightning_main, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: ``(language, code)`` of every fenced block.
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)
#: Patterns (regular expressions) that mark a shell line as not runnable here, and why.
SKIPPED = {
    "^make ": "make demo/test: minutes of training or the whole suite (demo: stand-in checkpoint)",
    "^export ": "sets an environment variable for the lines after it",
    "^lightning fit": "trains on ImageNet (the --print_config line runs)",
    "s3://": "needs a cloud bucket",
    "/data/": "needs a dataset on disk",
    "hf://": "needs the Hugging Face Hub",
    "https://": "needs the network",
    "--repo": "uploads to the Hugging Face Hub",
    "pconv app": "starts a web server (tests/test_app.py runs it)",
    "configs/ddp.yaml": "needs GPUs",
    "pconv weights": "downloads weights",
    "mmagic-": "downloads a published network (tests/weights/test_mmagic.py serves one)",
    "sbatch": "needs SLURM",
    "torchrun.sh": "needs GPUs",
    "wandb ": "needs a W&B account",
}
#: Substitutions that shrink a line's work without changing its code path.
SMALLER = {
    "--size 512 --per-bucket 1000": "--size 64 --per-bucket 1",
    "--size 256": "--size 64 --per-bucket 1",
}
#: Lines that run only with --print_config, not as a whole training.
PRINT_ONLY = "--print_config"


def shell_lines() -> list[str]:
    """Every command of the README's shell blocks, continuation lines joined, comments cut."""
    lines = []
    for language, code in BLOCKS:
        if language != "bash":
            continue
        for line in re.sub(r"\\\n\s*", " ", code).splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def skip_reason(line: str) -> str | None:
    if PRINT_ONLY in line:
        return None
    return next((why for pattern, why in SKIPPED.items() if re.search(pattern, line)), None)


@pytest.fixture
def workspace(tmp_path, monkeypatch, tiny_checkpoint) -> Path:
    """A folder holding the stand-ins, as the working directory."""
    (tmp_path / "outputs/demo/checkpoints").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, tmp_path / "last.ckpt")
    shutil.copy(tiny_checkpoint, tmp_path / "outputs/demo/checkpoints/last.ckpt")
    photo = cv2.resize(skimage.data.coffee(), (96, 64), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "photo.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    mask = np.full((64, 96), 255, np.uint8)
    mask[20:40, 30:60] = 0
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr(sys, "argv", ["pconv"])
    return tmp_path


def test_readme_has_the_blocks_this_test_runs():
    assert [language for language, _ in BLOCKS].count("python") >= 1
    runnable = [line for line in shell_lines() if skip_reason(line) is None]
    assert any(line.startswith("pconv inpaint") for line in runnable)
    assert all(line.startswith(("pconv ", "lightning ")) for line in runnable), runnable


def test_python_blocks_run(workspace):
    for language, code in BLOCKS:
        if language == "python":
            exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert (workspace / "filled.png").is_file()


def test_shell_lines_run(workspace, capsys):
    ran = []
    for line in shell_lines():
        if skip_reason(line) is not None:
            continue
        for text, smaller in SMALLER.items():
            line = line.replace(text, smaller)
        args = shlex.split(line.replace("configs/", f"{ROOT}/configs/"))
        if args[0] == "lightning":
            with pytest.raises(SystemExit) as stop:  # --print_config exits when printed
                lightning_main(args[1:])
            assert stop.value.code in (0, None), line
        else:
            assert main(args[1:]) == 0, f"{line}\n{capsys.readouterr().err}"
        ran.append(line)
    assert len(ran) >= 6, ran
    for name in ("filled.png", "pconv.onnx", "tiny.safetensors", "report-lama/report.json"):
        assert (workspace / name).is_file(), name
    assert list((workspace / "masks").glob("*.png"))
