"""configs/sweep.yaml: W&B's open-source sweeps engine proposes runs offline, W&B's agent code
builds each run's command line, and the CLI accepts it; one proposal trains for a few steps
on the sample photos and its values reach the loss and the optimizer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sweeps
import torch
import yaml
from wandb import wandb_agent
from wandb.sdk.launch.sweeps.utils import load_sweep_config

from pconv.training.cli import run
from pconv.training.module import NET_GROUP, InpaintingModule

ROOT = Path(__file__).resolve().parents[2]
SWEEP_FILE = ROOT / "configs" / "sweep.yaml"
BIN = Path(sys.executable).parent
LOSS_WEIGHTS = {
    "model.loss.hole_weight": "hole",
    "model.loss.perceptual_weight": "perceptual",
    "model.loss.style_weight": "style_out",
    "model.loss.tv_weight": "tv",
}
LR_KEY = "model.optimizer.lr"


@pytest.fixture(scope="module")
def sweep() -> dict:
    config = load_sweep_config(str(SWEEP_FILE))
    assert config is not None
    return config


def swept(sweep: dict) -> dict[str, dict]:
    """The parameters that are searched (not constants)."""
    return {k: v for k, v in sweep["parameters"].items() if "value" not in v}


def proposals(sweep: dict, count: int) -> list[dict]:
    """``count`` proposals of the sweep's own method: the first with no history, the others
    after finished runs with a made-up val/psnr, so the Bayesian model is fitted."""
    runs: list[sweeps.SweepRun] = []
    for i in range(count):
        proposal = sweeps.next_run(sweep, runs, validate=True)
        score = 20.0 + i  # any finite metric value
        runs.append(
            sweeps.SweepRun(
                name=f"run{i}",
                config=proposal.config,
                state=sweeps.RunState.finished,
                summary_metrics={sweep["metric"]["name"]: score},
            )
        )
    # The agent receives them from the W&B server as JSON: plain Python numbers.
    return [json.loads(json.dumps(r.config, default=lambda n: n.item())) for r in runs]


def agent_command(sweep: dict, args: dict, tmp: Path, monkeypatch) -> list[str]:
    """The command line W&B's agent runs for a proposal (its own code, process start faked)."""
    started = {}

    class NoProcess:
        def __init__(self, command=None, **kwargs) -> None:
            started["command"] = command

    monkeypatch.setattr(wandb_agent, "AgentProcess", NoProcess)
    for name in ("WANDB_DIR", "WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):
        monkeypatch.setenv(name, str(tmp) if name == "WANDB_DIR" else "test")
    agent = wandb_agent.Agent(api=None, queue=None, sweep_id="test")
    agent._sweep_command = list(sweep["command"])
    agent._command_run({"type": "run", "run_id": "r0", "program": sweep["program"], "args": args})
    return started["command"]


def draws_integers(spec: dict) -> bool:
    """Whether a sweep parameter only ever proposes integers (q_* distributions propose
    floats such as 3.0, which an int key rejects)."""
    if "values" in spec:
        return all(isinstance(v, int) for v in spec["values"])
    return spec.get("distribution") == "int_uniform"


def lookup(config: dict, dotted: str):
    """``config[a][b]...`` for ``a.b...``, stepping into ``init_args`` as the CLI does."""
    node = config
    for part in dotted.split("."):
        node = node[part] if part in node else node["init_args"][part]
    return node


def test_sweep_file_shape(sweep):
    assert sweep["method"] == "bayes"
    assert sweep["metric"] == {"name": "val/psnr", "goal": "maximize"}
    # command: a block-style list, ${args} last and after the configs so that it wins.
    command_node = next(
        value for key, value in yaml.compose(SWEEP_FILE.read_text()).value if key.value == "command"
    )
    assert isinstance(command_node, yaml.SequenceNode) and not command_node.flow_style
    command = sweep["command"]
    last_config = max(i for i, c in enumerate(command) if c == "--config")
    assert command[-1] == "${args}" and command.index("${args}") > last_config
    # Flat dotted LightningCLI keys, no nested sweep parameters.
    for name, spec in sweep["parameters"].items():
        assert "." in name and "parameters" not in spec, name
    assert set(LOSS_WEIGHTS) | {LR_KEY} <= set(swept(sweep))


def test_proposals_parse_with_their_types(sweep, tmp_path, monkeypatch, capsys):
    """Every proposal's command line is accepted by the CLI (dry run with --print_config);
    the values land under their keys, and integer keys have integer distributions."""
    monkeypatch.setattr(sys, "argv", ["pconv"])
    for args in proposals(sweep, 3):
        command = agent_command(sweep, args, tmp_path, monkeypatch)
        assert command[:2] == ["/usr/bin/env", sweep["program"]]
        for key, spec in args.items():
            assert f"--{key}={spec['value']}" in command
        with pytest.raises(SystemExit) as stop:
            run([*command[2:], "--print_config"])
        assert stop.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)
        for key, spec in args.items():
            value = lookup(printed, key)
            assert value == pytest.approx(spec["value"]), key
            if isinstance(value, int) and key in swept(sweep):
                assert draws_integers(swept(sweep)[key]), key


