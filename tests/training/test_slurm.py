"""experiments/slurm/: the sbatch and torchrun scripts run with stand-ins for srun, torchrun
and pconv that record the command line, which is then dry-run through our CLI with
--print_config."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pconv.training.cli import run

ROOT = Path(__file__).resolve().parents[2]
SLURM = ROOT / "experiments" / "slurm"
SBATCH = SLURM / "train.sbatch"
TORCHRUN = SLURM / "torchrun.sh"
JOB_ID = "4242"
#: Stand-ins: srun drops its own options and runs the rest; the others record their argv.
STAND_INS = {
    "srun": '#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n',
    "pconv": '#!/bin/bash\nprintf \'%s\\0\' pconv "$@" > "$ARGV_FILE"\n',
    "torchrun": '#!/bin/bash\nprintf \'%s\\0\' torchrun "$@" > "$ARGV_FILE"\n',
}


def sbatch_directives() -> dict[str, str]:
    """``#SBATCH --key=value`` lines of the script (``--flag`` alone maps to "")."""
    found = re.findall(r"^#SBATCH\s+--([\w-]+)(?:=(\S+))?", SBATCH.read_text(), re.M)
    return dict(found)


@pytest.fixture
def stand_ins(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in STAND_INS.items():
        path = folder / name
        path.write_text(text)
        path.chmod(0o755)
    return folder


def run_script(script: Path, stand_ins: Path, env: dict[str, str], *args: str) -> list[str]:
    argv_file = stand_ins.parent / "argv"
    full_env = {
        "PATH": f"{stand_ins}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(stand_ins.parent),
        "ARGV_FILE": str(argv_file),
        **env,
    }
    result = subprocess.run(
        ["bash", str(script), *args], cwd=ROOT, env=full_env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return argv_file.read_text().split("\0")[:-1]


def slurm_env(run_dir: Path | None = None) -> dict[str, str]:
    """What SLURM sets inside the batch job of the script's #SBATCH directives."""
    sbatch = sbatch_directives()
    env = {
        "SLURM_JOB_ID": JOB_ID,
        "SLURM_JOB_NAME": sbatch["job-name"],
        "SLURM_JOB_NUM_NODES": sbatch["nodes"],
        "SLURM_NTASKS_PER_NODE": sbatch["ntasks-per-node"],
        "SLURM_CPUS_PER_TASK": sbatch["cpus-per-task"],
    }
    if run_dir is not None:
        env["RUN_DIR"] = str(run_dir)
    return env


def dry_run(argv: list[str], monkeypatch, capsys) -> dict:
    """The config the CLI would run with for ``argv`` (``pconv fit ...``)."""
    assert argv[:2] == ["pconv", "fit"]
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["pconv"])
    with pytest.raises(SystemExit) as stop:
        run([*argv[1:], "--print_config"])
    assert stop.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_sbatch_directives():
    sbatch = sbatch_directives()
    assert sbatch["signal"] == "SIGUSR1@90"
    assert "requeue" in sbatch
    # One task per GPU: Lightning's devices per node.
    assert sbatch["ntasks-per-node"] == sbatch["gpus-per-node"]


def test_sbatch_command_line_dry_runs(stand_ins, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    argv = run_script(SBATCH, stand_ins, slurm_env(run_dir), "--data.batch_size=8")
    # Resuming is pconv fit's own choice, by step (tests/training/test_run_folder.py).
    assert "--ckpt_path" not in argv
    assert argv[-1] == "--data.batch_size=8"  # extra arguments come last and win
    config = dry_run(argv, monkeypatch, capsys)

    sbatch = sbatch_directives()
    trainer = config["trainer"]
    # jsonargparse keeps "4" a string; Lightning reads it as 4 devices, as it reads 4.
    assert str(trainer["devices"]) == sbatch["ntasks-per-node"]
    assert trainer["num_nodes"] == int(sbatch["nodes"])
    assert (trainer["accelerator"], trainer["strategy"]) == ("gpu", "ddp")
    assert trainer["precision"] == "bf16-mixed" and trainer["sync_batchnorm"] is True
    assert trainer["default_root_dir"] == str(run_dir)
    logger = trainer["logger"]["init_args"]
    assert logger["id"] == f"slurm-{JOB_ID}" and logger["resume"] == "allow"
    assert logger["save_dir"] == str(run_dir)
    assert config["checkpoint"]["dirpath"] == str(run_dir / "checkpoints")
    assert config["interrupt"]["dirpath"] == str(run_dir / "checkpoints")
    assert config["data"]["num_workers"] == int(sbatch["cpus-per-task"]) - 1
    assert config["data"]["batch_size"] == 8
    assert config["model"]["net"]["init_args"]["levels"] == 8  # configs/initial.yaml


def test_sbatch_defaults_run_dir_from_job(stand_ins):
    argv = run_script(SBATCH, stand_ins, slurm_env())
    run_dir = f"outputs/{sbatch_directives()['job-name']}-{JOB_ID}"
    assert f"--trainer.default_root_dir={run_dir}" in argv
    assert f"--checkpoint.dirpath={run_dir}/checkpoints" in argv


def test_torchrun_command_line_dry_runs(stand_ins, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    env = {
        "NNODES": "2",
        "NODE_RANK": "1",
        "MASTER_ADDR": "node0",
        "GPUS_PER_NODE": "4",
        "RUN_DIR": str(run_dir),
    }
    argv = run_script(TORCHRUN, stand_ins, env)
    split = argv.index("-m")
    launcher, command = argv[:split], ["pconv", *argv[split + 2 :]]
    assert argv[split + 1] == "pconv"
    assert {"--nnodes=2", "--node-rank=1", "--nproc-per-node=4", "--master-addr=node0"} <= set(
        launcher
    )
    config = dry_run(command, monkeypatch, capsys)
    assert str(config["trainer"]["devices"]) == "4" and config["trainer"]["num_nodes"] == 2
    assert config["trainer"]["strategy"] == "ddp"
    assert config["trainer"]["default_root_dir"] == str(run_dir)


def test_sbatch_fine_tunes_with_overlay_configs(stand_ins, tmp_path, monkeypatch, capsys):
    env = {**slurm_env(tmp_path / "run"), "CONFIGS": "configs/initial.yaml configs/finetune.yaml"}
    argv = run_script(SBATCH, stand_ins, env, "--model.init_from=initial.ckpt")
    config = dry_run(argv, monkeypatch, capsys)
    assert config["model"]["init_from"] == "initial.ckpt"
    assert config["finetune"]["at_step"] == 0  # configs/finetune.yaml
    assert config["model"]["net"]["init_args"]["levels"] == 8  # configs/initial.yaml