def tiny_overlay(tmp: Path) -> Path:
    """CPU-sized settings for configs/initial.yaml, with the paper's loss weights and lr
    written out so that the swept values must win over them."""
    config = {
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "precision": "32-true",
            "max_steps": 2,
            "val_check_interval": 2,
            "num_sanity_val_steps": 0,
            "default_root_dir": str(tmp),
            "logger": {
                "class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": str(tmp), "name": "csv"},
            },
        },
        "model": {
            "net": {"init_args": {"levels": 4, "width_mult": 0.125}},
            "loss": {
                "init_args": {
                    "hole_weight": 6.0,
                    "perceptual_weight": 0.05,
                    "style_weight": 120.0,
                    "tv_weight": 0.1,
                    "vgg_weights": None,
                }
            },
            "optimizer": {"init_args": {"lr": 2.0e-4}},
        },
        "data": {
            "source": "samples",
            "image_size": 64,
            "batch_size": 2,
            "num_workers": 0,
            "val_masks_per_bucket": 1,
            "train_samples_per_epoch": 4,
            "pin_memory": False,
        },
        "checkpoint": {"dirpath": str(tmp / "checkpoints")},
    }
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_proposed_values_reach_the_loss_and_optimizer(sweep, tmp_path, monkeypatch):
    (args,) = proposals(sweep, 1)
    command = agent_command(sweep, args, tmp_path, monkeypatch)
    # The CPU overlay goes right before the swept arguments, so they still come last.
    first_swept = min(command.index(f"--{key}={spec['value']}") for key, spec in args.items())
    command[first_swept:first_swept] = ["--config", str(tiny_overlay(tmp_path))]
    env = dict(
        os.environ,
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",  # an activated environment
        WANDB_MODE="disabled",
        NO_ALBUMENTATIONS_UPDATE="1",
        OMP_NUM_THREADS="2",
    )
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    last = tmp_path / "checkpoints" / "last.ckpt"
    module = InpaintingModule.load_from_checkpoint(last)
    for key, term in LOSS_WEIGHTS.items():
        assert module.loss.weights[term] == pytest.approx(args[key]["value"]), key
    assert module.loss.weights["style_comp"] == module.loss.weights["style_out"]
    optimizer = torch.load(last, weights_only=True)["optimizer_states"][0]
    (net_group,) = [g for g in optimizer["param_groups"] if g["name"] == NET_GROUP]
    assert net_group["lr"] == pytest.approx(args[LR_KEY]["value"])
    saved = yaml.safe_load((tmp_path / "csv" / "version_0" / "config.yaml").read_text())
    for key, spec in args.items():
        assert lookup(saved, key) == pytest.approx(spec["value"]), key
